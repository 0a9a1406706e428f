// What a hostile or broken client can send: oversized bodies, broken UTF-8,
// malformed JSON, wrong types, unknown fields, out-of-range values, stalled
// and trickled bodies, half-closed connections and a burst of 10,000
// requests. The server must answer each with the right status and an OpenAI
// error object, time out the slow ones, and keep serving everyone else.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { generate } from "./lib/grok.js";
import { request } from "./lib/http.js";
import { rawConnection, rawRequest } from "./lib/raw.js";
import { startServer } from "./lib/server.js";

const probe = { prompt: "The answer to life the universe and everything is", max_tokens: 8, temperature: 0.8, top_p: 0.95, seed: 5 };
let server, probeText;

// A short request deadline (the default is 30 s) so the trickle below is cut off soon.
before(async () => {
  server = await startServer(["--request-timeout", "5"]);
  probeText = await generate(probe);
});
after(async () => {
  if (!server) return;
  const exit = await server.stop();
  assert.ok(exit.signal === "SIGTERM" || exit.code === 0, `grok serve ended badly: ${JSON.stringify(exit)}\n${server.log.slice(-4000)}`);
});

// A well-formed request still gets its exact text.
const assertServes = (context) => assertServesOn(server, context);
async function assertServesOn(srv, context) {
  const r = await request(srv.url, "POST", "/v1/completions", { body: probe });
  assert.equal(r.status, 200, `${context}: ${r.text}`);
  assert.equal(r.json.choices[0].text, probeText, context);
}

function assertErrorObject(json, context) {
  const e = json?.error;
  assert.ok(e && typeof e.message === "string" && e.message.length > 0, `${context}: no error object with a message: ${JSON.stringify(json)}`);
  assert.equal(typeof e.type, "string", context);
  assert.ok("param" in e && "code" in e, `${context}: error object lacks param/code: ${JSON.stringify(e)}`);
}

// Sends exact bytes (node:http would refuse some) and lets the server close
// the connection after its answer.
function post(path, body) {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return rawConnection(server.port, (s) => s.write(Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`), payload])));
}

async function expect400(path, body, context) {
  const { response, error } = await post(path, body);
  assert.ok(response, `${context}: no response (${error})`);
  assert.equal(response.status, 400, `${context}: ${response.body}`);
  assertErrorObject(response.json, context);
}

describe("bodies the server must refuse", () => {
  test("an oversized body is 413 with an error object, and the server goes on", async () => {
    const size = 64 << 20;
    const { response, error } = await rawConnection(server.port, (s) => {
      s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n{"prompt": "`);
      const block = Buffer.alloc(1 << 20, "a");
      // Keep writing until the server answers or stops reading; write errors are expected then.
      let sent = 0;
      const pump = () => { while (sent < size - (2 << 20) && s.write(block)) sent += block.length; };
      s.on("drain", () => { sent += block.length; pump(); });
      pump();
    }, { untilResponse: true });
    assert.ok(response, `no response to a ${size}-byte body (${error})`);
    assert.equal(response.status, 413, response.body);
    assertErrorObject(response.json, "413");
    await assertServes("after an oversized body");
  });

  test("a Content-Length far beyond the limit is 413 before any body arrives", async () => {
    const { response, error } = await rawConnection(server.port, (s) =>
      s.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"), { untilResponse: true });
    assert.ok(response, `no response (${error})`);
    assert.equal(response.status, 413, response.body);
  });

  test("broken UTF-8 in JSON strings is 400", async () => {
    const cases = [
      [0xff, 0xfe], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82],
    ];
    for (const bytes of cases) {
      const body = Buffer.concat([Buffer.from('{"prompt": "ab'), Buffer.from(bytes), Buffer.from('cd", "max_tokens": 2}')]);
      await expect400("/v1/completions", body, `prompt with bytes ${bytes.map((b) => b.toString(16))}`);
    }
    const chat = Buffer.concat([Buffer.from('{"messages": [{"role": "user", "content": "x'), Buffer.from([0xff]), Buffer.from('"}]}')]);
    await expect400("/v1/chat/completions", chat, "chat content with 0xff");
    await expect400("/v1/completions", '{"prompt": "\\ud800", "max_tokens": 2}', "a lone surrogate escape");
  });

  test("malformed JSON is 400", async () => {
    for (const body of ["", "{", '{"prompt": "x",}', '{"prompt": "x"} extra', "[]", "null", '"prompt"', "42", "{prompt: 1}",
      '{"prompt": "x", "prompt": }', "\u0000", '{"prompt": "x\n"}', "[".repeat(100000)]) {
      await expect400("/v1/completions", body, `body ${JSON.stringify(body.slice(0, 40))}`);
    }
    await expect400("/v1/chat/completions", '{"messages": [', "chat: truncated");
  });

  test("wrong types are 400", async () => {
    const bad = [{ prompt: 5 }, { prompt: null }, { prompt: [1, "a"] }, { prompt: [[1], "a"] }, { prompt: {} }, { prompt: "x", max_tokens: "10" },
      { prompt: "x", max_tokens: 1.5 }, { prompt: "x", temperature: "hot" }, { prompt: "x", top_p: [] }, { prompt: "x", seed: "1" },
      { prompt: "x", stream: "yes" }, { prompt: "x", stop: 5 }, { prompt: "x", stop: [1] }, { prompt: "x", n: 1.5 },
      { prompt: "x", logprobs: "3" }, { prompt: "x", echo: 1 }, { prompt: "x", model: 3 }, { prompt: "x", stream_options: "usage" }];
    for (const body of bad) await expect400("/v1/completions", JSON.stringify(body), JSON.stringify(body));
    const badChat = [{ messages: "hi" }, { messages: [{ role: "user" }] }, { messages: [{ role: "user", content: 5 }] },
      { messages: [{ role: 7, content: "x" }] }, { messages: [{ role: "wizard", content: "x" }] }, {}];
    for (const body of badChat) await expect400("/v1/chat/completions", JSON.stringify(body), `chat ${JSON.stringify(body)}`);
  });

  test("unknown fields are 400", async () => {
    await expect400("/v1/completions", JSON.stringify({ prompt: "x", frobnicate: true }), "completions: frobnicate");
    await expect400("/v1/chat/completions", JSON.stringify({ messages: [{ role: "user", content: "x" }], prompt: "x" }), "chat: prompt");
  });

  test("out-of-range values are 400", async () => {
    const bad = [{ max_tokens: -1 }, { max_tokens: 1e12 }, { temperature: -0.1 }, { temperature: 2.5 }, { top_p: 1.5 }, { top_p: -0.1 },
      { n: 0 }, { n: -1 }, { n: 100000 }, { logprobs: -2 }, { logprobs: 1000 }, { prompt: [999999999] },
      { prompt: [-5] }, { prompt: [] }, { prompt: "" }];
    for (const fields of bad) {
      const body = { prompt: "x", max_tokens: 2, ...fields };
      await expect400("/v1/completions", JSON.stringify(body), JSON.stringify(fields));
    }
    await assertServes("after the 400s");
  });

  test("unknown paths are 404 and wrong methods 404/405", async () => {
    const r = await request(server.url, "GET", "/v1/nothing-here");
    assert.equal(r.status, 404, r.text);
    const m = await request(server.url, "GET", "/v1/completions");
    assert.ok([404, 405].includes(m.status), `GET /v1/completions: ${m.status}`);
  });
});

describe("slow and half-closed connections", () => {
  const head = (len) => `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`;

  test("stalled clients are timed out while others are served", { timeout: 180000 }, async () => {
    const stalls = [];
    for (let i = 0; i < 16; i++) stalls.push(rawConnection(server.port, (s) => s.write(head(100) + '{"prompt": "')));  // body stalls
    for (let i = 0; i < 4; i++) stalls.push(rawConnection(server.port, (s) => s.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n")));  // headers stall
    for (let i = 0; i < 4; i++) stalls.push(rawConnection(server.port, () => {}));  // nothing at all
    await assertServes("while 24 connections stall");
    // The server closes every stalled connection itself (the test's timeout bounds the wait).
    const ended = await Promise.all(stalls);
    for (const e of ended) if (e.response) assert.ok([400, 408].includes(e.response.status), `a stalled request got ${e.response.status}`);
    await assertServes("after the stalls");
  });

  test("a body trickled byte by byte is cut off, not waited for forever", { timeout: 120000 }, async (t) => {
    let sent = 0, socket;
    t.after(() => socket?.destroy());  // should the server never cut it off, the test's timeout does
    const trickle = rawConnection(server.port, async (s) => {
      socket = s;
      s.write(head(100000) + '{"prompt": "');
      // A client that never stops sending, one byte at a time: only a whole-request deadline ends it.
      while (!s.destroyed && s.writable) {
        s.write("a");
        sent++;
        await delay(200);
      }
    });
    await assertServes("while a body trickles");
    const { response } = await trickle;
    assert.ok(response, "no answer to a trickled request");
    assert.equal(response.status, 408, response.body);
    assertErrorObject(response.json, "408");
    assert.ok(sent < 100000, "the server read the whole trickled body");
  });

  test("SIGTERM stops the server even while a client trickles a body", { timeout: 60000 }, async (t) => {
    const own = await startServer(["--shutdown-grace", "1"]);
    let socket;
    t.after(async () => { socket?.destroy(); await own.stop(); });
    const trickling = new Promise((resolve) => rawConnection(own.port, async (s) => {
      socket = s;
      s.write(head(100000) + '{"prompt": "');
      resolve();
      while (!s.destroyed && s.writable) {
        s.write("a");
        await delay(200);
      }
    }));
    await trickling;
    await assertServesOn(own, "before SIGTERM");
    own.proc.kill("SIGTERM");
    // The exit itself is the assertion; the test's timeout bounds the wait.
    const exit = await own.exited;
    assert.equal(exit.code, 0, `grok serve ended with ${JSON.stringify(exit)}\n${own.log}`);
  });

  test("a complete request then a half-close is still answered", async () => {
    const { response, error } = await rawRequest(server.port, Buffer.concat([Buffer.from(head(Buffer.byteLength(JSON.stringify(probe)))), Buffer.from(JSON.stringify(probe))]));
    assert.ok(response, `no response (${error})`);
    assert.equal(response.status, 200, response.body);
    assert.equal(response.json.choices[0].text, probeText);
  });

  test("half-closing mid-request, mid-headers or at once ends the connection cleanly", async () => {
    for (const data of [head(100) + '{"pro', "POST /v1/compl", ""]) {
      const { response } = await rawRequest(server.port, data);
      if (response) assert.ok(response.status >= 400 && response.status < 500, `half-closed ${JSON.stringify(data)}: ${response.status}`);
    }
    await assertServes("after half-closed connections");
  });

  test("a client vanishing mid-stream does not disturb the next one", async () => {
    const body = JSON.stringify({ ...probe, max_tokens: 200, stream: true });
    for (let i = 0; i < 8; i++) {
      await rawConnection(server.port, (s) => {
        s.write(head(Buffer.byteLength(body)) + body);
        s.once("data", () => s.destroy());  // gone after the first bytes of the stream
      });
    }
    await assertServes("after clients vanished mid-stream");
    const h = await request(server.url, "GET", "/health");
    assert.equal(h.status, 200);
  });
});

describe("a burst of 10,000 requests", () => {
  test("each is answered 200 or 429 (with Retry-After) or refused at connect; the server keeps serving", { timeout: 600000 }, async (t) => {
    const total = Number(process.env.BURST_REQUESTS ?? 10000);
    const body = JSON.stringify({ prompt: "Hi", max_tokens: 2, temperature: 0, seed: 1 });
    const burstText = await generate({ prompt: "Hi", max_tokens: 2, temperature: 0, top_p: 0.95, seed: 1 });
    const outcomes = new Map();
    const bad = [];
    const count = (k) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    const one = () => new Promise((resolve) => {
      const req = http.request(`${server.url}/v1/completions`, { method: "POST", agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        const parts = [];
        res.on("data", (d) => parts.push(d));
        res.on("error", (e) => { count(`response ${e.code}`); resolve(); });
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          count(String(res.statusCode));
          let json;
          try { json = JSON.parse(text); } catch { /* checked below */ }
          if (res.statusCode === 200) {
            if (json?.choices?.[0]?.text !== burstText) bad.push(`200 with ${text.slice(0, 200)}`);
          } else if (res.statusCode === 429 || res.statusCode === 503) {
            if (!res.headers["retry-after"]) bad.push(`${res.statusCode} without Retry-After`);
            if (!json?.error?.message) bad.push(`${res.statusCode} without an error object: ${text.slice(0, 200)}`);
          } else {
            bad.push(`status ${res.statusCode}: ${text.slice(0, 200)}`);
          }
          resolve();
        });
      });
      // Refused or reset by a full backlog: the graceful answer of an overloaded kernel.
      req.on("error", (e) => {
        count(e.code ?? e.message);
        if (!["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(e.code)) bad.push(`error ${e.code}: ${e.message}`);
        resolve();
      });
      req.end(body);
    });

    let bursting = true;
    const probes = [];
    const prober = (async () => {
      while (bursting) {
        const r = await request(server.url, "POST", "/v1/completions", { body: probe }).catch((e) => ({ status: e.code }));
        probes.push(r.status);
        if (r.status === 200) assert.equal(r.json.choices[0].text, probeText, "a probe during the burst");
      }
    })();
    await Promise.all(Array.from({ length: total }, one));
    bursting = false;
    await prober;
    const summary = Object.fromEntries([...outcomes].sort());
    const probeSummary = probes.reduce((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});
    t.diagnostic(`burst of ${total}: ${JSON.stringify(summary)}; probes during it: ${JSON.stringify(probeSummary)}`);
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} badly answered`);
    assert.ok((outcomes.get("200") ?? 0) > 0, "no request of the burst was served");
    assert.ok(server.running, `grok serve died during the burst: ${JSON.stringify(server.exit)}`);
    await assertServes("after the burst");
  });
});
