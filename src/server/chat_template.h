// How chat messages become a prompt for a base model. Grok-1 has no chat
// format of its own, so the default is a plain transcript:
//   System: {content}\nUser: {content}\nAssistant: {content}\n ... Assistant:
// with "\nUser:" as a stop string, so the model's turn ends where it would
// start writing the user's. `grok serve --chat-template FILE` replaces it
// with a JSON object of the same fields (see README).
#pragma once

#include <string>
#include <vector>

namespace grok::server {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatTemplate {
  // Each message is its role's pattern with "{content}" replaced by the text.
  std::string system = "System: {content}\n";
  std::string user = "User: {content}\n";
  std::string assistant = "Assistant: {content}\n";
  std::string generation_prompt = "Assistant:";  // appended after the last message
  std::vector<std::string> stop = {"\nUser:"};   // added to the request's own stop strings

  // A JSON file with any of the fields above; throws grok::Error naming the
  // file and the bad field.
  static ChatTemplate from_json_file(const std::string& path);
  std::string render(const std::vector<ChatMessage>& messages) const;
};

}  // namespace grok::server
