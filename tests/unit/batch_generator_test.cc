// Continuous batching gives every request the tokens it gets alone.
#include "engine/batch_generator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>

#include "core/error.h"
#include "test_support.h"

namespace grok {
namespace {

Engine builtin_engine() { return Engine(make_ready(builtin_model(Tokenizer::builtin().vocab_size(), 77)), 2); }

GenerateOptions options(float temperature, uint64_t seed, int64_t max_tokens) {
  GenerateOptions o;
  o.sampling.temperature = temperature;
  o.sampling.seed = seed;
  o.max_tokens = max_tokens;
  return o;
}

struct Outcome {
  GenerateResult result;
  std::string streamed;
  int done_calls = 0;
};

TEST(BatchGenerator, EveryRequestGetsWhatItGetsAlone) {
  Engine engine = builtin_engine();
  std::vector<std::pair<std::string, GenerateOptions>> reqs = {
      {"Hello world", options(0, 1, 12)},
      {"The answer to life", options(0.8f, 7, 20)},
      {"A longer prompt, so that one sequence reads many tokens while others decode", options(1.0f, 3, 15)},
      {"Nothing", options(0.8f, 5, 0)},
      {"Late joiner", options(0.7f, 11, 9)},
      {"Another late one", options(0.9f, 13, 14)},
  };
  reqs[2].second.sampling.top_p = 0.9f;
  // Alone first; request 1 then gets a stop string from the middle of its own text.
  std::vector<GenerateResult> alone;
  for (auto& [text, opt] : reqs) alone.push_back(engine.generate(engine.tokenize(text, false), opt, nullptr));
  ASSERT_GT(alone[1].text.size(), 8u);
  reqs[1].second.stop = {alone[1].text.substr(4, 3)};
  alone[1] = engine.generate(engine.tokenize(reqs[1].first, false), reqs[1].second, nullptr);
  ASSERT_EQ(alone[1].finish_reason, "stop");

  BatchGenerator batch(engine, 3);  // fewer slots than requests: some wait
  std::map<int64_t, size_t> which;
  std::vector<Outcome> got(reqs.size());
  auto submit = [&](size_t i) {
    BatchRequest r{engine.tokenize(reqs[i].first, false), reqs[i].second,
                   [&got, i](const TokenEvent& ev) { got[i].streamed += ev.text; },
                   [&got, i](const GenerateResult& res) {
                     got[i].result = res;
                     ++got[i].done_calls;
                   }};
    which[batch.submit(std::move(r))] = i;
  };
  for (size_t i = 0; i < 4; ++i) submit(i);
  EXPECT_EQ(batch.waiting(), 4u);
  int steps = 0;
  while (batch.step()) {
    EXPECT_LE(batch.running(), 3u);
    if (++steps == 3) submit(4), submit(5);  // join a running batch
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].done_calls, 1) << i;
    EXPECT_EQ(got[i].result.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(got[i].result.text, alone[i].text) << "request " << i;
    EXPECT_EQ(got[i].result.finish_reason, alone[i].finish_reason) << "request " << i;
    EXPECT_EQ(got[i].streamed, alone[i].text) << "request " << i;
  }
  EXPECT_TRUE(got[3].result.ids.empty());
}

TEST(BatchGenerator, CancelFreesARequestWithoutDisturbingOthers) {
  Engine engine = builtin_engine();
  const GenerateOptions opt = options(0.8f, 21, 16);
  const GenerateResult alone = engine.generate(engine.tokenize("keep going", false), opt, nullptr);
  BatchGenerator batch(engine, 4);
  GenerateResult kept, cancelled, never_ran;
  const int64_t keep = batch.submit({engine.tokenize("keep going", false), opt, nullptr,
                                     [&](const GenerateResult& r) { kept = r; }});
  const int64_t drop = batch.submit({engine.tokenize("stop soon", false), opt, nullptr,
                                     [&](const GenerateResult& r) { cancelled = r; }});
  batch.step();
  batch.step();
  batch.cancel(drop);
  EXPECT_EQ(cancelled.finish_reason, "cancelled");
  EXPECT_EQ(cancelled.ids.size(), 2u);
  EXPECT_EQ(batch.running(), 1u);
  const int64_t queued = batch.submit({engine.tokenize("never", false), opt, nullptr,
                                       [&](const GenerateResult& r) { never_ran = r; }});
  batch.cancel(queued);  // still waiting: dropped before it runs
  EXPECT_EQ(never_ran.finish_reason, "cancelled");
  EXPECT_TRUE(never_ran.ids.empty());
  batch.cancel(999);  // unknown: ignored
  while (batch.step()) {
  }
  EXPECT_EQ(kept.ids, alone.ids);
  EXPECT_EQ(kept.text, alone.text);
  (void)keep;
}

TEST(BatchGenerator, RequestsThatCannotRunAreRefusedAtSubmit) {
  Engine engine = builtin_engine();
  BatchGenerator batch(engine, 2);
  EXPECT_THROW(batch.submit({{}, options(0, 1, 4), nullptr, nullptr}), Error);
  GenerateOptions too_long = options(0, 1, engine.model().config.context_length);
  EXPECT_THROW(batch.submit({{1, 2, 3}, too_long, nullptr, nullptr}), Error);
  EXPECT_EQ(batch.waiting(), 0u);
  EXPECT_FALSE(batch.step());
  EXPECT_THROW(BatchGenerator(engine, 0), Error);
}

// Token ids from a seeded generator: none special but `pad_every`-th ones (0 = none) are pads.
std::vector<int32_t> random_ids(size_t n, uint32_t seed, int pad_every = 0) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = pad_every && rng() % uint32_t(pad_every) == 0 ? 0 : int32_t(4 + rng() % 396);
  return ids;
}

// Everything a request streams, probabilities included: equal only if the
// logits were bit for bit the same.
struct Streamed {
  std::vector<int32_t> ids;
  std::vector<float> probs;
  std::vector<std::vector<std::pair<int32_t, float>>> tops;
  std::string text;
  void add(const TokenEvent& ev) {
    if (ev.id >= 0) ids.push_back(ev.id), probs.push_back(ev.prob), tops.push_back(ev.top);
    text += ev.text;
  }
  bool operator==(const Streamed&) const = default;
};

Streamed alone_streamed(Engine& engine, const std::vector<int32_t>& prompt, const GenerateOptions& opt) {
  Streamed s;
  engine.generate(prompt, opt, [&](const TokenEvent& ev) { s.add(ev); });
  return s;
}

BatchOptions batch_options(int max_batch, int64_t budget, int block, bool prefix) {
  BatchOptions o;
  o.max_batch = max_batch;
  o.kv_budget_tokens = budget;
  o.kv_block_tokens = block;
  o.prefix_cache = prefix;
  return o;
}

void expect_blocks_add_up(const BatchGenerator& b) {
  const KvMemoryStats s = b.kv_stats();
  EXPECT_EQ(s.blocks_used + s.blocks_cached + s.blocks_free, s.blocks_total);
  EXPECT_GE(s.blocks_used, 0);
}

TEST(BatchGeneratorMemory, RefusesWhatCouldNeverFitAndBadOptions) {
  Engine engine = builtin_engine();
  BatchGenerator batch(engine, batch_options(4, 64, 16, true));
  EXPECT_EQ(batch.kv_blocks_total(), 4);
  test::expect_error([&] { batch.submit({random_ids(10, 1), options(0, 1, 60), nullptr, nullptr}); },
                     "needs 5 KV blocks of 16 positions, but the KV budget is 4 blocks (64 tokens)");
  EXPECT_EQ(batch.waiting(), 0u);
  batch.submit({random_ids(10, 1), options(0, 1, 54), nullptr, nullptr});  // exactly the budget
  EXPECT_EQ(batch.waiting(), 1u);
  test::expect_error([&] { BatchGenerator(engine, batch_options(2, 8, 16, true)); }, "less than one block of 16");
  test::expect_error([&] { BatchGenerator(engine, batch_options(2, 64, 0, true)); }, "block size 0");
  test::expect_error([&] { BatchGenerator(engine, batch_options(2, -1, 16, true)); }, "negative");
  test::expect_error([&] { BatchGenerator(engine, batch_options(0, 64, 16, true)); }, "batch size 0");
  // The default budget holds at least max_batch full contexts' worth or one.
  BatchGenerator dflt(engine, 2);
  EXPECT_GE(dflt.kv_blocks_total() * dflt.kv_stats().block_tokens, engine.model().config.context_length);
  EXPECT_TRUE(dflt.prefix_cache_enabled());
}

TEST(BatchGeneratorMemory, ARequestWaitsUntilBlocksFreeUp) {
  Engine engine = builtin_engine();
  const std::vector<int32_t> pa = random_ids(5, 2), pb = random_ids(5, 3), pc = random_ids(3, 4);
  const GenerateOptions oa = options(0.8f, 5, 30), ob = options(0, 6, 10), oc = options(0.9f, 7, 12);
  // Three blocks of 16: A takes all three (5 + 30 positions), B and C one each.
  BatchGenerator batch(engine, batch_options(4, 48, 16, false));
  std::vector<std::string> log;
  std::map<char, GenerateResult> done;
  auto submit = [&](char who, const std::vector<int32_t>& p, const GenerateOptions& o) {
    return batch.submit({p, o, [&log, who](const TokenEvent&) { log.push_back(std::string(1, who)); },
                         [&done, &log, who](const GenerateResult& r) {
                           done[who] = r;
                           log.push_back(std::string(1, who) + " done");
                         }});
  };
  submit('A', pa, oa);
  submit('B', pb, ob);
  batch.step();
  EXPECT_EQ(batch.running(), 1u);
  EXPECT_EQ(batch.waiting(), 1u);  // B fits the batch but not the memory
  EXPECT_EQ(batch.kv_stats().blocks_used, 3);
  EXPECT_EQ(batch.kv_blocks_free(), 0);
  submit('C', pc, oc);  // behind B: waits too, in order
  while (batch.step()) expect_blocks_add_up(batch);
  // B's and C's first tokens come only after A is done.
  const auto a_done = std::find(log.begin(), log.end(), "A done");
  ASSERT_NE(a_done, log.end());
  EXPECT_EQ(std::find(log.begin(), a_done, "B"), a_done);
  EXPECT_EQ(std::find(log.begin(), a_done, "C"), a_done);
  EXPECT_EQ(done['A'].ids, engine.generate(pa, oa, nullptr).ids);
  EXPECT_EQ(done['B'].ids, engine.generate(pb, ob, nullptr).ids);
  EXPECT_EQ(done['C'].ids, engine.generate(pc, oc, nullptr).ids);
  EXPECT_EQ(batch.kv_stats().blocks_used, 0);
  EXPECT_EQ(batch.kv_blocks_free(), 3);
}

TEST(BatchGeneratorMemory, CancelGivesTheBlocksBackAtOnce) {
  Engine engine = builtin_engine();
  for (bool prefix : {false, true}) {
    BatchGenerator batch(engine, batch_options(4, 48, 16, prefix));
    GenerateResult cancelled, waited;
    const int64_t a = batch.submit({random_ids(20, 8), options(0.8f, 9, 25), nullptr,
                                    [&](const GenerateResult& r) { cancelled = r; }});
    const GenerateOptions ob = options(0.8f, 10, 20);
    batch.submit({random_ids(9, 11), ob, nullptr, [&](const GenerateResult& r) { waited = r; }});
    batch.step();
    batch.step();
    EXPECT_EQ(batch.waiting(), 1u);
    batch.cancel(a);
    EXPECT_EQ(cancelled.finish_reason, "cancelled");
    EXPECT_EQ(batch.kv_stats().blocks_used, 0) << prefix;
    // Its one full prompt block stays cached when the prefix cache is on.
    EXPECT_EQ(batch.kv_stats().blocks_cached, prefix ? 1 : 0);
    EXPECT_EQ(batch.kv_blocks_free(), prefix ? 2 : 3);
    while (batch.step()) {
    }
    EXPECT_EQ(waited.ids, engine.generate(random_ids(9, 11), ob, nullptr).ids);
  }
}

TEST(BatchGeneratorMemory, ASharedPromptPrefixIsReusedAndGivesTheSameTokens) {
  Engine engine = builtin_engine();
  const std::vector<int32_t> p = random_ids(40, 12);
  GenerateOptions first = options(0, 1, 30);
  first.top_probs = 3;
  BatchGenerator batch(engine, batch_options(2, 0, 16, true));
  ASSERT_TRUE(batch.prefix_cache_enabled());
  Streamed a;
  GenerateResult a_result;
  batch.submit({p, first, [&](const TokenEvent& ev) { a.add(ev); }, [&](const GenerateResult& r) { a_result = r; }});
  while (batch.step()) {
  }
  EXPECT_EQ(a, alone_streamed(engine, p, first));
  EXPECT_EQ(batch.prefix_hit_tokens(), 0);

  auto run = [&](const std::vector<int32_t>& prompt, const GenerateOptions& o) {
    Streamed s;
    batch.submit({prompt, o, [&](const TokenEvent& ev) { s.add(ev); }, nullptr});
    while (batch.step()) {
    }
    EXPECT_EQ(s, alone_streamed(engine, prompt, o));
    EXPECT_FALSE(s.ids.empty());
  };
  GenerateOptions sampled = options(0.8f, 5, 20);
  sampled.top_probs = 2;
  // The same prompt: two blocks reused, the last 8 tokens computed.
  run(p, sampled);
  EXPECT_EQ(batch.prefix_hit_tokens(), 32);
  EXPECT_EQ(batch.kv_stats().prefix_hits, 1);
  // Sharing only the first block.
  std::vector<int32_t> q(p.begin(), p.begin() + 20);
  const std::vector<int32_t> tail = random_ids(7, 13);
  q.insert(q.end(), tail.begin(), tail.end());
  run(q, sampled);
  EXPECT_EQ(batch.prefix_hit_tokens(), 32 + 16);
  // Exactly two blocks long: only one is reused (the last token is computed for its logits).
  run(std::vector<int32_t>(p.begin(), p.begin() + 32), sampled);
  EXPECT_EQ(batch.prefix_hit_tokens(), 32 + 16 + 16);
  // A continuation of the first conversation reuses what it generated too.
  std::vector<int32_t> cont = p;
  cont.insert(cont.end(), a_result.ids.begin(), a_result.ids.end());
  cont.push_back(50);
  const int64_t processed = int64_t(p.size() + a_result.ids.size()) - 1;  // the last sampled token never goes in
  const int64_t reused = std::min(processed / 16, (int64_t(cont.size()) - 1) / 16) * 16;
  ASSERT_GT(reused, 32);
  run(cont, sampled);
  EXPECT_EQ(batch.prefix_hit_tokens(), 32 + 16 + 16 + reused);
  expect_blocks_add_up(batch);
  EXPECT_EQ(batch.kv_stats().blocks_used, 0);
}

TEST(BatchGeneratorMemory, RequestsStartedTogetherShareFromTheNextOn) {
  Engine engine = builtin_engine();
  const std::vector<int32_t> p = random_ids(35, 14);
  BatchGenerator batch(engine, batch_options(4, 0, 8, true));
  std::vector<GenerateResult> got(3);
  std::vector<GenerateOptions> o = {options(0.8f, 1, 10), options(0.8f, 2, 10), options(0, 3, 10)};
  batch.submit({p, o[0], nullptr, [&](const GenerateResult& r) { got[0] = r; }});
  batch.submit({p, o[1], nullptr, [&](const GenerateResult& r) { got[1] = r; }});
  batch.step();  // both compute the whole prompt: nothing was cached yet
  EXPECT_EQ(batch.prefix_hit_tokens(), 0);
  batch.submit({p, o[2], nullptr, [&](const GenerateResult& r) { got[2] = r; }});
  batch.step();  // the third maps the first's four blocks while both still run
  EXPECT_EQ(batch.prefix_hit_tokens(), 32);
  while (batch.step()) {
  }
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i].ids, engine.generate(p, o[i], nullptr).ids) << i;
}

TEST(BatchGeneratorMemory, CachedPrefixesGiveWayWhenMemoryIsNeeded) {
  Engine engine = builtin_engine();
  // Four blocks of 4 positions.
  BatchGenerator batch(engine, batch_options(2, 16, 4, true));
  const std::vector<int32_t> pa = random_ids(8, 15), pb = random_ids(10, 16);
  const GenerateOptions oa = options(0, 1, 4), ob = options(0.8f, 2, 6);
  GenerateResult a, b;
  batch.submit({pa, oa, nullptr, [&](const GenerateResult& r) { a = r; }});
  while (batch.step()) {
  }
  EXPECT_EQ(a.ids, engine.generate(pa, oa, nullptr).ids);
  const int64_t cached = batch.kv_stats().blocks_cached;
  EXPECT_GE(cached, 2);  // at least A's two prompt blocks
  EXPECT_EQ(batch.kv_stats().blocks_used, 0);
  batch.submit({pb, ob, nullptr, [&](const GenerateResult& r) { b = r; }});  // all four blocks
  batch.step();
  EXPECT_EQ(batch.running(), 1u);
  EXPECT_EQ(batch.kv_stats().blocks_used, 4);
  while (batch.step()) {
  }
  EXPECT_EQ(b.ids, engine.generate(pb, ob, nullptr).ids);
  // A's blocks were evicted: running it again reuses nothing and still agrees.
  batch.submit({pa, oa, nullptr, [&](const GenerateResult& r) { a = r; }});
  while (batch.step()) {
  }
  EXPECT_EQ(batch.prefix_hit_tokens(), 0);
  EXPECT_EQ(a.ids, engine.generate(pa, oa, nullptr).ids);
}

TEST(BatchGeneratorMemory, PrefixReuseIsOffWhereATokensResultDependsOnItsBatch) {
  // Checkpoint int8 on the row kernel splits the work differently for up to
  // 4 tokens: reused blocks could differ from recomputed ones there. Only
  // the matrix's kind is looked at (nothing runs), so marking one suffices.
  Model m = builtin_model(Tokenizer::builtin().vocab_size(), 77);
  m.weights.layers[1].experts[0].v.dtype = DType::I8;
  Engine engine(make_ready(std::move(m), {.repack = false}), 2);
  BatchGenerator batch(engine, batch_options(2, 0, 16, true));
  EXPECT_FALSE(batch.prefix_cache_enabled());
  EXPECT_EQ(batch.kv_stats().blocks_cached, 0);
  Engine plain = builtin_engine();
  EXPECT_FALSE(BatchGenerator(plain, batch_options(2, 0, 16, false)).prefix_cache_enabled());  // asked off
}

// Seeded random submits, cancels and steps over prompts that share
// prefixes, under budgets tight enough to queue and evict: every finished
// request gets what it gets alone, every cancelled one a prefix of it.
TEST(BatchGeneratorMemory, RandomInterleavingsKeepEveryOutputExact) {
  Engine engine = builtin_engine();
  struct Setup {
    int block;
    int64_t budget;
    bool prefix;
  };
  for (const Setup setup : {Setup{4, 64, true}, Setup{16, 64, true}, Setup{1, 64, true}, Setup{7, 0, true},
                            Setup{4, 64, false}}) {
    for (uint32_t seed : {1u, 2u}) {
      SCOPED_TRACE(testing::Message() << "block " << setup.block << " budget " << setup.budget << " prefix "
                                      << setup.prefix << " seed " << seed);
      std::mt19937 rng(seed * 7919 + uint32_t(setup.block));
      const int max_batch = 2 + int(rng() % 4);
      BatchGenerator batch(engine, batch_options(max_batch, setup.budget, setup.block, setup.prefix));
      std::vector<std::vector<int32_t>> families;
      for (int f = 0; f < 3; ++f) families.push_back(random_ids(16 + rng() % 25, seed * 100 + uint32_t(f), 16));
      struct Req {
        std::vector<int32_t> prompt;
        GenerateOptions opt;
        GenerateResult result;
        std::string streamed;
        int done_calls = 0;
      };
      std::vector<std::unique_ptr<Req>> reqs;
      std::vector<int64_t> ids;
      int memory_waits = 0, done_total = 0;
      auto submit = [&] {
        auto r = std::make_unique<Req>();
        const std::vector<int32_t>& fam = families[rng() % families.size()];
        const size_t cut = rng() % 2 ? fam.size() : 1 + rng() % fam.size();  // often the whole family
        r->prompt.assign(fam.begin(), fam.begin() + ptrdiff_t(cut));
        const std::vector<int32_t> extra = random_ids(rng() % 6, uint32_t(rng()), 16);
        r->prompt.insert(r->prompt.end(), extra.begin(), extra.end());
        const float temps[] = {0.0f, 0.8f, 1.0f};
        r->opt = options(temps[rng() % 3], rng(), int64_t(rng() % 13));
        Req* raw = r.get();
        ids.push_back(batch.submit({r->prompt, r->opt, [raw](const TokenEvent& ev) { raw->streamed += ev.text; },
                                    [raw, &done_total](const GenerateResult& res) {
                                      raw->result = res;
                                      ++raw->done_calls;
                                      ++done_total;
                                    }}));
        reqs.push_back(std::move(r));
      };
      for (int op = 0; op < 400 && (reqs.size() < 24 || batch.running() + batch.waiting() > 0); ++op) {
        const uint32_t what = rng() % 10;
        if (what < 3 && reqs.size() < 24)
          submit();
        else if (what == 3 && !ids.empty())
          batch.cancel(ids[rng() % ids.size()]);  // running, waiting or already done
        else {
          const size_t running = batch.running(), waiting = batch.waiting();
          const int done_before = done_total;
          batch.step();
          // Admitted fewer than the batch had room for: they waited for memory.
          const size_t admitted = batch.running() + size_t(done_total - done_before) - running;
          if (admitted < std::min(waiting, size_t(max_batch) - running)) ++memory_waits;
        }
        ASSERT_LE(batch.running(), size_t(max_batch));
        expect_blocks_add_up(batch);
      }
      while (batch.step()) {
      }
      EXPECT_EQ(batch.kv_stats().blocks_used, 0);
      if (setup.prefix) EXPECT_GT(batch.prefix_hit_tokens(), 0);
      if (setup.budget) EXPECT_GT(memory_waits, 0);  // the budget was tight enough to matter
      else EXPECT_EQ(memory_waits, 0);
      int finished = 0;
      for (size_t i = 0; i < reqs.size(); ++i) {
        const Req& r = *reqs[i];
        ASSERT_EQ(r.done_calls, 1) << "request " << i;
        const GenerateResult alone = engine.generate(r.prompt, r.opt, nullptr);
        if (r.result.finish_reason == "cancelled") {
          ASSERT_LE(r.result.ids.size(), alone.ids.size()) << "request " << i;
          EXPECT_TRUE(std::equal(r.result.ids.begin(), r.result.ids.end(), alone.ids.begin())) << "request " << i;
        } else {
          ++finished;
          EXPECT_EQ(r.result.ids, alone.ids) << "request " << i;
          EXPECT_EQ(r.result.text, alone.text) << "request " << i;
          EXPECT_EQ(r.streamed, alone.text) << "request " << i;
          EXPECT_EQ(r.result.finish_reason, alone.finish_reason) << "request " << i;
        }
      }
      EXPECT_GT(finished, 0);
    }
  }
}

// Prompt logprobs (echo with logprobs): every prompt token reported before
// the first generated one (the prompt in passes of kScoredPromptChunk), the
// first unscored, each other with its
// probability under the softmax of the previous position's logits, its text
// joining into the prompt's; the generated tokens unchanged; and the same
// from a batch in which a cached prefix of the prompt exists (not reused
// for it: every position's logits are needed).
TEST(BatchGenerator, PromptLogprobsScoreEveryPromptTokenAndChangeNothingElse) {
  Engine engine = builtin_engine();
  std::string text;
  for (int i = 0; i < 6; ++i) text += "The answer to life, the universe and everything. ";
  const std::vector<int32_t> prompt = engine.tokenize(text, false);
  // Scored in several passes, the last one partial.
  ASSERT_GT(prompt.size(), size_t(2 * Generation::kScoredPromptChunk));
  ASSERT_NE(prompt.size() % size_t(Generation::kScoredPromptChunk), 0u);
  GenerateOptions plain = options(0.8f, 9, 8);
  plain.top_probs = 3;
  GenerateOptions scored = plain;
  scored.prompt_logprobs = true;

  const std::vector<float> logits = engine.logits(prompt, /*all_positions=*/true);
  const size_t V = size_t(engine.model().config.vocab_size);
  auto check = [&](const std::vector<TokenEvent>& events, const std::vector<int32_t>& generated, const char* what) {
    ASSERT_EQ(events.size(), prompt.size() + generated.size()) << what;
    std::string text;
    for (size_t j = 0; j < prompt.size(); ++j) {
      const TokenEvent& ev = events[j];
      EXPECT_TRUE(ev.prompt) << what << " " << j;
      EXPECT_EQ(ev.id, prompt[j]) << what << " " << j;
      EXPECT_EQ(ev.scored, j > 0) << what << " " << j;
      text += ev.text;
      if (j == 0) continue;
      const std::vector<float> p = softmax_probs(std::span(logits).subspan((j - 1) * V, V));
      EXPECT_NEAR(ev.prob, p[size_t(prompt[j])], 1e-6) << what << " " << j;
      ASSERT_EQ(ev.top.size(), 3u) << what << " " << j;
      EXPECT_GE(ev.top[0].second, ev.prob) << what << " " << j;
    }
    EXPECT_EQ(text, engine.tokenizer().decode(prompt)) << what;
    for (size_t i = 0; i < generated.size(); ++i) {
      EXPECT_FALSE(events[prompt.size() + i].prompt) << what << " " << i;
      EXPECT_EQ(events[prompt.size() + i].id, generated[i]) << what << " " << i;
    }
  };

  const GenerateResult base = engine.generate(prompt, plain, nullptr);
  std::vector<TokenEvent> alone;
  const GenerateResult with = engine.generate(prompt, scored, [&](const TokenEvent& ev) {
    if (ev.id >= 0) alone.push_back(ev);
  });
  EXPECT_EQ(with.ids, base.ids);
  check(alone, base.ids, "alone");

  BatchGenerator batch(engine, batch_options(4, 1024, 4, /*prefix=*/true));
  std::vector<TokenEvent> batched;
  GenerateResult batched_result;
  batch.submit({prompt, plain, nullptr, nullptr});  // caches the prompt's blocks
  while (batch.step()) {
  }
  batch.submit({prompt, scored, [&](const TokenEvent& ev) { if (ev.id >= 0) batched.push_back(ev); },
                [&](const GenerateResult& r) { batched_result = r; }});
  batch.submit({engine.tokenize("Another request in the same pass", false), plain, nullptr, nullptr});
  while (batch.step()) {
  }
  EXPECT_EQ(batched_result.ids, base.ids);
  check(batched, base.ids, "batched");
  EXPECT_EQ(batch.kv_stats().prefix_hits, 0);

  // max_tokens 0 scores the prompt alone.
  GenerateOptions only = scored;
  only.max_tokens = 0;
  std::vector<TokenEvent> none_generated;
  engine.generate(prompt, only, [&](const TokenEvent& ev) { if (ev.id >= 0) none_generated.push_back(ev); });
  check(none_generated, {}, "max_tokens 0");
}

}  // namespace
}  // namespace grok
