#include "server/completions.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include "core/error.h"

namespace grok::server {
namespace {

std::string response_id(bool chat) {
  // Unique per process run: a random prefix and a counter.
  static const uint64_t prefix = std::random_device{}();
  static std::atomic<uint64_t> counter{0};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx%08llx", (unsigned long long)(prefix & 0xffffffffu),
                (unsigned long long)++counter);
  return std::string(chat ? "chatcmpl-" : "cmpl-") + buf;
}

std::string sse(const json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

CompletionService::CompletionService(Engine& engine, Scheduler& scheduler, ServiceOptions options)
    : engine_(engine), scheduler_(scheduler), options_(std::move(options)) {
  const int64_t context = engine_.model().config.context_length;
  if (options_.max_prompt_tokens <= 0 || options_.max_prompt_tokens > context) options_.max_prompt_tokens = context;
  if (options_.max_tokens_limit <= 0 || options_.max_tokens_limit > context) options_.max_tokens_limit = context;
}

std::unique_ptr<RunningCompletion> CompletionService::start(CompletionRequest req) {
  const GrokConfig& config = engine_.model().config;
  const Tokenizer& tok = engine_.tokenizer();
  auto run = std::unique_ptr<RunningCompletion>(new RunningCompletion());

  // The prompts as token ids.
  std::vector<std::vector<int32_t>> prompts;
  try {
    if (req.chat) {
      const std::string text = options_.chat_template.render(req.messages);
      prompts.push_back(engine_.tokenize(text, false));
      req.stop.insert(req.stop.end(), options_.chat_template.stop.begin(), options_.chat_template.stop.end());
    } else {
      for (const std::string& text : req.prompt_texts) {
        prompts.push_back(engine_.tokenize(text, false));
        run->echo_.push_back(text);
      }
      for (const std::vector<int32_t>& ids : req.prompt_ids) {
        for (int32_t id : ids)
          if (id >= config.vocab_size)
            throw ApiError(400, cat("token id ", id, " in 'prompt' is out of range (the vocabulary has ",
                                    config.vocab_size, " tokens)"), "prompt");
        prompts.push_back(ids);
        if (req.echo) run->echo_.push_back(tok.decode(ids));
      }
    }
  } catch (const Error& e) {
    throw ApiError(400, e.what(), req.chat ? "messages" : "prompt");
  }

  // Limits, checked here so the error names the field.
  const char* prompt_param = req.chat ? "messages" : "prompt";
  int64_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw ApiError(400, "the prompt is empty (it has no tokens)", prompt_param);
    longest = std::max(longest, int64_t(p.size()));
    run->prompt_tokens_ += int64_t(p.size());
  }
  if (longest > options_.max_prompt_tokens)
    throw ApiError(400, cat("the prompt has ", longest, " tokens; this server accepts at most ",
                            options_.max_prompt_tokens), prompt_param, "invalid_request_error",
                   "context_length_exceeded");
  int64_t max_tokens;
  if (req.max_tokens) {
    max_tokens = *req.max_tokens;
    if (max_tokens > options_.max_tokens_limit)
      throw ApiError(400, cat("'max_tokens' is ", max_tokens, "; this server allows at most ", options_.max_tokens_limit),
                     "max_tokens");
    if (longest + max_tokens > config.context_length)
      throw ApiError(400, cat("the prompt (", longest, " tokens) plus max_tokens (", max_tokens,
                              ") exceeds the model's context of ", config.context_length, " tokens"),
                     "max_tokens", "invalid_request_error", "context_length_exceeded");
  } else {
    // OpenAI's defaults: 16 for completions, as many as fit for chat.
    max_tokens = req.chat ? std::min(options_.max_tokens_limit, config.context_length - longest)
                          : std::min<int64_t>({16, options_.max_tokens_limit, config.context_length - longest});
  }
  const int64_t sequences = int64_t(prompts.size()) * req.n;
  if (sequences > scheduler_.capacity())
    throw ApiError(400, cat(prompts.size(), " prompts times n=", req.n, " is ", sequences,
                            " sequences; this server runs at most ", scheduler_.capacity(), " at once"), "n");

  // Choice prompt*n + i continues prompt `prompt` with seed + i, so choice 0
  // of each prompt is what `grok generate --seed S` gives.
  std::vector<SequenceSpec> specs;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int i = 0; i < req.n; ++i) {
      SequenceSpec s;
      s.prompt = prompts[p];
      s.options.max_tokens = max_tokens;
      s.options.sampling.temperature = req.temperature;
      s.options.sampling.top_p = req.top_p;
      s.options.sampling.seed = req.seed + uint64_t(i);
      s.options.stop = req.stop;
      s.options.top_probs = std::max(req.logprobs, 0);
      s.options.prompt_logprobs = req.echo && req.logprobs >= 0;
      specs.push_back(std::move(s));
      RunningCompletion::Sequence seq;
      seq.prompt = int(p);
      run->sequences_.push_back(std::move(seq));
    }

  try {
    run->job_ = scheduler_.submit(std::move(specs));
  } catch (const QueueFull& e) {
    throw ApiError(429, e.what(), "", "server_busy", "queue_full");
  } catch (const ShuttingDown& e) {
    throw ApiError(503, e.what(), "", "server_error", "shutting_down");
  } catch (const Error& e) {
    throw ApiError(400, e.what(), prompt_param);
  }
  run->scheduler_ = &scheduler_;
  run->tokenizer_ = &tok;
  run->request_ = std::move(req);
  run->header_ = {response_id(run->request_.chat),
                  std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count(),
                  options_.model_id};
  run->check_interval_ = options_.client_check_interval;
  return run;
}

RunningCompletion::~RunningCompletion() {
  if (job_ && !completed_) scheduler_->cancel(job_);
}

json RunningCompletion::logprobs_of(const Sequence& s) const {
  if (request_.logprobs < 0) return nullptr;
  return request_.chat ? chat_logprobs(s.logprobs) : completion_logprobs(s.logprobs);
}

bool RunningCompletion::on_event(const JobEvent& ev, const std::function<bool(std::string_view)>& write) {
  Sequence& s = sequences_[size_t(ev.sequence)];
  const bool stream = request_.stream;
  const bool chat = request_.chat;
  // With echo and logprobs the prompt's tokens come first: their logprobs
  // open the choice's list (the echoed text is already the choice's text).
  if (!ev.finished && ev.token.prompt) {
    s.prompt_logprobs.push_back(token_logprob(*tokenizer_, ev.token, s.prompt_chars));
    s.prompt_chars += utf8_length(ev.token.text);
    return true;
  }
  if (!s.started && request_.echo) {
    s.text = echo_[size_t(s.prompt)];
    s.chars = utf8_length(s.text);
  }
  // Streaming: each choice opens with the assistant's role (chat) or the echoed prompt.
  if (stream && !s.started) {
    if (chat) {
      if (!write(sse(chat_chunk(header_, ev.sequence, {{"role", "assistant"}, {"content", ""}}, nullptr, ""))))
        return false;
    } else if (request_.echo) {
      const json lps = s.prompt_logprobs.empty() ? json(nullptr) : completion_logprobs(s.prompt_logprobs);
      if (!write(sse(completion_chunk(header_, ev.sequence, s.text, lps, "")))) return false;
    }
  }
  if (!s.started && !stream) s.logprobs = std::move(s.prompt_logprobs);
  s.started = true;

  if (!ev.finished) {
    const TokenEvent& t = ev.token;
    std::vector<TokenLogprob> lp;
    if (request_.logprobs >= 0 && t.id >= 0) lp.push_back(token_logprob(*tokenizer_, t, s.chars));
    s.text += t.text;
    s.chars += utf8_length(t.text);
    if (!stream) {
      // The text the last token's end released (id -1) is that token's too, so the tokens still join into the text.
      if (t.id < 0 && !s.logprobs.empty()) s.logprobs.back().token += t.text;
      s.logprobs.insert(s.logprobs.end(), lp.begin(), lp.end());
      return true;
    }
    if (t.text.empty() && lp.empty()) return true;  // mid-character: nothing to show yet
    const json lps = lp.empty() ? json(nullptr) : chat ? chat_logprobs(lp) : completion_logprobs(lp);
    const json chunk = chat ? chat_chunk(header_, ev.sequence, {{"content", t.text}}, lps, "")
                            : completion_chunk(header_, ev.sequence, t.text, lps, "");
    return write(sse(chunk));
  }

  ++finished_;
  const GenerateResult& r = ev.result;
  s.completion_tokens = int64_t(r.ids.size());
  if (r.finish_reason == "cancelled") {
    cancelled_ = true;
    return true;
  }
  s.finish_reason = openai_finish_reason(r.finish_reason);
  if (!stream || cancelled_) return true;
  json chunk = chat ? chat_chunk(header_, ev.sequence, json::object(), nullptr, s.finish_reason)
                    : completion_chunk(header_, ev.sequence, "", nullptr, s.finish_reason);
  // Usage rides on the last choice's last chunk, unless the client asked for a chunk of its own.
  if (finished_ == sequences_.size() && !request_.include_usage) {
    int64_t completion = 0;
    for (const Sequence& q : sequences_) completion += q.completion_tokens;
    chunk["usage"] = usage_object(prompt_tokens_, completion);
  }
  return write(sse(chunk));
}

bool RunningCompletion::still_there(const std::function<bool(std::string_view)>& write,
                                    const std::function<ClientState()>& client) {
  switch (client()) {
    case ClientState::connected:
      return true;
    case ClientState::gone:
      return false;
    case ClientState::half_closed:
      if (probed_) return true;  // a reset, when it comes, shows as gone
      probed_ = true;
      // Ignored by the client's parser: an SSE comment line, or whitespace
      // before the JSON object.
      return write(request_.stream ? ":\n\n" : "\n");
  }
  return true;
}

bool RunningCompletion::run(const std::function<bool(std::string_view)>& write,
                            const std::function<ClientState()>& client) {
  bool client_gone = false;
  auto next_check = std::chrono::steady_clock::now() + check_interval_;
  for (;;) {
    JobEvent ev;
    const Job::Wait w = job_->next_for(ev, check_interval_);
    if (w == Job::Wait::done) break;
    if (w == Job::Wait::event && !on_event(ev, write)) {
      client_gone = true;
      break;
    }
    // Also between events: a response not streamed writes nothing until the end.
    if (const auto now = std::chrono::steady_clock::now(); w == Job::Wait::timeout || now >= next_check) {
      next_check = now + check_interval_;
      if (!still_there(write, client)) {
        client_gone = true;
        break;
      }
    }
  }
  if (client_gone) {
    // Cancel, then wait for the driver to drop the sequences, so their KV
    // memory is free when this returns.
    scheduler_->cancel(job_);
    JobEvent ev;
    while (job_->next(ev)) {
    }
    completed_ = true;
    return false;
  }
  completed_ = true;

  int64_t completion = 0;
  for (const Sequence& s : sequences_) completion += s.completion_tokens;
  const json usage = usage_object(prompt_tokens_, completion);
  if (cancelled_) {
    // Only the server cancels a sequence whose client is still here: it is shutting down.
    const json err = error_object("the server is shutting down; the request was cancelled", "server_error", "",
                                  "shutting_down");
    return write(request_.stream ? sse(err) : dump(err));
  }
  if (request_.stream) {
    if (request_.include_usage && !write(sse(usage_chunk(header_, request_.chat, usage)))) return false;
    return write("data: [DONE]\n\n");
  }
  std::vector<Choice> choices;
  for (size_t i = 0; i < sequences_.size(); ++i) {
    const Sequence& s = sequences_[i];
    Choice c;
    c.index = int(i);
    c.text = s.text;
    c.finish_reason = s.finish_reason;
    if (request_.logprobs >= 0) c.logprobs = logprobs_of(s);
    choices.push_back(std::move(c));
  }
  return write(dump(request_.chat ? chat_response(header_, choices, usage) : completion_response(header_, choices, usage)));
}

}  // namespace grok::server
