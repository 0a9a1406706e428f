// 32 streaming clients for STRESS_SECONDS (default 120): every stream must
// equal that request's text computed alone by `grok generate` (so no token is
// lost, duplicated or taken from another sequence) and the server's resident
// memory must stay flat once warm (a leak bound, not a speed bound).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { Agent } from "node:http";
import { after, before, test } from "node:test";
import { ExpectedTexts } from "./lib/grok.js";
import { streamCompletion } from "./lib/http.js";
import { startServer } from "./lib/server.js";

const seconds = Number(process.env.STRESS_SECONDS ?? 120);
const clients = Number(process.env.STRESS_CLIENTS ?? 32);
// Growth allowed between the warm sample and the last: far above the noise of
// allocator caches, far below what leaking a request's buffers would add up to.
const leakBoundKiB = Number(process.env.STRESS_RSS_BOUND_KIB ?? 32 * 1024);

const prompts = ["The answer to life the universe and everything is", "Once upon a time", "SELECT * FROM",
  "def fib(n):", "Grok-1 is a mixture of experts", "Lorem ipsum dolor sit amet", "1, 2, 3,", "Ünïcödé — ✓ 🚀"];
// Distinct requests: prompts x seeds x sampling settings x lengths.
const requests = [];
for (const [i, prompt] of prompts.entries())
  for (const seed of [1, 2, 3])
    requests.push({ prompt, seed: seed * 1000 + i, temperature: [0.8, 0, 1.2][seed - 1], top_p: [0.95, 1, 0.8][seed - 1], max_tokens: 8 + ((i * 3 + seed) % 5) * 10 });

let server;
before(async () => { server = await startServer(["--max-batch", "8", "--max-queue", "64"]); });
after(async () => { await server?.stop(); });

test(`${clients} concurrent streaming clients for ${seconds}s`, { timeout: (seconds + 600) * 1000 }, async (t) => {
  const expected = new ExpectedTexts();
  // Each distinct request's text, computed alone before any concurrency.
  const texts = [];
  for (const r of requests) texts.push(await expected.get(r));

  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const stats = { requests: 0, tokens: 0, chunks: 0, failures: [] };
  const samples = [];  // {requests, rssKiB}
  const sampleEvery = 50;
  const deadline = Date.now() + seconds * 1000;  // the run's length; nothing is asserted on time

  async function client(c) {
    for (let k = 0; Date.now() < deadline && stats.failures.length < 20; k++) {
      const i = (c * 7 + k * 5) % requests.length;
      let r;
      try {
        r = await streamCompletion(server.url, requests[i], { agent });
      } catch (e) {
        stats.failures.push({ request: requests[i], error: String(e) });
        continue;
      }
      const problems = [];
      if (r.status !== 200) problems.push(`status ${r.status}: ${r.text}`);
      else {
        if (r.completion !== texts[i]) problems.push(`text ${JSON.stringify(r.completion)} != ${JSON.stringify(texts[i])}`);
        if (!r.done) problems.push("the stream did not end with data: [DONE]");
        if (r.ids.size !== 1) problems.push(`chunks carry ${r.ids.size} ids`);
        if (r.finishReason.length !== 1) problems.push(`${r.finishReason.length} finish reasons`);
        if (!r.usage || r.usage.completion_tokens > requests[i].max_tokens) problems.push(`usage ${JSON.stringify(r.usage)}`);
        // A token's text may wait for the next (a split UTF-8 character), never come twice.
        const withText = r.chunks.filter((c) => c.choices[0].text !== "").length;
        if (r.usage && withText > r.usage.completion_tokens) problems.push(`${withText} chunks with text for ${r.usage.completion_tokens} tokens`);
      }
      if (problems.length) stats.failures.push({ client: c, request: requests[i], problems });
      stats.requests++;
      stats.tokens += r.usage?.completion_tokens ?? 0;
      stats.chunks += r.chunks?.length ?? 0;
      if (stats.requests % sampleEvery === 0) samples.push({ requests: stats.requests, rssKiB: server.rssKiB() });
    }
  }
  samples.push({ requests: 0, rssKiB: server.rssKiB() });
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  agent.destroy();
  samples.push({ requests: stats.requests, rssKiB: server.rssKiB() });

  // Warm: once a tenth of the requests are served, every buffer has reached its working size.
  const warmAt = samples.find((s) => s.requests >= stats.requests / 10) ?? samples[0];
  const last = samples.at(-1);
  const report = { seconds, clients, distinctRequests: requests.length, ...stats, failures: stats.failures.slice(0, 5),
    failureCount: stats.failures.length, rss: { startKiB: samples[0].rssKiB, warmKiB: warmAt.rssKiB, lastKiB: last.rssKiB,
      maxKiB: Math.max(...samples.map((s) => s.rssKiB)), growthAfterWarmKiB: last.rssKiB - warmAt.rssKiB, samples } };
  t.diagnostic(`stress: ${stats.requests} requests, ${stats.tokens} tokens in ${stats.chunks} chunks, ` +
    `RSS start ${report.rss.startKiB} KiB, warm ${warmAt.rssKiB} KiB (after ${warmAt.requests} requests), last ${last.rssKiB} KiB, max ${report.rss.maxKiB} KiB`);
  if (process.env.STRESS_REPORT) writeFileSync(process.env.STRESS_REPORT, JSON.stringify(report, null, 2));

  assert.deepEqual(stats.failures.slice(0, 5), [], `${stats.failures.length} failed requests`);
  assert.ok(stats.requests >= clients, `only ${stats.requests} requests completed`);
  assert.ok(server.running, `grok serve died: ${JSON.stringify(server.exit)}\n${server.log}`);
  assert.ok(report.rss.growthAfterWarmKiB < leakBoundKiB,
    `RSS grew ${report.rss.growthAfterWarmKiB} KiB after warm-up (bound ${leakBoundKiB} KiB): ${JSON.stringify(samples)}`);
});
