// Headless Chromium driven over the DevTools protocol on
// --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-terminated JSON): no
// WebSocket, no browser download, just the distribution's chromium.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
  return candidates.find((p) => p && existsSync(p));
}

export class Browser {
  #nextId = 1;
  #pending = new Map();   // id -> {resolve, reject, method}
  #listeners = new Set(); // (message) => void, for events

  static async launch() {
    const exe = chromiumPath();
    if (!exe) throw new Error("no chromium found (scripts/setup installs it; CHROMIUM overrides the path)");
    const profile = mkdtempSync(path.join(os.tmpdir(), "grok-chromium-"));
    // --no-sandbox: containers lack the namespaces chromium's sandbox needs.
    const proc = spawn(exe, ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
      "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
      `--user-data-dir=${profile}`, "about:blank"], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
    return new Browser(proc, profile);
  }

  constructor(proc, profile) {
    this.proc = proc;
    this.profile = profile;
    this.log = "";
    proc.stderr.on("data", (d) => { this.log = (this.log + d).slice(-20000); });
    let buffer = Buffer.alloc(0);
    proc.stdio[4].on("data", (d) => {
      buffer = Buffer.concat([buffer, d]);
      for (let end; (end = buffer.indexOf(0)) >= 0; buffer = buffer.subarray(end + 1)) this.#dispatch(JSON.parse(buffer.subarray(0, end).toString("utf8")));
    });
    proc.on("exit", (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`chromium exited (${code ?? signal}) during ${p.method}:\n${this.log}`));
      this.#pending.clear();
    });
  }

  #dispatch(msg) {
    if (msg.id !== undefined && this.#pending.has(msg.id)) {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    } else {
      for (const l of this.#listeners) l(msg);
    }
  }

  send(method, params = {}, sessionId) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.proc.stdio[3].write(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }) + "\0");
    });
  }

  // Resolves with the first event `method` on `sessionId`; register before causing it.
  waitForEvent(method, sessionId) {
    return new Promise((resolve) => {
      const l = (msg) => {
        if (msg.method === method && msg.sessionId === sessionId) { this.#listeners.delete(l); resolve(msg.params); }
      };
      this.#listeners.add(l);
    });
  }

  async newPage() {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    return page;
  }

  async close() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.on("exit", r));
      this.send("Browser.close").catch(() => {});
      const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  constructor(browser, sessionId) {
    this.browser = browser;
    this.sessionId = sessionId;
  }

  send(method, params) { return this.browser.send(method, params, this.sessionId); }

  async goto(url) {
    const loaded = this.browser.waitForEvent("Page.loadEventFired", this.sessionId);
    const r = await this.send("Page.navigate", { url });
    if (r.errorText) throw new Error(`navigating to ${url}: ${r.errorText}`);
    await loaded;
  }

  // Evaluates an expression in the page (awaiting a promise it returns) and returns its value.
  async evaluate(expression) {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  // Replaces a field's value the way a user would: focus, select all, type.
  async type(selector, text) {
    await this.evaluate(`(() => { const e = document.querySelector(${JSON.stringify(selector)}); e.focus(); e.select(); })()`);
    if (text === "") await this.send("Input.dispatchKeyEvent", { type: "keyDown", key: "Delete", code: "Delete", windowsVirtualKeyCode: 46 });
    else await this.send("Input.insertText", { text });
  }

  // A real mouse click in the middle of the element.
  async click(selector) {
    const box = await this.evaluate(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
      e.scrollIntoView(); const r = e.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; })()`);
    for (const type of ["mousePressed", "mouseReleased"]) await this.send("Input.dispatchMouseEvent", { type, ...box, button: "left", clickCount: 1 });
  }
}
