// Runs one parsed completion or chat request: checks it against the model
// and the server's limits, queues its sequences on the scheduler, and writes
// the response (one JSON object, or server-sent events when streaming)
// through callbacks, so it knows nothing of the HTTP library.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/chat_template.h"
#include "server/openai_api.h"
#include "server/scheduler.h"

namespace grok::server {

struct ServiceOptions {
  std::string model_id = "grok";
  int64_t max_prompt_tokens = 0;  // 0: the model's context
  int64_t max_tokens_limit = 0;   // largest max_tokens a request may ask for; 0: the model's context
  ChatTemplate chat_template;
  // How often a request waiting for tokens checks that its client is still there.
  std::chrono::milliseconds client_check_interval{100};
};

// What the connection says of the client. A half-closed one may have sent
// its request and be waiting for the answer (HTTP allows it) or may be gone
// (closing a socket also sends FIN): a byte its parser skips tells which,
// since a closed socket answers it with a reset.
enum class ClientState { connected, half_closed, gone };

// An accepted request, from its queued sequences to the end of its response.
class RunningCompletion {
 public:
  // `write` sends bytes to the client (false: it is gone); `client` says
  // what the connection knows of it, asked every client_check_interval.
  // Returns when the response is complete (true), or when the client went
  // away (false; its sequences are then cancelled and their memory freed).
  bool run(const std::function<bool(std::string_view)>& write, const std::function<ClientState()>& client);
  bool streaming() const { return request_.stream; }
  // Cancels the sequences if run() did not see them through (e.g. the
  // transport never got to send the response).
  ~RunningCompletion();

 private:
  friend class CompletionService;
  struct Sequence {
    int prompt = 0;  // which prompt it continues
    std::string text;
    size_t chars = 0;  // code points in text: logprobs' text_offset
    std::vector<TokenLogprob> logprobs;
    std::vector<TokenLogprob> prompt_logprobs;  // echo with logprobs: the prompt's, until the choice starts
    size_t prompt_chars = 0;                    // code points of the prompt tokens so far
    std::string finish_reason;  // OpenAI's; empty until finished
    int64_t completion_tokens = 0;
    bool started = false;  // streaming: its first chunk is out
  };
  bool on_event(const JobEvent& ev, const std::function<bool(std::string_view)>& write);
  // Whether the client is still there; after a half-close, sends once what
  // tells a closed socket from a half-closed one.
  bool still_there(const std::function<bool(std::string_view)>& write, const std::function<ClientState()>& client);
  json logprobs_of(const Sequence& s) const;

  Scheduler* scheduler_ = nullptr;
  const Tokenizer* tokenizer_ = nullptr;
  std::shared_ptr<Job> job_;
  CompletionRequest request_;
  ResponseHeader header_;
  std::vector<std::string> echo_;  // each prompt's text, for echo
  int64_t prompt_tokens_ = 0;
  std::vector<Sequence> sequences_;
  size_t finished_ = 0;
  bool cancelled_ = false;   // some sequence was cancelled by the server (shutdown)
  bool completed_ = false;   // every sequence finished and was reported
  std::chrono::milliseconds check_interval_{100};
  bool probed_ = false;  // the half-close probe went out
};

class CompletionService {
 public:
  CompletionService(Engine& engine, Scheduler& scheduler, ServiceOptions options);

  // Tokenises and checks the request, then queues it. Throws ApiError: 400
  // for what the request gets wrong (naming the field), 429 when the queue
  // is full, 503 while shutting down.
  std::unique_ptr<RunningCompletion> start(CompletionRequest request);

  const ServiceOptions& options() const { return options_; }

 private:
  Engine& engine_;
  Scheduler& scheduler_;
  ServiceOptions options_;
};

}  // namespace grok::server
