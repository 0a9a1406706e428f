// grok serve under mpirun (tensor parallelism over OpenMPI), the real binary
// started by mpirun here: rank 0 serves, rank 1 runs its part of each pass.
//   - a greedy completion equals single-process `grok generate`; /health ok;
//   - SIGTERM to mpirun ends every rank, rank 0 saying `grok: stopped`;
//   - a rank SIGKILLed during a streamed completion: rank 0 answers (503 to a
//     new request, or an error object ending the stream), exits naming the
//     stop, mpirun exits non-zero and no rank is left.
// Every wait is bounded: a count of polls or a timer, never a sleep standing
// in for an event. Skipped where mpirun is not on PATH.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { generate, grokBinary } from "./lib/grok.js";
import { request, sseEvents } from "./lib/http.js";
import { GrokServer } from "./lib/server.js";

function onPath(name) {
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, name), constants.X_OK);
      return path.join(dir, name);
    } catch { /* not here */ }
  }
  return null;
}
const mpirun = onPath("mpirun");
const skip = mpirun ? false : "mpirun is not on PATH (OpenMPI is not installed)";

// OpenMPI 4.1 stops its ranks (on its own SIGTERM, or once a rank died) with
// SIGCONT, a sleep of odls_base_sigkill_timeout seconds, SIGTERM, a second
// sleep (rank 0's time to answer and exit; cut short by the first rank's exit,
// rounded down to whole seconds), then SIGKILL. With the default 1 rank 0 is
// SIGKILLed almost at once; 3 gives it 2 s or more (it needs milliseconds) and
// keeps each stop near 4 s, where 10 would take about 19 s.
const sigkillTimeout = 3;
const env = { ...process.env };
if (process.getuid?.() === 0) Object.assign(env, { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" });

const started = [];  // every mpirun started here, ended in after() if a test left it running
after(async () => {
  for (const s of started) if (s.running) await s.stop();
});

// `mpirun -np 2 grok serve` on the built-in model; resolves once rank 0
// listens and /health answers, with the rank processes found.
async function startMpiServer(args = []) {
  const proc = spawn(mpirun, ["--oversubscribe", "--bind-to", "none", "-np", "2",
    "--mca", "odls_base_sigkill_timeout", String(sigkillTimeout),
    grokBinary, "serve", "--host", "127.0.0.1", "--port", "0", ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error(`mpirun grok serve did not listen within 60 s:\n${stderr}`)); }, 60000);
    const onData = () => {
      const m = /serving .* on http:\/\/[^\s:]+:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); proc.stderr.off("data", onData); proc.off("exit", onExit); resolve(Number(m[1])); }
    };
    const onExit = (code, signal) => { clearTimeout(timer); reject(new Error(`mpirun grok serve exited (${code ?? signal}) before listening:\n${stderr}`)); };
    proc.stderr.on("data", onData);
    proc.on("exit", onExit);
  });
  const server = new GrokServer(proc, port);
  server.log = stderr;
  server.stderr = () => stderr;
  started.push(server);
  await server.waitHealthy();
  server.ranks = await findRanks(proc.pid, 2);
  return server;
}

// /proc/PID/stat: the fields after the command name (which may hold spaces
// and parentheses). [0] is the state, [1] the parent pid, [19] the start time.
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    return s.slice(s.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

// mpirun's children (it starts the local ranks itself), each with its
// OMPI_COMM_WORLD_RANK and start time (to tell a reused pid apart).
async function findRanks(mpirunPid, count, tries = 100) {
  for (let i = 0; i < tries; i++) {
    const ranks = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const f = statFields(name);
      if (!f || Number(f[1]) !== mpirunPid) continue;
      let rank;
      try {
        const m = /(?:^|\0)OMPI_COMM_WORLD_RANK=(\d+)\0/.exec(readFileSync(`/proc/${name}/environ`, "latin1"));
        rank = m ? Number(m[1]) : undefined;
      } catch { /* gone meanwhile */ }
      if (rank !== undefined) ranks.push({ pid: Number(name), rank, start: f[19] });
    }
    if (ranks.length === count) return ranks.sort((a, b) => a.rank - b.rank);
    await delay(50);
  }
  throw new Error(`mpirun ${mpirunPid}: did not find ${count} rank processes after ${tries} tries`);
}

// A rank counts as running while its pid shows the same process and is no zombie.
function alive({ pid, start }) {
  const f = statFields(pid);
  return f !== null && f[19] === start && f[0] !== "Z";
}
async function assertRanksGone(ranks, tries = 100) {
  let left = ranks;
  for (let i = 0; i < tries && left.length; i++) {
    left = left.filter(alive);
    if (left.length) await delay(50);
  }
  assert.deepEqual(left.map((r) => `rank ${r.rank} (pid ${r.pid})`), [], "rank processes still running after mpirun exited");
}

// Resolves with how the process ended; fails after `ms`.
async function exitWithin(server, ms) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`mpirun still running after ${ms} ms:\n${server.stderr()}`)), ms); });
  try {
    return await Promise.race([server.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// A streamed completion read as it comes: `firstText` resolves with the first
// chunk that carries text, `done` with the whole body (or the connection error),
// both within `ms`.
function streamingCompletion(url, body, ms) {
  let onFirst;
  const firstText = new Promise((resolve) => { onFirst = resolve; });
  const done = new Promise((resolve) => {
    let text = "", finished = false;
    const finish = (result) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      onFirst(null);
      resolve({ ...result, text, events: sseEvents(text) });
    };
    const req = http.request(new URL("/v1/completions", url), { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (d) => {
        text += d;
        if (/"text":"[^"]/.test(text)) onFirst(text);
      });
      res.on("end", () => finish({ status: res.statusCode }));
      res.on("error", (e) => finish({ status: res.statusCode, error: e }));
      res.on("aborted", () => finish({ status: res.statusCode, error: new Error("aborted") }));
    });
    const timer = setTimeout(() => { req.destroy(new Error(`no end after ${ms} ms`)); }, ms);
    req.on("error", (e) => finish({ error: e }));
    req.end(JSON.stringify({ ...body, stream: true }));
  });
  return { firstText, done };
}

const prompt = "The answer to life the universe and everything is";

describe("grok serve under mpirun -np 2", () => {
  let server;

  test("a greedy completion equals single-process grok generate; /health ok", { skip }, async () => {
    server = await startMpiServer();
    assert.deepEqual(server.ranks.map((r) => r.rank), [0, 1]);
    const health = await request(server.url, "GET", "/health");
    assert.equal(health.status, 200, health.text);
    assert.equal(health.json?.status, "ok", health.text);
    for (const params of [{ max_tokens: 32, temperature: 0 }, { max_tokens: 24, temperature: 0.8, top_p: 0.95, seed: 7 }]) {
      const r = await request(server.url, "POST", "/v1/completions", { body: { prompt, ...params } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].text, await generate({ prompt, ...params }), JSON.stringify(params));
    }
  });

  test("SIGTERM to mpirun stops every rank; rank 0 says grok: stopped", { skip }, async () => {
    assert.ok(server?.running, "the server of the previous test is running");
    const ranks = server.ranks;
    assert.ok(ranks.every(alive));
    server.proc.kill("SIGTERM");
    const exit = await exitWithin(server, 30000);
    // mpirun's own convention: 1 after a SIGTERM, whatever the ranks did.
    assert.ok(exit.code === 1 || exit.code === 0, `mpirun: ${JSON.stringify(exit)}\n${server.stderr()}`);
    assert.match(server.stderr(), /^grok: stopped$/m, "rank 0 stopped cleanly (no pass was cut)");
    assert.doesNotMatch(server.stderr(), /^grok: error: /m);
    await assertRanksGone(ranks);
  });
});

describe("grok serve under mpirun -np 2: a rank that dies", () => {
  test("rank 1 SIGKILLed mid-stream: 503 or an error object, rank 0 names the stop, mpirun fails, no rank left", { skip }, async (t) => {
    const server = await startMpiServer();
    const ranks = server.ranks;
    // The built-in model's context is 2048 tokens: a short prompt and 2000 more.
    const stream = streamingCompletion(server.url, { prompt, max_tokens: 2000, temperature: 0 }, 60000);
    const first = await stream.firstText;
    assert.ok(first, "the streamed completion sent text before the rank was killed");
    process.kill(ranks[1].pid, "SIGKILL");

    // Sent now: it waits behind the pass that cannot finish, until rank 0 gets
    // mpirun's SIGTERM (or finds rank 0 gone: a connection error).
    let late;
    try {
      late = await request(server.url, "POST", "/v1/completions", { body: { prompt, max_tokens: 4, temperature: 0 } });
    } catch (e) {
      late = { error: e };
    }
    const streamed = await stream.done;
    const exit = await exitWithin(server, 40000);
    const stderr = server.stderr();
    const why = `\nlate request: ${JSON.stringify(late.error?.message ?? late.text)}\nstream's last events: ${JSON.stringify(streamed.events.slice(-3))}\nmpirun: ${JSON.stringify(exit)}\n${stderr}`;

    t.diagnostic(`late request: ${late.error ? late.error.message : late.status}; stream error: ${JSON.stringify(streamed.events.find((e) => e.includes('"error"')) ?? null)}; mpirun: ${JSON.stringify(exit)}; ${stderr.split("\n").find((l) => l.startsWith("grok: error: "))}`);
    if (!late.error) {
      assert.equal(late.status, 503, why);
      assert.equal(late.json?.error?.code, "shutting_down", why);
    }
    const streamError = streamed.events.map((e) => { try { return JSON.parse(e); } catch { return null; } }).find((e) => e?.error);
    assert.ok(late.status === 503 || streamError, `neither a 503 nor an error object in the stream${why}`);
    assert.ok(!streamed.events.includes("[DONE]"), `the cut stream did not end with [DONE]${why}`);

    assert.ok(exit.code !== 0, `mpirun exits non-zero after a rank died${why}`);
    const errors = stderr.split("\n").filter((l) => l.startsWith("grok: error: "));
    assert.equal(errors.length, 1, `one grok: error: line from rank 0${why}`);
    assert.match(errors[0], /stopped/, why);
    await assertRanksGone(ranks);
  });
});
