// Telling users on Telegram: the stream into a Notifier (digests per chat, under Telegram's limits,
// the most urgent first, each user's notification settings from user_settings).
import pg from "pg";

import { BotApiSender, LaminatorClient, Notifier, PgCursorStore, PgDirectory } from "@laminator/client";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const notifier = new Notifier({
  // Or any Sender: { send: (chatId, text) => bot.api.sendMessage(chatId, text) } with grammY.
  sender: new BotApiSender(process.env.TELEGRAM_TOKEN ?? "", {
    ...(process.env.TELEGRAM_API ? { baseUrl: process.env.TELEGRAM_API } : {}),
  }),
  directory: new PgDirectory(pool), // users.telegram_id and the `notifications` setting
  windowMs: 1000, // a user's events within a second become one message
});
notifier.on("failed", ({ chatId, error }) => console.error(`chat ${chatId}: ${error.message}`));

const client = new LaminatorClient({
  url: process.env.LAMINATOR_URL ?? "ws://127.0.0.1:8700/v1/stream",
  token: process.env.LAMINATOR_TOKEN ?? "",
  cursor: new PgCursorStore(pool, "example-notifier"),
  commit: { events: 1000, intervalMs: 1000 },
});
process.once("SIGTERM", () => void client.close());

// Handing an event to the Notifier is quick; its sends are paced in the background. A crash may
// lose digests not yet sent for events already committed: commit less often to narrow that window.
for await (const ev of client) notifier.push(ev);
await notifier.drain();
notifier.close();
await pool.end();
