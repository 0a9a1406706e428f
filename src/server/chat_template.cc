#include "server/chat_template.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace grok::server {
namespace {

std::string fill(const std::string& pattern, const std::string& content) {
  std::string out;
  size_t from = 0;
  for (size_t at; (at = pattern.find("{content}", from)) != std::string::npos; from = at + 9)
    out += pattern.substr(from, at - from) + content;
  return out + pattern.substr(from);
}

}  // namespace

ChatTemplate ChatTemplate::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the chat template");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object()) fail(path, ": a chat template must be a JSON object (see README, `grok serve`)");
  ChatTemplate t;
  for (const auto& [key, value] : j.items()) {
    std::string* field = key == "system"              ? &t.system
                         : key == "user"              ? &t.user
                         : key == "assistant"         ? &t.assistant
                         : key == "generation_prompt" ? &t.generation_prompt
                                                      : nullptr;
    if (field && value.is_string()) {
      *field = value.get<std::string>();
    } else if (key == "stop" && value.is_array()) {
      t.stop.clear();
      for (const auto& s : value) {
        if (!s.is_string() || s.get<std::string>().empty()) fail(path, ": \"stop\" must hold non-empty strings");
        t.stop.push_back(s.get<std::string>());
      }
    } else {
      fail(path, ": unknown or mistyped chat template field ", quote_name(key),
           " (fields: system, user, assistant, generation_prompt as strings; stop as an array of strings)");
    }
  }
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages) const {
  std::string out;
  for (const ChatMessage& m : messages)
    out += fill(m.role == "system" ? system : m.role == "user" ? user : assistant, m.content);
  return out + generation_prompt;
}

}  // namespace grok::server
