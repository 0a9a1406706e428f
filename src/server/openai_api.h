// The OpenAI API's schema, apart from any transport: request JSON checked
// field by field into plain structs, and the response, stream-chunk and
// error objects built back. See https://platform.openai.com/docs/api-reference.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/chat_template.h"

namespace grok::server {

using nlohmann::json;

// A request the API refuses: the HTTP status and the error object's fields.
struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, std::string param = "", std::string type = "invalid_request_error",
           std::string code = "")
      : std::runtime_error(message), status(status), param(std::move(param)), type(std::move(type)),
        code(std::move(code)) {}
  int status;
  std::string param, type, code;
};

// {"error": {"message", "type", "param", "code"}}; empty param/code are null.
json error_object(const std::string& message, const std::string& type, const std::string& param,
                  const std::string& code);
json error_object(const ApiError& e);

// POST /v1/completions and /v1/chat/completions, after parsing. Defaults are
// `grok generate`'s (temperature 0.8, top_p 0.95, seed 42), so a request that
// sets nothing gets what the command gives; max_tokens defaults as OpenAI's do.
struct CompletionRequest {
  bool chat = false;
  std::string model;
  // Completions: the prompts, as text or as token ids (one of the two is filled).
  std::vector<std::string> prompt_texts;
  std::vector<std::vector<int32_t>> prompt_ids;
  // Chat: the conversation.
  std::vector<ChatMessage> messages;
  std::optional<int64_t> max_tokens;  // unset: 16 for completions, the rest of the context for chat
  float temperature = 0.8f;
  float top_p = 0.95f;
  uint64_t seed = 42;  // choice i of n uses seed + i
  std::vector<std::string> stop;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage and no choices
  int logprobs = -1;           // most probable alternatives per token; -1: no logprobs
  bool echo = false;
};

// The most alternatives logprobs may ask for per token.
constexpr int kMaxLogprobs = 8;
// The most choices one request may ask for (n).
constexpr int kMaxChoices = 16;

// The body as a JSON object; ApiError 400 when it is not one (malformed
// JSON, invalid UTF-8, another type).
json parse_json_body(const std::string& body);
// Every field checked for type and range; unknown fields refused. Throws ApiError 400 naming the field.
CompletionRequest parse_completion_request(const json& body);
CompletionRequest parse_chat_request(const json& body);

// "eos" and "stop" -> "stop", "length" -> "length".
std::string openai_finish_reason(const std::string& engine_reason);

// One generated token as logprobs report it. `token` is the text the token
// added to the choice's text, so the tokens joined are the text: empty for
// a byte-fallback token whose character a later token completes (that one
// carries the whole character), and text held back while it might begin a
// stop string goes with the token that releases it. (OpenAI would write a
// partial character as "bytes:\xNN"; that would not join into the text.)
struct TokenLogprob {
  std::string token;
  std::optional<float> logprob;  // none for an echoed prompt's first token (null, with null alternatives)
  std::vector<std::pair<std::string, float>> top;  // most probable alternatives that could have been drawn
  // Where its text starts in the choice's text, in Unicode code points (as
  // Python, and so OpenAI, counts characters; JavaScript's UTF-16 indices
  // differ past U+FFFF).
  size_t text_offset = 0;
};
TokenLogprob token_logprob(const Tokenizer& tokenizer, const TokenEvent& event, size_t text_offset);
// An alternative token's own text: its piece with SentencePiece's "▁" as a
// space; a byte token that is not a character by itself as "bytes:\xNN".
std::string token_text(const Tokenizer& tokenizer, int32_t id);
// Code points in UTF-8 text (bytes other than continuation bytes).
size_t utf8_length(std::string_view text);
// Completions' {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
json completion_logprobs(const std::vector<TokenLogprob>& tokens);
// Chat's {"content": [{"token", "logprob", "bytes", "top_logprobs"}]}.
json chat_logprobs(const std::vector<TokenLogprob>& tokens);

json usage_object(int64_t prompt_tokens, int64_t completion_tokens);
// GET /v1/models' list, with the one model served.
json models_response(const std::string& model_id, int64_t created);

// What every response and chunk of one request shares.
struct ResponseHeader {
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  int64_t created = 0;
  std::string model;
};

struct Choice {
  int index = 0;
  std::string text;
  std::string finish_reason;  // OpenAI's
  std::optional<json> logprobs;
};

json completion_response(const ResponseHeader& h, const std::vector<Choice>& choices, const json& usage);
json chat_response(const ResponseHeader& h, const std::vector<Choice>& choices, const json& usage);
// One stream chunk for one choice; finish_reason empty mid-stream. Chat
// chunks carry a delta: the role on the first, then content.
json completion_chunk(const ResponseHeader& h, int index, const std::string& text, const json& logprobs,
                      const std::string& finish_reason);
json chat_chunk(const ResponseHeader& h, int index, const json& delta, const json& logprobs,
                const std::string& finish_reason);
// The chunk that carries only usage (stream_options.include_usage).
json usage_chunk(const ResponseHeader& h, bool chat, const json& usage);

// JSON text for the wire; invalid UTF-8 (never expected) is replaced, not thrown.
std::string dump(const json& j);

}  // namespace grok::server
