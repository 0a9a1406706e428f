// The grok binary under test, and `grok generate`'s text: the reference every
// served completion is compared with (same prompt, seed, sampling, length).
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const grokBinary = path.resolve(repoRoot, process.env.GROK_BINARY || "build/grok");

// The same defaults the server documents, so a test that sets nothing compares like with like.
export const defaults = { temperature: 0.8, top_p: 0.95, seed: 42 };

// `grok generate` streams the completion to stdout and ends it with one "\n".
export function generate({ prompt, max_tokens, temperature, top_p, seed, stop = [] }) {
  const args = ["generate", `--prompt=${prompt}`, "-n", String(max_tokens),
    `--temperature=${temperature ?? defaults.temperature}`, `--top-p=${top_p ?? defaults.top_p}`,
    `--seed=${seed ?? defaults.seed}`];
  for (const s of [stop].flat()) args.push(`--stop=${s}`);
  return new Promise((resolve, reject) => {
    execFile(grokBinary, args, { encoding: "buffer", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`grok ${args.join(" ")}: ${err.message}\n${stderr}`));
      const text = stdout.toString("utf8");
      if (!text.endsWith("\n")) return reject(new Error(`grok generate's output lacks its final newline: ${JSON.stringify(text)}`));
      resolve(text.slice(0, -1));
    });
  });
}

// Expected texts, each computed once: generate() starts a process per call.
export class ExpectedTexts {
  #cache = new Map();
  get(request) {
    const key = JSON.stringify(request);
    if (!this.#cache.has(key)) this.#cache.set(key, generate(request));
    return this.#cache.get(key);
  }
}

// `grok tokenize` prints the ids as a JSON array.
export function tokenize(text) {
  return new Promise((resolve, reject) => {
    execFile(grokBinary, ["tokenize", `--prompt=${text}`], (err, stdout, stderr) =>
      err ? reject(new Error(`grok tokenize: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)));
  });
}
