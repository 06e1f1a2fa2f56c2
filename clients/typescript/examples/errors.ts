// What can go wrong, and how the client says it: nothing throws out of it or crashes the process.
import { LaminatorClient, StreamError } from "@laminator/client";

const client = new LaminatorClient({
  url: process.env.LAMINATOR_URL ?? "ws://127.0.0.1:8700/v1/stream",
  token: process.env.LAMINATOR_TOKEN ?? "",
  filter: { type: ["alert.triggered"] },
  // Give up after 5 failed attempts in a row (default: retry forever, reporting each failure).
  backoff: { initialMs: 100, maxMs: 2000, maxAttempts: 5 },
});
client.on("reconnecting", ({ attempt, delayMs, error }) =>
  console.error(`attempt ${attempt} failed (${error.message}); next in ${delayMs} ms`),
);

try {
  for await (const ev of client) console.log(ev.seq, ev.type);
} catch (e) {
  if (!(e instanceof StreamError)) throw e;
  // kind: refused (HTTP status in code, the server's text in reason), closed (a close code),
  // config (a bad option), cursor (cursor.load failed), retries (maxAttempts), handler.
  console.error(`stopped (${e.kind}, ${e.code}): ${e.message}`);
  process.exitCode = e.kind === "refused" ? 2 : 3;
}
