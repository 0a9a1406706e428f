// /v1/completions and /v1/chat/completions give Engine::generate's text for
// the same seed, streamed or not, with OpenAI's response shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "server/chat_template.h"
#include "server/openai_api.h"
#include "server/server_support.h"

namespace grok::test {
namespace {

std::string stream_text(const std::vector<std::string>& payloads, int index, std::string* finish = nullptr,
                        bool chat = false) {
  std::string text;
  for (const std::string& p : payloads) {
    if (p == "[DONE]") continue;
    const json j = json::parse(p);
    for (const json& c : j["choices"]) {
      if (c["index"] != index) continue;
      text += chat ? c["delta"].value("content", "") : c["text"].get<std::string>();
      if (finish && !c["finish_reason"].is_null()) *finish = c["finish_reason"];
    }
  }
  return text;
}

TEST(ServerCompletions, EqualsGenerateWithTheSameSeed) {
  ServerHarness h;
  const GenerateResult want = reference("Hello world", gen_options(20, 0.8f, 5));
  const Reply r = h.post("/v1/completions", json{{"prompt", "Hello world"}, {"max_tokens", 20}, {"seed", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_EQ(r.body["model"], "grok");
  ASSERT_EQ(r.body["choices"].size(), 1u);
  EXPECT_EQ(r.body["choices"][0]["text"], want.text);
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], want.finish_reason == "length" ? "length" : "stop");
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], want.prompt_ids.size());
  EXPECT_EQ(r.body["usage"]["completion_tokens"], want.ids.size());
  EXPECT_EQ(r.body["usage"]["total_tokens"], want.prompt_ids.size() + want.ids.size());
}

TEST(ServerCompletions, DefaultsAreGenerates) {
  // No temperature, top_p or seed: grok generate's 0.8, 0.95 and 42; max_tokens OpenAI's 16.
  ServerHarness h;
  const GenerateResult want = reference("The answer", gen_options(16, 0.8f, 42));
  const Reply r = h.post("/v1/completions", json{{"prompt", "The answer"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], want.text);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], want.ids.size());
}

TEST(ServerCompletions, StreamEqualsGenerate) {
  ServerHarness h;
  const GenerateResult want = reference("Once upon", gen_options(24, 1.0f, 9, 0.9f));
  const Reply r = h.post("/v1/completions", json{{"prompt", "Once upon"}, {"max_tokens", 24}, {"temperature", 1.0},
                                                 {"top_p", 0.9}, {"seed", 9}, {"stream", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.header("Content-Type").rfind("text/event-stream", 0), 0u) << r.header("Content-Type");
  const auto payloads = sse_payloads(r.raw);
  ASSERT_GE(payloads.size(), 2u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string finish;
  EXPECT_EQ(stream_text(payloads, 0, &finish), want.text);
  EXPECT_EQ(finish, want.finish_reason == "length" ? "length" : "stop");
  // Usage rides on the last chunk before [DONE].
  const json last = json::parse(payloads[payloads.size() - 2]);
  EXPECT_EQ(last["usage"]["completion_tokens"], want.ids.size());
  EXPECT_EQ(last["usage"]["prompt_tokens"], want.prompt_ids.size());
}

TEST(ServerCompletions, StreamIncludeUsageSendsAUsageChunk) {
  ServerHarness h;
  const Reply r = h.post("/v1/completions", json{{"prompt", "Hi"}, {"max_tokens", 5}, {"stream", true},
                                                 {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const auto payloads = sse_payloads(r.raw);
  ASSERT_GE(payloads.size(), 2u);
  const json usage = json::parse(payloads[payloads.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], usage["usage"]["prompt_tokens"].get<int>() +
                                                usage["usage"]["completion_tokens"].get<int>());
}

TEST(ServerCompletions, ChoicesUseConsecutiveSeeds) {
  ServerHarness h;
  const Reply r = h.post("/v1/completions", json{{"prompt", "Tell me"}, {"max_tokens", 12}, {"seed", 100}, {"n", 3}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 3u);
  int64_t completion = 0;
  for (int i = 0; i < 3; ++i) {
    const GenerateResult want = reference("Tell me", gen_options(12, 0.8f, 100 + uint64_t(i)));
    EXPECT_EQ(r.body["choices"][i]["index"], i);
    EXPECT_EQ(r.body["choices"][i]["text"], want.text) << "choice " << i;
    completion += int64_t(want.ids.size());
  }
  EXPECT_EQ(r.body["usage"]["completion_tokens"], completion);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], reference("Tell me", gen_options(0, 0, 0)).prompt_ids.size());
}

TEST(ServerCompletions, StreamedChoicesEachEqualGenerate) {
  ServerHarness h;
  const Reply r = h.post("/v1/completions",
                         json{{"prompt", "Tell me"}, {"max_tokens", 12}, {"seed", 100}, {"n", 2}, {"stream", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const auto payloads = sse_payloads(r.raw);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(stream_text(payloads, i), reference("Tell me", gen_options(12, 0.8f, 100 + uint64_t(i))).text);
}

TEST(ServerCompletions, PromptsAsStringsAndTokenIds) {
  ServerHarness h;
  const Tokenizer tok = Tokenizer::builtin();
  const std::vector<int32_t> a = tok.encode("First prompt"), b = tok.encode("Second one");
  const GenerateResult wa = reference(a, gen_options(8, 0, 1)), wb = reference(b, gen_options(8, 0, 1));

  Reply r = h.post("/v1/completions", json{{"prompt", {"First prompt", "Second one"}}, {"max_tokens", 8},
                                           {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 2u);
  EXPECT_EQ(r.body["choices"][0]["text"], wa.text);
  EXPECT_EQ(r.body["choices"][1]["text"], wb.text);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], a.size() + b.size());

  r = h.post("/v1/completions", json{{"prompt", a}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], wa.text);

  r = h.post("/v1/completions", json{{"prompt", {a, b}}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], wa.text);
  EXPECT_EQ(r.body["choices"][1]["text"], wb.text);
}

TEST(ServerCompletions, EchoPrependsThePrompt) {
  ServerHarness h;
  const GenerateResult want = reference("Echo this", gen_options(6, 0, 1));
  Reply r = h.post("/v1/completions", json{{"prompt", "Echo this"}, {"max_tokens", 6}, {"temperature", 0}, {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], "Echo this" + want.text);
  r = h.post("/v1/completions",
             json{{"prompt", "Echo this"}, {"max_tokens", 6}, {"temperature", 0}, {"echo", true}, {"stream", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(stream_text(sse_payloads(r.raw), 0), "Echo this" + want.text);
}

// echo with logprobs, as OpenAI's legacy completions: the prompt's tokens
// open the logprobs (the first with null logprob and alternatives), their
// offsets count from the start of the echoed text, and the generated part
// is what logprobs without echo gives. max_tokens 0 scores a prompt.
TEST(ServerCompletions, EchoWithLogprobsScoresThePromptTokens) {
  ServerHarness h;
  const std::string prompt = "Echo this prompt and score it";
  const size_t n_prompt = Tokenizer::builtin().encode(prompt).size();
  const json base = {{"prompt", prompt}, {"max_tokens", 6}, {"temperature", 0}, {"logprobs", 2}};
  const Reply plain = h.post("/v1/completions", base);
  ASSERT_EQ(plain.status, 200) << plain.raw;
  json req = base;
  req["echo"] = true;
  const Reply r = h.post("/v1/completions", req);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& choice = r.body["choices"][0];
  const json& lp = choice["logprobs"];
  const json& generated = plain.body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), n_prompt + generated["tokens"].size());
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  std::string joined;
  size_t code_points = 0;
  for (size_t i = 0; i < lp["tokens"].size(); ++i) {
    EXPECT_EQ(lp["text_offset"][i], code_points) << i;
    const std::string token = lp["tokens"][i].get<std::string>();
    joined += token;
    for (unsigned char c : token) code_points += (c & 0xC0) != 0x80;
    if (i == 0) continue;
    ASSERT_TRUE(lp["token_logprobs"][i].is_number()) << i;
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0) << i;
    EXPECT_GE(lp["top_logprobs"][i].size(), 1u) << i;
  }
  EXPECT_EQ(joined, choice["text"]);
  EXPECT_EQ(choice["text"], prompt + plain.body["choices"][0]["text"].get<std::string>());
  for (size_t i = 0; i < generated["tokens"].size(); ++i) {
    EXPECT_EQ(lp["tokens"][n_prompt + i], generated["tokens"][i]) << i;
    EXPECT_EQ(lp["token_logprobs"][n_prompt + i], generated["token_logprobs"][i]) << i;
  }

  // Streamed: the first chunk carries the echoed text and the prompt's logprobs.
  req["stream"] = true;
  const Reply s = h.post("/v1/completions", req);
  ASSERT_EQ(s.status, 200) << s.raw;
  const auto payloads = sse_payloads(s.raw);
  ASSERT_FALSE(payloads.empty());
  const json first = json::parse(payloads[0]);
  EXPECT_EQ(first["choices"][0]["text"], prompt);
  ASSERT_EQ(first["choices"][0]["logprobs"]["tokens"].size(), n_prompt);
  for (size_t i = 0; i < n_prompt; ++i)
    EXPECT_EQ(first["choices"][0]["logprobs"]["token_logprobs"][i], lp["token_logprobs"][i]) << i;

  // Scoring only.
  req = {{"prompt", prompt}, {"max_tokens", 0}, {"logprobs", 0}, {"echo", true}};
  const Reply z = h.post("/v1/completions", req);
  ASSERT_EQ(z.status, 200) << z.raw;
  EXPECT_EQ(z.body["choices"][0]["text"], prompt);
  ASSERT_EQ(z.body["choices"][0]["logprobs"]["tokens"].size(), n_prompt);
  EXPECT_EQ(z.body["choices"][0]["logprobs"]["token_logprobs"][1], lp["token_logprobs"][1]);
  EXPECT_EQ(z.body["usage"]["completion_tokens"], 0);
}

TEST(ServerCompletions, StopEndsTheText) {
  ServerHarness h;
  const GenerateResult full = reference("Stop somewhere", gen_options(30, 0.8f, 3));
  ASSERT_GT(full.text.size(), 10u);
  // Three ASCII characters from the middle, so the stop string is whole UTF-8.
  size_t at = 4;
  while (at + 3 < full.text.size() &&
         !(isascii(full.text[at]) && isascii(full.text[at + 1]) && isascii(full.text[at + 2])))
    ++at;
  ASSERT_LT(at + 3, full.text.size());
  const std::string stop = full.text.substr(at, 3);
  GenerateOptions o = gen_options(30, 0.8f, 3);
  o.stop = {stop};
  const GenerateResult want = reference("Stop somewhere", o);
  ASSERT_EQ(want.finish_reason, "stop");
  const Reply r = h.post("/v1/completions",
                         json{{"prompt", "Stop somewhere"}, {"max_tokens", 30}, {"seed", 3}, {"stop", stop}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["choices"][0]["text"], want.text);
  EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop");
  const Reply s = h.post("/v1/completions", json{{"prompt", "Stop somewhere"}, {"max_tokens", 30}, {"seed", 3},
                                                 {"stop", {stop}}, {"stream", true}});
  std::string finish;
  EXPECT_EQ(stream_text(sse_payloads(s.raw), 0, &finish), want.text);
  EXPECT_EQ(finish, "stop");
}

TEST(ServerCompletions, LogprobsMatchTheSampledDistribution) {
  ServerHarness h;
  GenerateOptions o = gen_options(10, 0.8f, 11);
  o.top_probs = 3;
  std::vector<TokenEvent> events;
  const Tokenizer tok = Tokenizer::builtin();
  Engine engine = builtin_engine();
  const GenerateResult want = engine.generate(tok.encode("Probabilities"), o, [&](const TokenEvent& ev) {
    if (ev.id >= 0) events.push_back(ev);
  });
  const Reply r = h.post("/v1/completions", json{{"prompt", "Probabilities"}, {"max_tokens", 10}, {"seed", 11},
                                                 {"logprobs", 3}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& lp = r.body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), events.size());
  ASSERT_EQ(lp["token_logprobs"].size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), std::log(events[i].prob), 1e-5) << i;
    EXPECT_LE(lp["top_logprobs"][i].size(), 3u);
    EXPECT_GE(lp["top_logprobs"][i].size(), 1u);
    EXPECT_LE(lp["text_offset"][i].get<size_t>(), want.text.size());
  }
  EXPECT_EQ(r.body["choices"][0]["text"], want.text);  // asking for logprobs changes nothing drawn
}

// Code points, as text_offset counts them.
size_t chars(const std::string& s) { return server::utf8_length(s); }

TEST(ServerCompletions, LogprobTokensSpellTheTextAtTheirOffsets) {
  ServerHarness h;
  // With this seed the built-in model draws an unknown piece and byte-fallback pieces: text that is not the pieces'.
  const std::string prompt = "The answer to life the universe and everything is";
  const GenerateResult want = reference(prompt, gen_options(24, 0.8f, 7));
  ASSERT_LT(chars(want.text), want.text.size()) << "the reference text has no multi-byte character: " << want.text;
  const Reply r = h.post("/v1/completions", json{{"prompt", prompt}, {"max_tokens", 24}, {"seed", 7}, {"logprobs", 1}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const std::string text = r.body["choices"][0]["text"];
  ASSERT_EQ(text, want.text);
  const json& lp = r.body["choices"][0]["logprobs"];
  std::string joined;
  for (size_t i = 0; i < lp["tokens"].size(); ++i) {
    EXPECT_EQ(lp["text_offset"][i].get<size_t>(), chars(joined)) << "token " << i;
    joined += lp["tokens"][i].get<std::string>();
  }
  EXPECT_EQ(joined, text);
  // Streamed: each chunk's tokens spell that chunk's text.
  const Reply s = h.post("/v1/completions", json{{"prompt", prompt}, {"max_tokens", 24}, {"seed", 7},
                                                 {"logprobs", 1}, {"stream", true}});
  ASSERT_EQ(s.status, 200) << s.raw;
  std::string streamed;
  for (const std::string& p : sse_payloads(s.raw)) {
    if (p == "[DONE]") continue;
    const json c = json::parse(p)["choices"][0];
    if (!c["logprobs"].is_null()) {
      std::string tokens;
      for (const json& t : c["logprobs"]["tokens"]) tokens += t.get<std::string>();
      EXPECT_EQ(tokens, c["text"].get<std::string>());
      EXPECT_EQ(c["logprobs"]["text_offset"][0].get<size_t>(), chars(streamed));
    }
    streamed += c["text"].get<std::string>();
  }
  EXPECT_EQ(streamed, want.text);
}

TEST(ServerChat, EqualsGenerateOnTheTemplatedPrompt) {
  ServerHarness h;
  const server::ChatTemplate tmpl;
  const std::string prompt = tmpl.render({{"system", "Be brief."}, {"user", "Hi there"}});
  EXPECT_EQ(prompt, "System: Be brief.\nUser: Hi there\nAssistant:");
  GenerateOptions o = gen_options(20, 0.8f, 4);
  o.stop = tmpl.stop;
  const GenerateResult want = reference(prompt, o);
  const json body = {{"messages", {{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "Hi there"}}}},
                     {"max_tokens", 20},
                     {"seed", 4}};
  Reply r = h.post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "chat.completion");
  EXPECT_EQ(r.body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], want.text);
  EXPECT_EQ(r.body["usage"]["prompt_tokens"], want.prompt_ids.size());
  EXPECT_EQ(r.body["usage"]["completion_tokens"], want.ids.size());

  json streamed = body;
  streamed["stream"] = true;
  r = h.post("/v1/chat/completions", streamed);
  ASSERT_EQ(r.status, 200) << r.raw;
  const auto payloads = sse_payloads(r.raw);
  ASSERT_GE(payloads.size(), 3u);
  const json first = json::parse(payloads[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(stream_text(payloads, 0, nullptr, true), want.text);
  EXPECT_EQ(payloads.back(), "[DONE]");
}

TEST(ServerChat, TextPartsAndLogprobs) {
  ServerHarness h;
  const json body = {{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi "}}, {{"type", "text"}, {"text", "there"}}}}}}},
                     {"max_tokens", 5},
                     {"temperature", 0},
                     {"logprobs", true},
                     {"top_logprobs", 2}};
  const Reply r = h.post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  const server::ChatTemplate tmpl;
  GenerateOptions o = gen_options(5, 0, 0);
  o.stop = tmpl.stop;
  const GenerateResult want = reference(tmpl.render({{"user", "Hi there"}}), o);
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], want.text);
  const json& content = r.body["choices"][0]["logprobs"]["content"];
  ASSERT_TRUE(content.is_array());
  EXPECT_GE(content.size(), 1u);
  for (const json& t : content) {
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_EQ(t["top_logprobs"].size(), 2u);
    EXPECT_TRUE(t["bytes"].is_array());
  }
}

TEST(ServerEndpoints, ModelsHealthAndPage) {
  ServerHarness h;
  Reply r = h.get("/v1/models");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["object"], "list");
  EXPECT_EQ(r.body["data"][0]["id"], "grok");
  r = h.get("/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["status"], "ok");
  r = h.get("/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
  // The page is web/index.html as it was at build time, byte for byte.
  std::ifstream page(std::string(GROK_TOOLS_DIR) + "/../../web/index.html", std::ios::binary);
  if (page) {
    const std::string want{std::istreambuf_iterator<char>(page), std::istreambuf_iterator<char>()};
    EXPECT_EQ(r.raw, want);
  }
}

}  // namespace
}  // namespace grok::test
