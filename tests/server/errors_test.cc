// Bad requests get a 4xx and an OpenAI error object naming what is wrong;
// the server keeps serving afterwards.
#include <gtest/gtest.h>

#include "server/server_support.h"

namespace grok::test {
namespace {

// Expects `status` with {"error": {"message", "type", "param", "code"}} whose param is `param` ("" for null).
void expect_error(const Reply& r, int status, const std::string& param, const std::string& needle = "") {
  EXPECT_EQ(r.status, status) << r.raw;
  ASSERT_TRUE(r.body.is_object()) << r.raw;
  ASSERT_TRUE(r.body.contains("error")) << r.raw;
  const json& e = r.body["error"];
  ASSERT_TRUE(e["message"].is_string()) << r.raw;
  EXPECT_TRUE(e["type"].is_string()) << r.raw;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << r.raw;
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << r.raw;
  } else {
    EXPECT_EQ(e["param"], param) << r.raw;
  }
  if (!needle.empty()) {
    EXPECT_NE(e["message"].get<std::string>().find(needle), std::string::npos) << r.raw;
  }
}

TEST(ServerErrors, MalformedBodies) {
  ServerHarness h;
  expect_error(h.post("/v1/completions", std::string("{\"prompt\": \"a\"")), 400, "", "not valid JSON");
  expect_error(h.post("/v1/completions", std::string("")), 400, "", "not valid JSON");
  expect_error(h.post("/v1/completions", std::string("[1, 2]")), 400, "", "JSON object");
  // Broken UTF-8 inside a string.
  expect_error(h.post("/v1/completions", std::string("{\"prompt\": \"a\xff\xfe b\"}")), 400, "", "UTF-8");
  expect_error(h.post("/v1/chat/completions", std::string("{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\"}]}")),
               400, "");
}

TEST(ServerErrors, WrongTypes) {
  ServerHarness h;
  expect_error(h.post("/v1/completions", json{{"prompt", 5}}), 400, "prompt");
  expect_error(h.post("/v1/completions", json{{"prompt", json::array()}}), 400, "prompt");
  expect_error(h.post("/v1/completions", json{{"prompt", {"a", 1}}}), 400, "prompt");
  expect_error(h.post("/v1/completions", json{{"prompt", {1, "a"}}}), 400, "prompt");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", "ten"}}), 400, "max_tokens");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"n", 1.5}}), 400, "n");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"temperature", "hot"}}), 400, "temperature");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"stream", 1}}), 400, "stream");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"stop", {1}}}), 400, "stop");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"echo", "yes"}}), 400, "echo");
  expect_error(h.post("/v1/chat/completions", json{{"messages", "hi"}}), 400, "messages");
  expect_error(h.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", 3}}}}}), 400, "messages");
  expect_error(h.post("/v1/chat/completions", json{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}), 400,
               "messages", "role");
}

TEST(ServerErrors, UnknownAndMissingFields) {
  ServerHarness h;
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"frobnicate", true}}), 400, "frobnicate", "unknown");
  expect_error(h.post("/v1/completions", json{{"max_tokens", 3}}), 400, "prompt", "required");
  expect_error(h.post("/v1/chat/completions", json{{"model", "x"}}), 400, "messages", "required");
  expect_error(h.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"prompt", "a"}}),
               400, "prompt", "unknown");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"presence_penalty", 0.5}}), 400, "presence_penalty");
}

TEST(ServerErrors, OutOfRangeValues) {
  ServerHarness h;
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"temperature", 3}}), 400, "temperature");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"temperature", -0.1}}), 400, "temperature");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"top_p", 1.5}}), 400, "top_p");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"n", 0}}), 400, "n");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"n", 1000}}), 400, "n");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", -1}}), 400, "max_tokens");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"logprobs", 9}}), 400, "logprobs");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"seed", -5}}), 400, "seed");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"stop", {""}}}), 400, "stop");
  expect_error(h.post("/v1/completions", json{{"prompt", {1, 2, 1000000}}}), 400, "prompt", "out of range");
  expect_error(h.post("/v1/completions", json{{"prompt", {1, -2}}}), 400, "prompt", "out of range");
  expect_error(h.post("/v1/completions", json{{"prompt", ""}}), 400, "prompt", "empty");
  // More than the context: the built-in model's is 2048.
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", 5000}}), 400, "max_tokens");
}

TEST(ServerErrors, ServerLimits) {
  server::ServerOptions o;
  o.http.max_body_bytes = 4096;
  o.service.max_prompt_tokens = 10;
  o.service.max_tokens_limit = 50;
  ServerHarness h(o);
  const std::string big = json{{"prompt", std::string(5000, 'a')}}.dump();
  expect_error(h.post("/v1/completions", big), 413, "", "too large");
  const Reply r = h.post("/v1/completions", json{{"prompt", std::vector<int>(11, 5)}});
  expect_error(r, 400, "prompt", "at most 10");
  EXPECT_EQ(r.body["error"]["code"], "context_length_exceeded");
  expect_error(h.post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", 51}}), 400, "max_tokens", "at most 50");
  // Still serving.
  EXPECT_EQ(h.post("/v1/completions", json{{"prompt", std::vector<int>(10, 5)}, {"max_tokens", 50}}).status, 200);
}

TEST(ServerErrors, ApiKey) {
  server::ServerOptions o;
  o.http.api_key = "sekret-key";
  ServerHarness h(o);
  const json body = {{"prompt", "a"}, {"max_tokens", 2}};
  Reply r = h.post("/v1/completions", body);
  expect_error(r, 401, "", "no API key");
  EXPECT_EQ(r.header("WWW-Authenticate"), "Bearer");
  expect_error(h.post("/v1/completions", body.dump(), {{"Authorization", "Bearer sekret-kez"}}), 401, "", "wrong");
  expect_error(h.post("/v1/completions", body.dump(), {{"Authorization", "Bearer sekret"}}), 401, "", "wrong");
  expect_error(h.post("/v1/completions", body.dump(), {{"Authorization", "Basic sekret-key"}}), 401, "");
  EXPECT_EQ(h.post("/v1/completions", body.dump(), {{"Authorization", "Bearer sekret-key"}}).status, 200);
  EXPECT_EQ(h.get("/v1/models").status, 401);
  EXPECT_EQ(h.get("/health").status, 200);  // health and metrics stay open for probes
}

TEST(ServerErrors, UnknownEndpoint) {
  ServerHarness h;
  expect_error(h.get("/v2/nothing"), 404, "", "no such endpoint");
  expect_error(h.post("/v1/models", json::object()), 404, "");
}

TEST(ServerErrors, ConstantTimeCompare) {
  EXPECT_TRUE(server::constant_time_equal("abc", "abc"));
  EXPECT_FALSE(server::constant_time_equal("abd", "abc"));
  EXPECT_FALSE(server::constant_time_equal("ab", "abc"));
  EXPECT_FALSE(server::constant_time_equal("abcd", "abc"));
  EXPECT_FALSE(server::constant_time_equal("", "abc"));
}

}  // namespace
}  // namespace grok::test
