// A bot's loop: typed events, its cursor in PostgreSQL committed in batches, a clean shutdown.
// Run: LAMINATOR_URL=ws://127.0.0.1:8700/v1/stream LAMINATOR_TOKEN=... DATABASE_URL=postgres://... node bot.js
import pg from "pg";

import { is, LaminatorClient, PgCursorStore } from "@laminator/client";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const client = new LaminatorClient({
  url: process.env.LAMINATOR_URL ?? "ws://127.0.0.1:8700/v1/stream",
  token: process.env.LAMINATOR_TOKEN ?? "",
  filter: { type: ["alert.triggered", "order.filled", "position.liquidated"] },
  // One row in stream_cursors per consumer name; saved every 500 handled events or 1 s, and on close.
  cursor: new PgCursorStore(pool, "example-bot"),
  commit: { events: 500, intervalMs: 1000 },
});
client.on("reconnecting", ({ attempt, delayMs, error }) =>
  console.error(`reconnecting (attempt ${attempt}, in ${delayMs} ms): ${error.message}`),
);
process.once("SIGTERM", () => void client.close());

for await (const ev of client) {
  // At-least-once: after a crash, events handled since the last commit come again.
  if (is(ev, "alert.triggered")) console.log(`alert ${ev.alert_id} at ${ev.price} (seq ${ev.seq})`);
  else if (is(ev, "order.filled")) console.log(`filled ${ev.order_id} at ${ev.price} (seq ${ev.seq})`);
  else if (is(ev, "position.liquidated")) console.log(`liquidated ${ev.position_id} (seq ${ev.seq})`);
}
// The loop ends after close(): the cursor holds the last event handled.
await pool.end();
