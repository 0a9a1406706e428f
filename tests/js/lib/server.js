// Starts `grok serve` on the built-in model on a free port, waits until
// /health answers, and stops it, telling a crash apart from a clean exit.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { grokBinary } from "./grok.js";

export class GrokServer {
  constructor(proc, port) {
    this.proc = proc;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.log = "";
    this.exit = null;  // {code, signal} once the process has ended
    proc.stdout.on("data", (d) => { this.log += d; });
    proc.stderr.on("data", (d) => { this.log += d; });
    this.exited = new Promise((resolve) => proc.on("exit", (code, signal) => { this.exit = { code, signal }; resolve(this.exit); }));
  }

  get pid() { return this.proc.pid; }
  get running() { return this.exit === null; }

  // Resident memory in KiB, from /proc (Linux).
  rssKiB() {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"));
    return Number(m[1]);
  }

  // Polls /health: a bounded number of tries, each a real request, not a guess at start-up time.
  async waitHealthy(tries = 600) {
    for (let i = 0; i < tries; i++) {
      if (!this.running) throw new Error(`grok serve exited (${JSON.stringify(this.exit)}) before it was healthy:\n${this.log}`);
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.ok) return;
      } catch { /* not listening yet */ }
      await delay(50);
    }
    throw new Error(`grok serve did not answer /health after ${tries} tries:\n${this.log}`);
  }

  // SIGTERM, then SIGKILL if it does not go; returns how it ended. A crash
  // before stop() shows as a signal other than the ones sent here.
  async stop() {
    if (this.running) {
      this.proc.kill("SIGTERM");
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 20000);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exit;
  }
}

// `args` go after `serve`; no -m: the built-in tiny model. --port 0 lets the
// kernel pick a free port, which the server prints on stderr.
export async function startServer(args = []) {
  const proc = spawn(grokBinary, ["serve", "--host", "127.0.0.1", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const onData = (d) => {
      log += d;
      const m = /serving .* on http:\/\/[^\s:]+:(\d+)/.exec(log);
      if (m) { proc.stderr.off("data", onData); proc.off("exit", onExit); resolve(Number(m[1])); }
    };
    const onExit = (code, signal) => reject(new Error(`grok serve exited (${code ?? signal}) before listening:\n${log}`));
    proc.stderr.on("data", onData);
    proc.on("exit", onExit);
  });
  const server = new GrokServer(proc, port);
  server.log = log;
  try {
    await server.waitHealthy();
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}
