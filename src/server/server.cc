#include "server/server.h"

#include "core/error.h"

namespace grok::server {

Server::Server(Engine& engine, ServerOptions options) {
  engine.tokenizer();  // throws, naming the model, when there is no vocabulary to serve text with
  if (options.scheduler.max_batch < 1) fail("--max-batch must be at least 1; got ", options.scheduler.max_batch);
  if (options.scheduler.max_queue < 0) fail("--max-queue must not be negative; got ", options.scheduler.max_queue);
  if (options.http.max_body_bytes < 1024) fail("--max-body-bytes must be at least 1024; got ", options.http.max_body_bytes);
  if (options.service.max_prompt_tokens < 0) fail("--max-prompt-tokens must not be negative");
  if (options.service.max_tokens_limit < 0) fail("--max-tokens-limit must not be negative");
  scheduler_ = std::make_unique<Scheduler>(engine, metrics_, options.scheduler);
  service_ = std::make_unique<CompletionService>(engine, *scheduler_, std::move(options.service));
  http_ = std::make_unique<HttpServer>(*service_, *scheduler_, metrics_, std::move(options.http));
}

Server::~Server() { shutdown(std::chrono::milliseconds(0)); }

int Server::start() { return http_->start(); }

void Server::shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  http_->begin_drain();
  scheduler_->wait_idle(grace);
  scheduler_->stop();  // cancels whatever is still running; its handlers answer and return
  // Every request has ended; what is left is writing their last bytes.
  http_->finish(std::chrono::seconds(10));
}

}  // namespace grok::server
