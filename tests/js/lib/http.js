// Plain node:http requests to the server: JSON in and out, and streamed
// completions read as server-sent events, keeping every event so tests can
// check order, duplicates and the closing [DONE].
import http from "node:http";

// One request; resolves with the status, headers and body (parsed when JSON).
export function request(baseUrl, method, path, { body, headers = {}, agent } = {}) {
  const payload = body === undefined ? undefined : (typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, baseUrl), {
      method, agent,
      headers: { ...(payload !== undefined && { "content-type": "application/json" }), ...headers },
    }, (res) => {
      const parts = [];
      res.on("data", (d) => parts.push(d));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(parts).toString("utf8");
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// Splits an SSE body into its events' data fields.
export function sseEvents(text) {
  return text.replace(/\r\n?/g, "\n").split("\n\n").filter((e) => e.trim() !== "").map((e) =>
    e.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n"));
}

// A streamed /v1/completions (one prompt, n = 1): the text its chunks add up
// to, the chunks, the usage chunk and whether [DONE] closed the stream.
export async function streamCompletion(baseUrl, body, opts = {}) {
  const r = await request(baseUrl, "POST", "/v1/completions",
    { ...opts, body: { ...body, stream: true, stream_options: { include_usage: true } } });
  if (r.status !== 200) return { status: r.status, error: r.json?.error, text: r.text };
  const events = sseEvents(r.text);
  const doneAt = events.indexOf("[DONE]");
  const chunks = events.slice(0, doneAt < 0 ? events.length : doneAt).map((d) => JSON.parse(d));
  const textChunks = chunks.filter((c) => c.choices?.length);
  return {
    status: 200,
    contentType: r.headers["content-type"],
    done: doneAt === events.length - 1,
    ids: new Set(chunks.map((c) => c.id)),
    chunks: textChunks,
    completion: textChunks.map((c) => c.choices[0].text).join(""),
    finishReason: textChunks.map((c) => c.choices[0].finish_reason).filter(Boolean),
    usage: chunks.find((c) => c.usage)?.usage,
  };
}
