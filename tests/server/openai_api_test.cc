// The request schema and the chat template, apart from any transport.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "server/chat_template.h"
#include "server/openai_api.h"
#include "test_support.h"

namespace grok::server {
namespace {

TEST(OpenAiApi, ParsesEveryField) {
  const CompletionRequest r = parse_completion_request(json::parse(R"({
    "model": "m", "prompt": ["a", "b"], "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 3,
    "stop": ["x", "y"], "n": 2, "stream": true, "stream_options": {"include_usage": true}, "logprobs": 4,
    "echo": false, "user": "u", "presence_penalty": 0, "frequency_penalty": 0.0, "logit_bias": {}, "best_of": 2})"));
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt_texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.seed, 3u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.logprobs, 4);
}

TEST(OpenAiApi, NullMeansUnsetAndWholeFloatsAreIntegers) {
  const CompletionRequest r =
      parse_completion_request(json::parse(R"({"prompt": [[1, 2], [3]], "max_tokens": 5.0, "stop": null, "seed": null})"));
  EXPECT_EQ(r.prompt_ids, (std::vector<std::vector<int32_t>>{{1, 2}, {3}}));
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_EQ(r.seed, 42u);
}

TEST(OpenAiApi, ChatFields) {
  const CompletionRequest r = parse_chat_request(json::parse(R"({"messages": [{"role": "user", "content": "hi", "name": "x"}],
    "max_completion_tokens": 9, "logprobs": true, "top_logprobs": 3})"));
  EXPECT_TRUE(r.chat);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.max_tokens, 9);
  EXPECT_EQ(r.logprobs, 3);
  try {
    parse_chat_request(json::parse(R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})"));
    ADD_FAILURE() << "top_logprobs without logprobs accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "top_logprobs");
  }
}

TEST(OpenAiApi, ErrorObjectShape) {
  const json e = error_object(ApiError(400, "bad", "n"));
  EXPECT_EQ(e["error"]["message"], "bad");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "n");
  EXPECT_TRUE(e["error"]["code"].is_null());
}

TEST(OpenAiApi, TokenTextShowsSpacesAndBytes) {
  const Tokenizer tok = Tokenizer::builtin();
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string t = token_text(tok, id);
    if (tok.is_byte(id)) {
      // ASCII as itself; a byte of a longer character in OpenAI's notation, never invalid UTF-8.
      const int byte = std::stoi(tok.piece(id).substr(3, 2), nullptr, 16);
      EXPECT_EQ(t, byte < 0x80 ? std::string(1, char(byte)) : "bytes:\\x" + tok.piece(id).substr(3, 2));
    } else if (!tok.is_control(id)) {
      EXPECT_EQ(t.find("\xE2\x96\x81"), std::string::npos) << tok.piece(id);
    }
  }
}

TEST(ChatTemplate, FromJsonFile) {
  const std::string path = test::temp_dir() + "/template.json";
  std::ofstream(path) << R"({"user": "<u>{content}</u>", "assistant": "<a>{content}</a>", "generation_prompt": "<a>",
                             "stop": ["</a>"]})";
  const ChatTemplate t = ChatTemplate::from_json_file(path);
  EXPECT_EQ(t.render({{"system", "S"}, {"user", "hi"}, {"assistant", "yo"}, {"user", "{content}"}}),
            "System: S\n<u>hi</u><a>yo</a><u>{content}</u><a>");
  EXPECT_EQ(t.stop, (std::vector<std::string>{"</a>"}));

  std::ofstream(path) << R"({"users": "x"})";
  test::expect_error([&] { ChatTemplate::from_json_file(path); }, "'users'");
  std::ofstream(path) << R"({"stop": [""]})";
  test::expect_error([&] { ChatTemplate::from_json_file(path); }, "stop");
  std::ofstream(path) << "not json";
  test::expect_error([&] { ChatTemplate::from_json_file(path); }, "JSON object");
}

}  // namespace
}  // namespace grok::server
