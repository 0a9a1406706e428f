// Raw TCP clients for what node:http will not send: bodies that lie about
// their length, stalls, trickles, half-closes. Each resolves when the server
// closes the connection, with whatever it answered.
import net from "node:net";

// Parses the first HTTP response in `buf` (Content-Length or chunked body); null if none.
export function parseResponse(buf) {
  const text = buf.toString("latin1");
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const [statusLine, ...lines] = text.slice(0, headEnd).split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = buf.subarray(headEnd + 4);
  let complete;
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    complete = body.includes("0\r\n\r\n");
    const parts = [];
    for (let at = 0; ;) {
      const eol = body.indexOf("\r\n", at);
      if (eol < 0) break;
      const size = parseInt(body.subarray(at, eol).toString("latin1"), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers["content-length"] !== undefined) {
    complete = body.length >= Number(headers["content-length"]);
    body = body.subarray(0, Number(headers["content-length"]));
  }
  const bodyText = body.toString("utf8");
  let json;
  try { json = JSON.parse(bodyText); } catch { /* not JSON */ }
  return { status, headers, body: bodyText, json, complete };
}

// Opens a connection and hands it to `drive(socket)`; resolves once the
// server has closed it (or, with untilResponse, once a whole response has
// come): {response, bytes, error (a write after the server stopped reading
// is expected here)}.
export function rawConnection(port, drive, { untilResponse = false } = {}) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const parts = [];
    let error = null;
    socket.on("data", (d) => {
      parts.push(d);
      if (untilResponse && parseResponse(Buffer.concat(parts))?.complete) socket.destroy();
    });
    socket.on("error", (e) => { error = e.code ?? String(e); });
    socket.on("close", () => {
      const bytes = Buffer.concat(parts);
      resolve({ response: parseResponse(bytes), bytes: bytes.length, error });
    });
    socket.on("connect", () => drive(socket));
  });
}

// Sends `data` whole and half-closes; the answer comes back on close.
export function rawRequest(port, data) {
  return rawConnection(port, (s) => s.end(data));
}
