// Load and lifecycle: a full queue answers 429, a client that leaves frees
// its sequences, concurrent requests each get their own output, /metrics is
// Prometheus text, and a shutdown finishes or cancels what runs.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <regex>
#include <sstream>

#include "server/server_support.h"

namespace grok::test {
namespace {

// A POST whose client hangs up as soon as the response headers arrive, or
// after the first piece of body when `after_body` is set.
httplib::Error post_and_hang_up(const ServerHarness& h, const json& body, bool after_body) {
  auto c = h.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.response_handler = [after_body](const httplib::Response& res) { return res.status == 200 && after_body; };
  req.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };
  return c->send(req).error();
}

TEST(ServerLoad, FullQueueAnswers429WithRetryAfter) {
  server::ServerOptions o;
  o.scheduler.max_batch = 1;
  o.scheduler.max_queue = 1;
  ServerHarness h(o);
  h.server().scheduler().set_paused(true);  // nothing runs: the two requests stay in flight
  const json body = {{"prompt", "Fill"}, {"max_tokens", 4}, {"seed", 1}};
  auto first = std::async(std::launch::async, [&] { return h.post("/v1/completions", body); });
  auto second = std::async(std::launch::async, [&] { return h.post("/v1/completions", body); });
  ASSERT_TRUE(h.wait_in_flight(2));
  const Reply busy = h.post("/v1/completions", body);
  EXPECT_EQ(busy.status, 429) << busy.raw;
  EXPECT_EQ(busy.header("Retry-After"), "1");
  EXPECT_EQ(busy.body["error"]["code"], "queue_full");
  // n beyond what could ever fit is the request's fault, not the load's.
  EXPECT_EQ(h.post("/v1/completions", json{{"prompt", "x"}, {"n", 3}}).status, 400);
  h.server().scheduler().set_paused(false);
  const std::string want = reference("Fill", gen_options(4, 0.8f, 1)).text;
  for (auto* f : {&first, &second}) {
    const Reply r = f->get();
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], want);
  }
  EXPECT_EQ(h.post("/v1/completions", body).status, 200);  // room again
}

TEST(ServerLoad, ClientLeavingWhileQueuedCancelsItsSequences) {
  ServerHarness h;
  h.server().scheduler().set_paused(true);
  // The client leaves once it has the headers; its sequences never ran.
  post_and_hang_up(h, json{{"prompt", "Gone"}, {"max_tokens", 100}, {"n", 2}, {"stream", true}}, false);
  EXPECT_TRUE(h.server().scheduler().wait_idle(std::chrono::seconds(60)));
  EXPECT_EQ(h.server().scheduler().in_flight(), 0);
  EXPECT_EQ(h.server().metrics().cancelled(), 2);
  h.server().scheduler().set_paused(false);
}

TEST(ServerLoad, ClientLeavingMidStreamCancelsItsSequence) {
  ServerHarness h;
  // Long enough that it cannot finish before the server notices the client left.
  const GenerateResult alone = reference("Long story", gen_options(1500, 0.8f, 21));
  ASSERT_EQ(alone.finish_reason, "length");
  post_and_hang_up(h, json{{"prompt", "Long story"}, {"max_tokens", 1500}, {"seed", 21}, {"stream", true}}, true);
  EXPECT_TRUE(h.server().scheduler().wait_idle(std::chrono::seconds(60)));
  EXPECT_EQ(h.server().metrics().cancelled(), 1);
  EXPECT_LT(h.server().metrics().generated_tokens(), 1500);
  // The server carries on.
  EXPECT_EQ(h.post("/v1/completions", json{{"prompt", "a"}, {"max_tokens", 2}}).status, 200);
}

TEST(ServerLoad, ConcurrentRequestsEachGetTheirOwnOutput) {
  server::ServerOptions o;
  o.scheduler.max_batch = 3;  // fewer places than requests: some wait, then join the running batch
  ServerHarness h(o);
  struct Case {
    std::string prompt;
    int max_tokens;
    double temperature;
    int seed;
    bool stream;
  };
  const std::vector<Case> cases = {{"One", 12, 0.8, 1, false},   {"Two words", 20, 1.0, 2, true},
                                   {"Three more words", 7, 0, 3, false}, {"Four", 15, 0.7, 4, true},
                                   {"Five five", 9, 0.9, 5, false},      {"Six", 18, 0.8, 6, true}};
  std::vector<std::future<Reply>> replies;
  for (const Case& c : cases)
    replies.push_back(std::async(std::launch::async, [&h, c] {
      return h.post("/v1/completions", json{{"prompt", c.prompt}, {"max_tokens", c.max_tokens},
                                            {"temperature", c.temperature}, {"seed", c.seed}, {"stream", c.stream}});
    }));
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const Reply r = replies[i].get();
    ASSERT_EQ(r.status, 200) << r.raw;
    std::string text;
    if (c.stream) {
      for (const std::string& p : sse_payloads(r.raw))
        if (p != "[DONE]") text += json::parse(p)["choices"][0]["text"].get<std::string>();
    } else {
      text = r.body["choices"][0]["text"];
    }
    EXPECT_EQ(text, reference(c.prompt, gen_options(c.max_tokens, float(c.temperature), uint64_t(c.seed))).text)
        << "request " << i;
  }
}

TEST(ServerMetrics, PrometheusText) {
  ServerHarness h;
  ASSERT_EQ(h.post("/v1/completions", json{{"prompt", "Count me"}, {"max_tokens", 5}, {"temperature", 0}}).status, 200);
  ASSERT_EQ(h.post("/v1/completions", std::string("nope")).status, 400);
  const Reply r = h.get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  // Every line is a comment (# HELP/# TYPE) or `name{labels} value`.
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$)");
  const std::regex meta(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::map<std::string, double> values;
  std::istringstream in(r.raw);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      EXPECT_TRUE(std::regex_match(line, meta)) << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, sample)) << line;
    const size_t sp = line.rfind(' ');
    values[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  const GenerateResult want = reference("Count me", gen_options(5, 0, 0));
  EXPECT_EQ(values["grok_requests_total{endpoint=\"/v1/completions\",status=\"200\"}"], 1);
  EXPECT_EQ(values["grok_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"], 1);
  EXPECT_EQ(values["grok_prompt_tokens_total"], double(want.prompt_ids.size()));
  EXPECT_EQ(values["grok_generated_tokens_total"], double(want.ids.size()));
  EXPECT_EQ(values["grok_time_to_first_token_seconds_count"], 1);
  for (const char* name : {"grok_queue_depth", "grok_batch_size", "grok_generation_tokens_per_second",
                           "grok_sequences_cancelled_total"})
    EXPECT_TRUE(values.count(name)) << name;

  // KV memory: every block in exactly one state; the finished request's blocks are free or cached.
  const double total = values["grok_kv_blocks_total"];
  EXPECT_GT(total, 0);
  EXPECT_EQ(values["grok_kv_blocks{state=\"used\"}"] + values["grok_kv_blocks{state=\"cached\"}"] +
                values["grok_kv_blocks{state=\"free\"}"],
            total);
  EXPECT_EQ(values["grok_kv_blocks{state=\"used\"}"], 0);
  EXPECT_EQ(values["grok_kv_block_tokens"], 16);
  EXPECT_TRUE(values.count("grok_prefix_cache_hit_tokens_total"));

  // Expert load: each layer routed every computed position (the prompt and all generated tokens but the
  // last, which is never fed back) to n_experts_used experts.
  const Engine engine = builtin_engine();
  const GrokConfig& c = engine.model().config;
  const double positions = double(want.prompt_ids.size() + want.ids.size() - 1);
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    double routed = 0;
    for (int64_t e = 0; e < c.n_experts; ++e) {
      const std::string key = "grok_expert_tokens_total{layer=\"" + std::to_string(layer) + "\",expert=\"" +
                              std::to_string(e) + "\"}";
      ASSERT_TRUE(values.count(key)) << key;
      routed += values[key];
    }
    EXPECT_EQ(routed, positions * double(c.n_experts_used)) << "layer " << layer;
  }
}

TEST(ServerMetrics, KvOptionsReachTheBatchAndPrefixReuseIsCounted) {
  server::ServerOptions o;
  o.scheduler.kv_block_tokens = 4;
  o.scheduler.kv_budget_tokens = 4 * 50;
  ServerHarness h(o);
  // The same long prompt twice: the second reuses the first's full blocks.
  const json body = {{"prompt", "A prompt long enough to fill several blocks of four tokens each"}, {"max_tokens", 3},
                     {"temperature", 0}};
  ASSERT_EQ(h.post("/v1/completions", body).status, 200);
  ASSERT_EQ(h.post("/v1/completions", body).status, 200);
  const std::string text = h.get("/metrics").raw;
  EXPECT_NE(text.find("grok_kv_block_tokens 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("grok_kv_blocks_total 50\n"), std::string::npos) << text;
  EXPECT_NE(text.find("grok_prefix_cache_hits_total 1\n"), std::string::npos) << text;
  EXPECT_EQ(h.server().metrics().kv_memory().prefix_hit_tokens % 4, 0);
  EXPECT_GT(h.server().metrics().kv_memory().prefix_hit_tokens, 0);

  server::ServerOptions off = o;
  off.scheduler.prefix_cache = false;
  ServerHarness h2(off);
  ASSERT_EQ(h2.post("/v1/completions", body).status, 200);
  ASSERT_EQ(h2.post("/v1/completions", body).status, 200);
  EXPECT_EQ(h2.server().metrics().kv_memory().prefix_hits, 0);
  EXPECT_EQ(h2.server().metrics().kv_memory().blocks_cached, 0);
}

TEST(ServerShutdown, RunningRequestsFinishWithinTheGrace) {
  ServerHarness h;
  h.server().scheduler().set_paused(true);
  const json body = {{"prompt", "Finish me"}, {"max_tokens", 10}, {"seed", 8}, {"stream", true}};
  auto reply = std::async(std::launch::async, [&] { return h.post("/v1/completions", body); });
  ASSERT_TRUE(h.wait_in_flight(1));
  auto stopped = std::async(std::launch::async, [&] { h.server().shutdown(std::chrono::seconds(120)); });
  // Draining: new requests are refused; the request in flight goes on.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (h.get("/health").status != 503 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(h.get("/health").status, 503);
  const Reply refused = h.post("/v1/completions", json{{"prompt", "late"}});
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_EQ(refused.body["error"]["code"], "shutting_down");
  h.server().scheduler().set_paused(false);
  stopped.get();
  const Reply r = reply.get();
  ASSERT_EQ(r.status, 200);
  const auto payloads = sse_payloads(r.raw);
  ASSERT_FALSE(payloads.empty());
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string text;
  for (const std::string& p : payloads)
    if (p != "[DONE]") text += json::parse(p)["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(text, reference("Finish me", gen_options(10, 0.8f, 8)).text);
}

TEST(ServerShutdown, WhatIsLeftAfterTheGraceIsCancelledWithAnError) {
  ServerHarness h;
  h.server().scheduler().set_paused(true);  // never runs: the shutdown must cancel it
  auto streamed = std::async(std::launch::async, [&] {
    return h.post("/v1/completions", json{{"prompt", "x"}, {"max_tokens", 10}, {"stream", true}});
  });
  auto plain = std::async(std::launch::async, [&] {
    return h.post("/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", 10}});
  });
  ASSERT_TRUE(h.wait_queued(2));  // accepted, so the shutdown cancels them (rather than refusing them)
  h.server().shutdown(std::chrono::milliseconds(0));
  const Reply s = streamed.get(), p = plain.get();
  ASSERT_EQ(s.status, 200);
  const auto payloads = sse_payloads(s.raw);
  ASSERT_FALSE(payloads.empty());
  EXPECT_EQ(json::parse(payloads.back())["error"]["code"], "shutting_down");
  EXPECT_EQ(p.body["error"]["code"], "shutting_down") << p.raw;
  EXPECT_EQ(h.server().scheduler().in_flight(), 0);
  EXPECT_EQ(h.get("/health").status, -1);  // the socket is closed now
}

}  // namespace
}  // namespace grok::test
