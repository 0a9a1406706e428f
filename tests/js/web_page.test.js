// The page at / in headless Chromium: type a prompt and parameters, click
// Generate, wait until the stream ends, and compare the text with the API's
// non-streamed completion (and grok generate's) for the same parameters.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Browser } from "./lib/chromium.js";
import { generate } from "./lib/grok.js";
import { request } from "./lib/http.js";
import { startServer } from "./lib/server.js";

const apiKey = "page-key";
let server, browser, page;

before(async () => {
  server = await startServer(["--api-key", apiKey]);
  browser = await Browser.launch();
  page = await browser.newPage();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

// Waits, without polling, until the output reaches an end state; clickGenerate
// clears it first, so a state left from the previous run cannot satisfy it.
const finished = `new Promise((resolve) => {
  const out = document.getElementById("output");
  const check = () => !["idle", "streaming"].includes(out.dataset.state) && (observer.disconnect(), resolve(out.dataset.state));
  const observer = new MutationObserver(check);
  observer.observe(out, { attributes: true, attributeFilter: ["data-state"] });
  check();
})`;

async function clickGenerate() {
  await page.evaluate(`document.getElementById("output").dataset.state = "idle"`);
  await page.click("#generate");
}

// The key field sits in a closed <details>: open it as a user would.
async function setApiKey(key) {
  if (!await page.evaluate(`document.querySelector("details").open`)) await page.click("summary");
  await page.type("#api_key", key);
}

async function fill(params) {
  await page.type("#prompt", params.prompt);
  await page.type("#max_tokens", String(params.max_tokens));
  await page.type("#temperature", String(params.temperature));
  await page.type("#top_p", String(params.top_p));
  await page.type("#seed", String(params.seed));
  await page.type("#stop_sequences", (params.stop ?? []).join("\n"));
}

test("the page is self-contained and every control has a label", async () => {
  const r = await request(server.url, "GET", "/");
  assert.equal(r.status, 200);
  assert.match(r.headers["content-type"], /text\/html/);
  assert.doesNotMatch(r.text, /(src|href)\s*=\s*["']?(https?:)?\/\//i, "no external resources");
  await page.goto(`${server.url}/`);
  const unlabelled = await page.evaluate(`[...document.querySelectorAll("input, textarea, select")]
    .filter((e) => !e.labels || e.labels.length === 0).map((e) => e.id)`);
  assert.deepEqual(unlabelled, []);
});

test("Generate streams the API's completion for the same parameters", async () => {
  const params = { prompt: "The answer to life the universe and everything is", max_tokens: 40, temperature: 0.8, top_p: 0.95, seed: 21 };
  await page.goto(`${server.url}/`);
  await setApiKey(apiKey);
  await fill(params);
  await clickGenerate();
  assert.equal(await page.evaluate(finished), "done", await page.evaluate(`document.getElementById("error").textContent`));
  const shown = await page.evaluate(`document.querySelector("#output .completion").textContent`);
  const usage = await page.evaluate(`document.getElementById("usage").textContent`);

  const api = await request(server.url, "POST", "/v1/completions", { headers: { authorization: `Bearer ${apiKey}` }, body: params });
  assert.equal(api.status, 200, api.text);
  assert.equal(shown, api.json.choices[0].text);
  assert.equal(shown, await generate(params));
  assert.match(usage, new RegExp(`completion: ${api.json.usage.completion_tokens} tokens`));
});

test("stop sequences from the page apply", async () => {
  const base = { prompt: "Once upon a time", max_tokens: 48, temperature: 0.8, top_p: 0.95, seed: 3 };
  const full = await generate(base);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  assert.ok(stop.length === 2 && !stop.includes("\n"), `no usable stop string in ${JSON.stringify(full)}`);
  await page.goto(`${server.url}/`);
  await setApiKey(apiKey);
  await fill({ ...base, stop: [stop] });
  await clickGenerate();
  assert.equal(await page.evaluate(finished), "done");
  assert.equal(await page.evaluate(`document.querySelector("#output .completion").textContent`), full.slice(0, full.indexOf(stop)));
});

test("the API's error message is shown: a wrong key, a bad parameter", async () => {
  await page.goto(`${server.url}/`);
  await setApiKey("wrong-key");
  await clickGenerate();
  assert.equal(await page.evaluate(finished), "error");
  const wrongKey = await request(server.url, "POST", "/v1/completions", { headers: { authorization: "Bearer wrong-key" }, body: { prompt: "x" } });
  assert.equal(await page.evaluate(`document.getElementById("error").textContent`), `Error: ${wrongKey.json.error.message}`);

  await setApiKey(apiKey);
  await page.type("#temperature", "5");
  await clickGenerate();
  assert.equal(await page.evaluate(finished), "error");
  assert.match(await page.evaluate(`document.getElementById("error").textContent`), /temperature/i);
});

test("Stop ends the stream; what was shown is the start of the full text", async (t) => {
  const params = { prompt: "Once upon a time", max_tokens: 300, temperature: 0.8, top_p: 0.95, seed: 8 };
  await page.goto(`${server.url}/`);
  await setApiKey(apiKey);
  await fill(params);
  await clickGenerate();
  // Stop once the first text has arrived (a mutation, not a guess at timing).
  await page.evaluate(`new Promise((resolve) => {
    const c = document.querySelector("#output .completion");
    const check = () => c.textContent !== "" && (observer.disconnect(), resolve());
    const observer = new MutationObserver(check);
    observer.observe(c, { childList: true, characterData: true, subtree: true });
    check();
  })`);
  await page.click("#stop");
  const state = await page.evaluate(finished);
  // The whole text may already have arrived before the click: then it is simply done.
  assert.ok(["stopped", "done"].includes(state), state);
  t.diagnostic(`state after Stop: ${state}`);
  const shown = await page.evaluate(`document.querySelector("#output .completion").textContent`);
  const full = await generate(params);
  assert.ok(shown.length > 0 && full.startsWith(shown), `${JSON.stringify(shown.slice(0, 80))} is not the start of the full text`);
  if (state === "stopped") assert.ok(shown.length < full.length);
  assert.equal(await page.evaluate(`document.getElementById("generate").disabled`), false, "Generate is enabled again");
});
