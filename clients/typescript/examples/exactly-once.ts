// Exactly-once effects: each event's effect and the cursor move in one transaction of the bot's own,
// so a crash at any point neither loses an effect nor repeats it.
import pg from "pg";

import { is, LaminatorClient, PgCursorStore } from "@laminator/client";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
await pool.query(`CREATE TABLE IF NOT EXISTS bot_inbox (
  seq bigint PRIMARY KEY, user_id uuid NOT NULL, text text NOT NULL)`);
const cursor = new PgCursorStore(pool, "example-exactly-once");
const client = new LaminatorClient({
  url: process.env.LAMINATOR_URL ?? "ws://127.0.0.1:8700/v1/stream",
  token: process.env.LAMINATOR_TOKEN ?? "",
  filter: { type: "alert.triggered" },
  cursor, // where to resume; applyOnce below moves it with each effect
  commit: { intervalMs: 5000, events: 10_000 },
});
process.once("SIGTERM", () => void client.close());

for await (const ev of client) {
  if (!is(ev, "alert.triggered")) continue;
  // Skipped ({ applied: false }) if this seq's effect already committed.
  await cursor.applyOnce(ev, (tx) =>
    tx.query("INSERT INTO bot_inbox (seq, user_id, text) VALUES ($1, $2, $3)", [
      ev.seq,
      ev.user_id,
      `Your alert fired at ${ev.price}`,
    ]),
  );
}
await pool.end();
