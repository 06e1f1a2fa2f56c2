// The Notifier against a local Bot API stand-in with Telegram's limits (test/telegram.mjs): a crash's
// burst told to every user within the limits, digests, priorities, settings read from PostgreSQL,
// 429s honoured, refused chats given up. Bounded in time.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import pg from "pg";

import { BotApiSender, Notifier, PgDirectory, priorityOf } from "../dist/index.js";
import { Stack, user } from "./harness.mjs";
import { FakeTelegram } from "./telegram.mjs";

const uid = (n) => `0000000c-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const MARKET = "0000000a-0000-4000-8000-0000000000a1";

/** Every user is chat 100000 + n, settings as given (default both on). */
function memoryDirectory(settings = new Map()) {
  return {
    lookups: 0,
    async lookup(ids) {
      this.lookups += 1;
      const out = new Map();
      for (const id of ids) {
        const n = parseInt(id.slice(-12), 16);
        const s = settings.get(n) ?? {};
        out.set(id, {
          chatId: 100000 + n,
          priceAlerts: s.priceAlerts ?? true,
          tradeNotifications: s.tradeNotifications ?? true,
        });
      }
      return out;
    },
  };
}

let seq = 0;
function event(type, userN, extra = {}) {
  seq += 1;
  const base = { seq, type, ts: Date.now(), user_id: uid(userN), market_id: MARKET };
  if (type === "alert.triggered") return { ...base, alert_id: uid(9000 + seq), price: "64000", ...extra };
  if (type === "position.liquidated") return { ...base, position_id: uid(8000 + seq), price: "63000", ...extra };
  if (type === "order.filled")
    return { ...base, order_id: uid(7000 + seq), side: "sell", size: "0.5", price: "63500", ...extra };
  if (type === "order.triggered") return { ...base, order_id: uid(7000 + seq), price: "63900", ...extra };
  return { ...base, ...extra };
}

const waitDrain = (n, ms) =>
  Promise.race([
    n.drain(),
    new Promise((_, rej) => setTimeout(() => rej(new Error(`not drained in ${ms} ms`)), ms).unref()),
  ]);

let tg;
before(async () => {
  tg = await new FakeTelegram().start();
});
after(async () => {
  await tg?.stop();
});

test("a crash's burst: every user told within Telegram's limits, one digest each, most urgent first", async () => {
  const users = 150;
  const sender = new BotApiSender(tg.token, { baseUrl: tg.url });
  // startGraceMs: the first send of the burst waits for every chat whose window ends within it
  // (the windows end as the burst was routed; on a loaded machine that can take a while).
  const n = new Notifier({ sender, directory: memoryDirectory(), windowMs: 300, startGraceMs: 250 });
  const start = tg.messages.length;
  // 5 events per user in one burst (the last one's type decides the user's urgency: users 1..30 a
  // liquidation, 31..60 a fill, 61..90 a triggered stop, the rest alerts), pushed in reverse order
  // of users so that arrival order alone would tell the alert-only users first.
  const kinds = (u) =>
    u <= 30 ? "position.liquidated" : u <= 60 ? "order.filled" : u <= 90 ? "order.triggered" : "alert.triggered";
  const t0 = Date.now();
  for (let round = 0; round < 5; ++round) {
    for (let u = users; u >= 1; --u) n.push(event(round === 4 ? kinds(u) : "alert.triggered", u));
  }
  await waitDrain(n, 30_000);
  const took = Date.now() - t0;
  const mine = tg.messages.slice(start);
  assert.equal(tg.tooMany, 0, "no 429: the Notifier stays within the limits");
  assert.equal(new Set(mine.map((m) => m.chatId)).size, users, "every user told");
  assert.equal(n.stats.told, users * 5);
  assert.ok(tg.maxPerChat() <= 2, `at most 2 messages per chat, got ${tg.maxPerChat()}`);
  // 150 messages at 25/s: about 6 s, not 750 messages' 30 s.
  assert.ok(took < 12_000, `took ${took} ms`);
  // Most urgent first: every liquidated user was told before any user who only had alerts.
  const firstAt = new Map();
  mine.forEach((m, i) => firstAt.has(m.chatId) || firstAt.set(m.chatId, i));
  const lastLiquidated = Math.max(...[...Array(30).keys()].map((i) => firstAt.get(String(100001 + i))));
  const firstAlertOnly = Math.min(...[...Array(60).keys()].map((i) => firstAt.get(String(100091 + i))));
  assert.ok(lastLiquidated < firstAlertOnly, `${lastLiquidated} < ${firstAlertOnly}`);
  // A digest lists the urgent line first and carries all five events.
  const liq = mine.find((m) => m.chatId === "100001");
  assert.match(liq.text.split("\n")[0], /^LIQUIDATED/);
  assert.equal(liq.text.split("\n").length, 5);
  assert.ok(priorityOf("position.liquidated") < priorityOf("alert.triggered"));
});

test("429 retry_after is honoured: nothing sent during the penalty, nothing lost", async () => {
  // A stricter API than the Notifier was told (10/s against 40/s): the first burst earns 429s.
  const strict = await new FakeTelegram({ perSecond: 10, retryAfterS: 1 }).start();
  try {
    const n = new Notifier({
      sender: new BotApiSender(strict.token, { baseUrl: strict.url }),
      directory: memoryDirectory(),
      windowMs: 50,
      perSecond: 40,
    });
    for (let u = 1; u <= 40; ++u) n.push(event("order.filled", 1000 + u));
    await waitDrain(n, 30_000);
    assert.ok(n.stats.rateLimited > 0, "the API pushed back");
    assert.equal(strict.duringPenalty, 0, "no request while a retry_after was running");
    assert.equal(new Set(strict.messages.map((m) => m.chatId)).size, 40, "everyone told in the end");
    assert.equal(n.stats.told, 40);
    assert.equal(n.stats.failed, 0);
  } finally {
    await strict.stop();
  }
});

test("a chat the API refuses (403 blocked) is given up and reported; the others go on", async () => {
  const api = await new FakeTelegram({ blocked: [100000 + 2001] }).start();
  try {
    const n = new Notifier({
      sender: new BotApiSender(api.token, { baseUrl: api.url }),
      directory: memoryDirectory(),
      windowMs: 20,
    });
    const failed = [];
    n.on("failed", (f) => failed.push(f));
    n.push(event("order.filled", 2001));
    n.push(event("order.filled", 2002));
    await waitDrain(n, 10_000);
    assert.equal(failed.length, 1);
    assert.equal(String(failed[0].chatId), "102001");
    assert.match(failed[0].error.message, /403 Forbidden: bot was blocked/);
    assert.doesNotMatch(failed[0].error.message, /123:test/, "the token is never in an error");
    assert.deepEqual(api.messages.map((m) => m.chatId), ["102002"]);
  } finally {
    await api.stop();
  }
});

test("a user's settings from user_settings (PgDirectory): price alerts off, trade notifications off", async () => {
  const db = await new Stack().startDb();
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  try {
    db.sql(`INSERT INTO user_settings (user_id, setting_key, setting_value) VALUES
              ('${user(1)}', 'notifications', '{"price_alerts": false, "trade_notifications": true}'),
              ('${user(2)}', 'notifications', '{"price_alerts": true, "trade_notifications": false}')`);
    const api = await new FakeTelegram().start();
    try {
      const n = new Notifier({
        sender: new BotApiSender(api.token, { baseUrl: api.url }),
        directory: new PgDirectory(pool),
        windowMs: 20,
      });
      for (const u of [1, 2, 3]) {
        n.push({ ...event("alert.triggered", 0), user_id: user(u) });
        n.push({ ...event("order.filled", 0), user_id: user(u) });
      }
      n.push({ ...event("position.liquidated", 0), user_id: user(2) }); // always told
      n.push({ ...event("alert.triggered", 0), user_id: "0000000c-0000-4000-8000-0000000000ff" }); // no such user
      await waitDrain(n, 10_000);
      const byChat = new Map(api.messages.map((m) => [m.chatId, m.text]));
      // users.telegram_id is 700000 + n (the harness).
      assert.match(byChat.get("700001"), /^Filled/);
      assert.doesNotMatch(byChat.get("700001"), /Alert/);
      assert.match(byChat.get("700002"), /^LIQUIDATED/);
      assert.doesNotMatch(byChat.get("700002"), /Filled/);
      assert.match(byChat.get("700002"), /Alert/);
      assert.match(byChat.get("700003"), /Filled[\s\S]*Alert/);
      assert.equal(n.stats.suppressed, 3); // user 1's alert, user 2's fill, the unknown user
    } finally {
      await api.stop();
    }
  } finally {
    await pool.end();
    await db.stop();
  }
});
