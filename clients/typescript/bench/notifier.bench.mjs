// A market crash told through the Notifier (docs/performance.md, "Telling users"): EVENTS events over
// USERS users within one second, sent to a local Bot API stand-in with Telegram's limits (30
// messages/s in all, 1/s per chat, 429 with retry_after beyond them; test/telegram.mjs).
// Reported: the time until every user was told (and until every user with a liquidation or fill
// was), messages sent, the most any chat received, 429s.
// Baseline in the same run, at 1/SCALE of the size: one message per event, sent as fast as the
// limits allow (the same budget and per-chat pacing, no digests); its time to tell everyone is
// compared with the Notifier's at that size.
//
// Run: node bench/notifier.bench.mjs [--users 10000] [--events 50000] [--scale 50]

import { BotApiSender, Notifier } from "../dist/index.js";
import { FakeTelegram } from "../test/telegram.mjs";

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const USERS = arg("users", 10_000);
const EVENTS = arg("events", 50_000);
const SCALE = arg("scale", 50);
const uid = (n) => `0000000c-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
const pct = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
const directory = {
  async lookup(ids) {
    return new Map(ids.map((id) => [id, { chatId: parseInt(id.slice(-12), 16), priceAlerts: true, tradeNotifications: true }]));
  },
};

/** EVENTS events for USERS users, types mixed as a crash makes them: every user gets several. */
function crash(users, events) {
  const out = [];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < events; ++i) {
    const u = 1 + (i % users);
    const r = rnd();
    const type = r < 0.1 ? "position.liquidated" : r < 0.3 ? "order.filled" : r < 0.5 ? "order.triggered" : "alert.triggered";
    out.push({ seq: i + 1, type, ts: 0, user_id: uid(u), market_id: null, price: "63000", side: "sell", size: "1" });
  }
  return out;
}

async function pushOverOneSecond(events, push) {
  const slices = 10;
  const per = Math.ceil(events.length / slices);
  for (let s = 0; s < slices; ++s) {
    for (const ev of events.slice(s * per, (s + 1) * per)) push(ev);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function notifierRun(users, events) {
  const tg = await new FakeTelegram().start();
  const n = new Notifier({ sender: new BotApiSender(tg.token, { baseUrl: tg.url }), directory });
  const evs = crash(users, events);
  const urgent = new Set(evs.filter((e) => e.type === "position.liquidated" || e.type === "order.filled").map((e) => e.user_id));
  const toldAt = new Map();
  const t0 = Date.now();
  n.on("sent", ({ chatId }) => {
    if (!toldAt.has(chatId)) toldAt.set(chatId, Date.now() - t0);
  });
  await pushOverOneSecond(evs, (ev) => n.push(ev));
  await n.drain();
  const all = [...toldAt.values()];
  const urgentTimes = [...urgent].map((u) => toldAt.get(parseInt(u.slice(-12), 16)));
  const r = {
    users: toldAt.size,
    allToldS: Math.max(...all) / 1000,
    urgentToldS: Math.max(...urgentTimes) / 1000,
    p50S: pct(all, 0.5) / 1000,
    messages: tg.messages.length,
    maxPerChat: tg.maxPerChat(),
    tooMany: tg.tooMany,
    told: n.stats.told,
  };
  await tg.stop();
  return r;
}

async function naiveRun(users, events) {
  // One message per event; the same limits respected (25/s in all, 1.1 s per chat), no coalescing.
  const tg = await new FakeTelegram().start();
  const sender = new BotApiSender(tg.token, { baseUrl: tg.url });
  const evs = crash(users, events);
  const queue = [];
  const t0 = Date.now();
  const toldAll = new Map();
  await pushOverOneSecond(evs, (ev) => queue.push(ev));
  const lastByChat = new Map();
  let next = Date.now();
  while (queue.length > 0) {
    const now = Date.now();
    // The oldest event whose chat may receive now.
    const i = queue.findIndex((e) => (lastByChat.get(e.user_id) ?? 0) + 1100 <= now);
    if (i < 0 || now < next) {
      await new Promise((r) => setTimeout(r, Math.max(1, next - now)));
      continue;
    }
    const [ev] = queue.splice(i, 1);
    lastByChat.set(ev.user_id, now);
    next = Math.max(next, now) + 40;
    await sender.send(parseInt(ev.user_id.slice(-12), 16), `${ev.type} ${ev.price}`);
    toldAll.set(ev.user_id, Date.now() - t0);
  }
  const r = { messages: tg.messages.length, allDoneS: (Date.now() - t0) / 1000, tooMany: tg.tooMany, maxPerChat: tg.maxPerChat() };
  await tg.stop();
  return r;
}

const su = Math.max(1, Math.round(USERS / SCALE));
const se = Math.max(1, Math.round(EVENTS / SCALE));
console.log(`baseline at 1/${SCALE}: ${se} events over ${su} users`);
const naive = await naiveRun(su, se);
console.log(`  one message per event: ${naive.messages} messages, every event sent after ${naive.allDoneS.toFixed(1)} s, most to one chat ${naive.maxPerChat}, 429s ${naive.tooMany}`);
const small = await notifierRun(su, se);
console.log(`  Notifier:              ${small.messages} messages, every user told after ${small.allToldS.toFixed(1)} s, most to one chat ${small.maxPerChat}, 429s ${small.tooMany}  (x${(naive.allDoneS / small.allToldS).toFixed(1)} sooner)`);
console.log(`full size: ${EVENTS} events over ${USERS} users within 1 s`);
const full = await notifierRun(USERS, EVENTS);
console.log(
  `  Notifier: ${full.users} users told (${full.told} events) in ${full.messages} messages; every user told after ${full.allToldS.toFixed(1)} s ` +
    `(half after ${full.p50S.toFixed(1)} s; every user with a liquidation or fill after ${full.urgentToldS.toFixed(1)} s); ` +
    `most messages to one chat ${full.maxPerChat}; 429s ${full.tooMany}`,
);
console.log(`  one message per event at the same limits would need >= ${(EVENTS / 25).toFixed(0)} s (${EVENTS} messages at 25/s)`);
