#include "server/openai_api.h"

#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"

namespace grok::server {
namespace {

// Reads a request object's fields, remembering which were read, so that
// whatever is left over can be refused as unknown.
class Fields {
 public:
  explicit Fields(const json& body) : body_(body) {}

  // The field, or nullptr when absent or null (OpenAI treats null as unset).
  const json* get(const std::string& name) {
    seen_.insert(name);
    auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  std::optional<bool> boolean(const std::string& name) {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw bad_type(name, "a boolean");
    return v->get<bool>();
  }

  std::optional<int64_t> integer(const std::string& name, int64_t lo, int64_t hi) {
    const json* v = get(name);
    if (!v) return std::nullopt;
    // 3.0 is an integer to JSON; 3.5 is not.
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (d != std::floor(d) || !std::isfinite(d)) throw bad_type(name, "an integer");
      if (d < double(lo) || d > double(hi)) throw out_of_range(name, lo, hi);
      return int64_t(d);
    }
    if (v->is_number_unsigned()) {
      const uint64_t u = v->get<uint64_t>();
      if (u > uint64_t(hi) || int64_t(u) < lo) throw out_of_range(name, lo, hi);
      return int64_t(u);
    }
    if (!v->is_number_integer()) throw bad_type(name, "an integer");
    const int64_t i = v->get<int64_t>();
    if (i < lo || i > hi) throw out_of_range(name, lo, hi);
    return i;
  }

  std::optional<double> number(const std::string& name, double lo, double hi) {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_number()) throw bad_type(name, "a number");
    const double d = v->get<double>();
    if (!(d >= lo && d <= hi))
      throw ApiError(400, cat("'", name, "' must be between ", lo, " and ", hi, "; got ", d), name);
    return d;
  }

  std::optional<std::string> string(const std::string& name) {
    const json* v = get(name);
    if (!v) return std::nullopt;
    if (!v->is_string()) throw bad_type(name, "a string");
    return v->get<std::string>();
  }

  // Whatever was not read is an unknown field.
  void refuse_unknown() const {
    for (const auto& [key, value] : body_.items())
      if (!seen_.count(key))
        throw ApiError(400, cat("unknown field ", quote_name(key), " (this server does not support it)"), key);
  }

  static ApiError bad_type(const std::string& name, const char* what) {
    return ApiError(400, cat("'", name, "' must be ", what), name);
  }
  static ApiError out_of_range(const std::string& name, int64_t lo, int64_t hi) {
    return ApiError(400, cat("'", name, "' must be an integer from ", lo, " to ", hi), name);
  }

 private:
  const json& body_;
  std::set<std::string> seen_;
};

constexpr int64_t kMaxStops = 16;

std::vector<std::string> parse_stop(Fields& f) {
  const json* v = f.get("stop");
  std::vector<std::string> out;
  if (!v) return out;
  auto add = [&](const json& s) {
    if (!s.is_string()) throw Fields::bad_type("stop", "a string or an array of strings");
    if (s.get_ref<const std::string&>().empty()) throw ApiError(400, "'stop' strings must not be empty", "stop");
    out.push_back(s.get<std::string>());
  };
  if (v->is_array()) {
    if (int64_t(v->size()) > kMaxStops)
      throw ApiError(400, cat("'stop' may hold at most ", kMaxStops, " strings"), "stop");
    for (const json& s : *v) add(s);
  } else {
    add(*v);
  }
  return out;
}

// Fields completions and chat share.
void parse_common(Fields& f, CompletionRequest& r) {
  if (auto m = f.string("model")) r.model = *m;
  if (auto v = f.number("temperature", 0, 2)) r.temperature = float(*v);
  if (auto v = f.number("top_p", 0, 1)) r.top_p = float(*v);
  if (auto v = f.integer("seed", 0, std::numeric_limits<int64_t>::max() - kMaxChoices)) r.seed = uint64_t(*v);
  r.stop = parse_stop(f);
  if (auto v = f.integer("n", 1, kMaxChoices)) r.n = int(*v);
  if (auto v = f.boolean("stream")) r.stream = *v;
  if (const json* so = f.get("stream_options")) {
    if (!so->is_object()) throw Fields::bad_type("stream_options", "an object");
    Fields sf(*so);
    if (auto v = sf.boolean("include_usage")) r.include_usage = *v;
    try {
      sf.refuse_unknown();
    } catch (const ApiError& e) {
      throw ApiError(400, cat("stream_options: ", e.what()), "stream_options");
    }
    if (!r.stream) throw ApiError(400, "'stream_options' is only allowed with \"stream\": true", "stream_options");
  }
  f.string("user");  // accepted and ignored, as an end-user id is only for the provider's abuse monitoring
  // Penalties and biases are not implemented; their neutral values are accepted.
  for (const char* name : {"presence_penalty", "frequency_penalty"})
    if (auto v = f.number(name, -2, 2); v && *v != 0)
      throw ApiError(400, cat("'", name, "' is not supported (only 0)"), name);
  if (const json* lb = f.get("logit_bias"); lb && !(lb->is_object() && lb->empty()))
    throw ApiError(400, "'logit_bias' is not supported (only {})", "logit_bias");
}

// A token-id prompt: an array of integers (ranges are checked against the model later).
std::vector<int32_t> parse_ids(const json& arr) {
  std::vector<int32_t> ids;
  for (const json& v : arr) {
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw ApiError(400, "'prompt' must be a string, an array of strings, an array of token ids or an array of "
                          "arrays of token ids", "prompt");
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT32_MAX) ? -1 : v.get<int64_t>();
    if (id < 0 || id > INT32_MAX) throw ApiError(400, cat("token id ", v.dump(), " in 'prompt' is out of range"), "prompt");
    ids.push_back(int32_t(id));
  }
  return ids;
}

std::string message_content(const json& m, size_t index) {
  const std::string where = cat("messages[", index, "].content");
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) throw ApiError(400, cat("'", where, "' is missing"), "messages");
  if (it->is_string()) return it->get<std::string>();
  // The array form: text parts only (no images here).
  if (!it->is_array()) throw ApiError(400, cat("'", where, "' must be a string or an array of text parts"), "messages");
  std::string text;
  for (const json& part : *it) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
        !part["text"].is_string() || part.size() != 2)
      throw ApiError(400, cat("'", where, "' parts must be {\"type\": \"text\", \"text\": string}"), "messages");
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> parse_messages(Fields& f) {
  const json* v = f.get("messages");
  if (!v) throw ApiError(400, "'messages' is required", "messages");
  if (!v->is_array() || v->empty()) throw ApiError(400, "'messages' must be a non-empty array", "messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    if (!m.is_object()) throw ApiError(400, cat("messages[", i, "] must be an object"), "messages");
    for (const auto& [key, value] : m.items())
      if (key != "role" && key != "content" && key != "name")
        throw ApiError(400, cat("messages[", i, "]: unknown field ", quote_name(key)), "messages");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      throw ApiError(400, cat("messages[", i, "].role must be a string"), "messages");
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant")
      throw ApiError(400, cat("messages[", i, "].role must be \"system\", \"user\" or \"assistant\"; got ",
                              quote_name(r)), "messages");
    out.push_back({r, message_content(m, i)});
  }
  return out;
}

}  // namespace

json error_object(const std::string& message, const std::string& type, const std::string& param,
                  const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json error_object(const ApiError& e) { return error_object(e.what(), e.type, e.param, e.code); }

json parse_json_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    // nlohmann's message names the byte offset and what it expected (or "ill-formed UTF-8").
    throw ApiError(400, cat("the body is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object");
  return j;
}

CompletionRequest parse_completion_request(const json& body) {
  Fields f(body);
  CompletionRequest r;
  const json* p = f.get("prompt");
  if (!p) throw ApiError(400, "'prompt' is required", "prompt");
  if (p->is_string()) {
    r.prompt_texts.push_back(p->get<std::string>());
  } else if (p->is_array() && !p->empty()) {
    if ((*p)[0].is_string()) {
      for (const json& s : *p) {
        if (!s.is_string()) throw ApiError(400, "'prompt' mixes strings with other types", "prompt");
        r.prompt_texts.push_back(s.get<std::string>());
      }
    } else if ((*p)[0].is_array()) {
      for (const json& ids : *p) {
        if (!ids.is_array()) throw ApiError(400, "'prompt' mixes arrays of token ids with other types", "prompt");
        r.prompt_ids.push_back(parse_ids(ids));
      }
    } else {
      r.prompt_ids.push_back(parse_ids(*p));
    }
  } else {
    throw ApiError(400, "'prompt' must be a string, an array of strings, an array of token ids or an array of "
                        "arrays of token ids (not empty)", "prompt");
  }
  if (auto v = f.integer("max_tokens", 0, std::numeric_limits<int32_t>::max())) r.max_tokens = *v;
  parse_common(f, r);
  if (auto v = f.integer("logprobs", 0, kMaxLogprobs)) r.logprobs = int(*v);
  if (auto v = f.boolean("echo")) r.echo = *v;
  if (auto v = f.integer("best_of", 1, kMaxChoices); v && *v != r.n)
    throw ApiError(400, "'best_of' is not supported (only equal to n)", "best_of");
  if (auto s = f.string("suffix"); s && !s->empty())
    throw ApiError(400, "'suffix' is not supported (Grok-1 has no infilling)", "suffix");
  f.refuse_unknown();
  return r;
}

CompletionRequest parse_chat_request(const json& body) {
  Fields f(body);
  CompletionRequest r;
  r.chat = true;
  r.messages = parse_messages(f);
  std::optional<int64_t> max_tokens = f.integer("max_tokens", 0, std::numeric_limits<int32_t>::max());
  if (auto v = f.integer("max_completion_tokens", 0, std::numeric_limits<int32_t>::max())) max_tokens = v;
  r.max_tokens = max_tokens;
  parse_common(f, r);
  const bool logprobs = f.boolean("logprobs").value_or(false);
  const std::optional<int64_t> top = f.integer("top_logprobs", 0, kMaxLogprobs);
  if (top && !logprobs) throw ApiError(400, "'top_logprobs' needs \"logprobs\": true", "top_logprobs");
  if (logprobs) r.logprobs = int(top.value_or(0));
  f.refuse_unknown();
  return r;
}

std::string openai_finish_reason(const std::string& engine_reason) {
  return engine_reason == "length" ? "length" : "stop";
}

std::string token_text(const Tokenizer& tokenizer, int32_t id) {
  const std::string piece = tokenizer.piece(id);
  if (tokenizer.is_byte(id) && piece.size() == 6 && piece.rfind("<0x", 0) == 0) {
    const int byte = std::stoi(piece.substr(3, 2), nullptr, 16);
    if (byte < 0x80) return std::string(1, char(byte));
    return "bytes:\\x" + piece.substr(3, 2);  // a part of a character: OpenAI's notation
  }
  if (tokenizer.is_control(id)) return piece;
  std::string out;
  static const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's word boundary
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += piece[i++];
    }
  }
  return out;
}

TokenLogprob token_logprob(const Tokenizer& tokenizer, const TokenEvent& event, size_t text_offset) {
  // log(0) would be -inf, which JSON cannot carry; the float's lowest stands in.
  auto lp = [](float p) { return p > 0 ? std::log(p) : std::numeric_limits<float>::lowest(); };
  TokenLogprob t;
  t.token = event.text;
  t.text_offset = text_offset;
  if (!event.scored) return t;
  t.logprob = lp(event.prob);
  // Alternatives top_p had ruled out (probability 0) could not have been drawn: left out.
  for (const auto& [id, p] : event.top)
    if (p > 0) t.top.emplace_back(token_text(tokenizer, id), lp(p));
  t.text_offset = text_offset;
  return t;
}

size_t utf8_length(std::string_view text) {
  size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

json completion_logprobs(const std::vector<TokenLogprob>& tokens) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprob& t : tokens) {
    toks.push_back(t.token);
    if (!t.logprob) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      offsets.push_back(t.text_offset);
      continue;
    }
    lps.push_back(*t.logprob);
    json top = json::object();
    for (const auto& [s, lp] : t.top)
      if (!top.contains(s)) top[s] = lp;  // two ids may share a text; the more probable is listed
    tops.push_back(top);
    offsets.push_back(t.text_offset);
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json chat_logprobs(const std::vector<TokenLogprob>& tokens) {
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(int(c));
    return b;
  };
  json content = json::array();
  for (const TokenLogprob& t : tokens) {
    json top = json::array();
    for (const auto& [s, lp] : t.top) top.push_back({{"token", s}, {"logprob", lp}, {"bytes", bytes(s)}});
    const json logprob = t.logprob ? json(*t.logprob) : json(nullptr);
    content.push_back({{"token", t.token}, {"logprob", logprob}, {"bytes", bytes(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

json usage_object(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json models_response(const std::string& model_id, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "grok"}}})}};
}

json completion_response(const ResponseHeader& h, const std::vector<Choice>& choices, const json& usage) {
  json cs = json::array();
  for (const Choice& c : choices)
    cs.push_back({{"index", c.index},
                  {"text", c.text},
                  {"logprobs", c.logprobs ? *c.logprobs : json(nullptr)},
                  {"finish_reason", c.finish_reason}});
  return {{"id", h.id},       {"object", "text_completion"}, {"created", h.created},
          {"model", h.model}, {"choices", cs},               {"usage", usage}};
}

json chat_response(const ResponseHeader& h, const std::vector<Choice>& choices, const json& usage) {
  json cs = json::array();
  for (const Choice& c : choices)
    cs.push_back({{"index", c.index},
                  {"message", {{"role", "assistant"}, {"content", c.text}}},
                  {"logprobs", c.logprobs ? *c.logprobs : json(nullptr)},
                  {"finish_reason", c.finish_reason}});
  return {{"id", h.id},       {"object", "chat.completion"}, {"created", h.created},
          {"model", h.model}, {"choices", cs},               {"usage", usage}};
}

json completion_chunk(const ResponseHeader& h, int index, const std::string& text, const json& logprobs,
                      const std::string& finish_reason) {
  json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  return {{"id", h.id},       {"object", "text_completion"}, {"created", h.created},
          {"model", h.model}, {"choices", json::array({choice})}};
}

json chat_chunk(const ResponseHeader& h, int index, const json& delta, const json& logprobs,
                const std::string& finish_reason) {
  json choice = {{"index", index},
                 {"delta", delta},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason.empty() ? json(nullptr) : json(finish_reason)}};
  return {{"id", h.id},       {"object", "chat.completion.chunk"}, {"created", h.created},
          {"model", h.model}, {"choices", json::array({choice})}};
}

json usage_chunk(const ResponseHeader& h, bool chat, const json& usage) {
  return {{"id", h.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"choices", json::array()},
          {"usage", usage}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace grok::server
