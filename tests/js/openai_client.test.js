// grok serve through the official openai client: completions and chat,
// streamed and not, equal to `grok generate`'s text for the same prompt,
// seed and sampling; n, logprobs, echo (with logprobs too), stop, token-id prompts and usage.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { generate, tokenize } from "./lib/grok.js";
import { request } from "./lib/http.js";
import { startServer } from "./lib/server.js";

const apiKey = "grok-test-key";
const prompt = "The answer to life the universe and everything is";
const sampling = { max_tokens: 24, temperature: 0.8, top_p: 0.95, seed: 7 };
let server, client, model;

before(async () => {
  server = await startServer(["--api-key", apiKey]);
  client = new OpenAI({ apiKey, baseURL: `${server.url}/v1`, maxRetries: 0 });
});
after(async () => {
  if (!server) return;
  const exit = await server.stop();
  assert.ok(exit.signal === "SIGTERM" || exit.code === 0, `grok serve ended badly: ${JSON.stringify(exit)}\n${server.log}`);
});

function checkUsage(usage, { prompt_tokens } = {}) {
  assert.ok(usage, "usage is present");
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, JSON.stringify(usage));
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  if (prompt_tokens !== undefined) assert.equal(usage.prompt_tokens, prompt_tokens);
}

describe("models and auth", () => {
  test("GET /v1/models lists the loaded model", async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    assert.ok(models.length >= 1);
    model = models[0].id;
    assert.equal(typeof model, "string");
  });

  test("a missing or wrong key is refused with 401 and an error object", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }]) {
      const r = await request(server.url, "POST", "/v1/completions", { headers, body: { model, prompt, max_tokens: 1 } });
      assert.equal(r.status, 401, r.text);
      assert.equal(typeof r.json?.error?.message, "string");
    }
  });
});

describe("completions", () => {
  test("not streamed: the text of grok generate, with usage", async () => {
    const expected = await generate({ prompt, ...sampling });
    const r = await client.completions.create({ model, prompt, ...sampling });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].text, expected);
    assert.ok(["length", "stop"].includes(r.choices[0].finish_reason));
    checkUsage(r.usage, { prompt_tokens: (await tokenize(prompt)).length });
    assert.ok(r.usage.completion_tokens <= sampling.max_tokens);
  });

  test("greedy (temperature 0) and other seeds match too", async () => {
    for (const params of [{ ...sampling, temperature: 0 }, { ...sampling, seed: 1234, top_p: 0.5 }, { ...sampling, max_tokens: 60, seed: 99 }]) {
      const r = await client.completions.create({ model, prompt, ...params });
      assert.equal(r.choices[0].text, await generate({ prompt, ...params }), JSON.stringify(params));
    }
  });

  test("streamed: chunks add up to the same text, then usage, then [DONE]", async () => {
    const expected = await generate({ prompt, ...sampling });
    const stream = await client.completions.create({ model, prompt, ...sampling, stream: true, stream_options: { include_usage: true } });
    let text = "", usage = null, finish = null, chunks = 0;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        chunks++;
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, expected);
    assert.ok(finish === "length" || finish === "stop");
    checkUsage(usage);
    assert.ok(chunks >= 1);
  });

  test("n = 2: choice i is seed + i", async () => {
    const r = await client.completions.create({ model, prompt, ...sampling, n: 2 });
    assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
    for (const c of r.choices) assert.equal(c.text, await generate({ prompt, ...sampling, seed: sampling.seed + c.index }), `choice ${c.index}`);
    assert.equal(r.usage.completion_tokens > 0, true);
  });

  test("n = 2 streamed: each index's chunks add up to its text", async () => {
    const stream = await client.completions.create({ model, prompt, ...sampling, n: 2, stream: true });
    const texts = ["", ""];
    for await (const chunk of stream) for (const c of chunk.choices) texts[c.index] += c.text;
    for (const i of [0, 1]) assert.equal(texts[i], await generate({ prompt, ...sampling, seed: sampling.seed + i }));
  });

  test("logprobs: each token at its text_offset, tokens spelling the text, log-probabilities <= 0", async () => {
    const r = await client.completions.create({ model, prompt, ...sampling, logprobs: 3 });
    const { text, logprobs } = r.choices[0];
    assert.equal(text, await generate({ prompt, ...sampling }));
    assert.equal(logprobs.token_logprobs.length, logprobs.tokens.length);
    assert.equal(logprobs.tokens.length, r.usage.completion_tokens);
    for (const lp of logprobs.token_logprobs) assert.ok(Number.isFinite(lp) && lp <= 0, String(lp));
    for (const top of logprobs.top_logprobs) {
      const entries = Object.entries(top);
      assert.ok(entries.length >= 1 && entries.length <= 3, JSON.stringify(top));
      for (const [, lp] of entries) assert.ok(lp <= 0);
    }
    assert.equal(logprobs.tokens.join(""), text, "the tokens spell the text");
    // text_offset: where each token starts in the text, in characters as OpenAI (Python) counts them:
    // code points, which JavaScript's string indices (UTF-16 units) are not past U+FFFF.
    const chars = Array.from(text);
    logprobs.tokens.forEach((token, i) => assert.ok(chars.slice(logprobs.text_offset[i]).join("").startsWith(token),
      `token ${i} ${JSON.stringify(token)} is not at text_offset ${logprobs.text_offset[i]} of ${JSON.stringify(text)}`));
  });

  test("echo: the prompt, then the completion", async () => {
    const r = await client.completions.create({ model, prompt, ...sampling, echo: true });
    assert.equal(r.choices[0].text, prompt + await generate({ prompt, ...sampling }));
  });

  test("echo with logprobs: the prompt's tokens first (the first null), then the completion's", async () => {
    const r = await client.completions.create({ model, prompt, ...sampling, echo: true, logprobs: 2 });
    const plain = await client.completions.create({ model, prompt, ...sampling, logprobs: 2 });
    const { text, logprobs } = r.choices[0];
    assert.equal(text, prompt + plain.choices[0].text);
    assert.equal(logprobs.tokens.join(""), text, "the tokens spell the echoed text and the completion");
    const n = logprobs.tokens.length - plain.choices[0].logprobs.tokens.length;
    assert.equal(n, r.usage.prompt_tokens);
    assert.equal(logprobs.token_logprobs[0], null);
    assert.equal(logprobs.top_logprobs[0], null);
    for (let i = 1; i < n; ++i) assert.ok(logprobs.token_logprobs[i] <= 0, String(logprobs.token_logprobs[i]));
    assert.deepEqual(logprobs.token_logprobs.slice(n), plain.choices[0].logprobs.token_logprobs);
  });

  test("stop: the text ends before the stop string, finish_reason stop", async () => {
    const params = { ...sampling, max_tokens: 64 };
    const full = await generate({ prompt, ...params });
    // A stop string from the middle of the unstopped text, cut at its first occurrence.
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
    assert.ok(stop.length === 3, `the reference text is too short to pick a stop string: ${JSON.stringify(full)}`);
    const expected = full.slice(0, full.indexOf(stop));
    assert.equal(await generate({ prompt, ...params, stop: [stop] }), expected, "grok generate --stop agrees");
    const r = await client.completions.create({ model, prompt, ...params, stop: [stop] });
    assert.equal(r.choices[0].text, expected);
    assert.equal(r.choices[0].finish_reason, "stop");
    const single = await client.completions.create({ model, prompt, ...params, stop });
    assert.equal(single.choices[0].text, expected, "stop as a plain string");
  });

  test("several prompts, and a prompt as token ids", async () => {
    const other = "Once upon a time";
    const r = await client.completions.create({ model, prompt: [prompt, other], ...sampling });
    assert.equal(r.choices.length, 2);
    const byIndex = Object.fromEntries(r.choices.map((c) => [c.index, c.text]));
    assert.equal(byIndex[0], await generate({ prompt, ...sampling }));
    assert.equal(byIndex[1], await generate({ prompt: other, ...sampling }));
    const ids = await tokenize(prompt);
    const fromIds = await client.completions.create({ model, prompt: ids, ...sampling });
    assert.equal(fromIds.choices[0].text, await generate({ prompt, ...sampling }));
    assert.equal(fromIds.usage.prompt_tokens, ids.length);
  });

  test("a bad parameter is an APIError 400 carrying the server's message", async () => {
    await assert.rejects(client.completions.create({ model, prompt, temperature: 7 }), (e) => {
      assert.equal(e.status, 400);
      assert.ok(typeof e.error?.message === "string" && e.error.message.length > 0, JSON.stringify(e.error));
      return true;
    });
  });
});

describe("chat completions", () => {
  // The default template: a plain transcript, the assistant's turn ending at "\nUser:".
  const messages = [{ role: "system", content: "You are terse." }, { role: "user", content: "Name a colour." }];
  const rendered = "System: You are terse.\nUser: Name a colour.\nAssistant:";
  const params = { max_tokens: 32, temperature: 0.8, top_p: 0.95, seed: 11 };

  test("not streamed: the text of grok generate on the rendered transcript", async () => {
    const expected = await generate({ prompt: rendered, ...params, stop: ["\nUser:"] });
    const r = await client.chat.completions.create({ model, messages, ...params });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(r.choices[0].message.content, expected);
    checkUsage(r.usage, { prompt_tokens: (await tokenize(rendered)).length });
  });

  test("streamed: role first, content deltas add up to the same text", async () => {
    const expected = await generate({ prompt: rendered, ...params, stop: ["\nUser:"] });
    const stream = await client.chat.completions.create({ model, messages, ...params, stream: true, stream_options: { include_usage: true } });
    let text = "", role = null, usage = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        if (c.delta.role) role = role ?? c.delta.role;
        text += c.delta.content ?? "";
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(role, "assistant");
    assert.equal(text, expected);
    checkUsage(usage);
  });
});
