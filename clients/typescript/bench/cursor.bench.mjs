// How fast a bot that persists its cursor in PostgreSQL consumes the stream (docs/performance.md,
// "The bot's cursor"). The real daemon, PostgreSQL and mock exchange on loopback (test/harness.mjs).
//
// Catch-up: EVENTS journaled events (crossed alerts), consumed from `since` by a bot whose handler
// does nothing, in three modes, alternated, ROUNDS rounds, medians:
//   per-event   the baseline: `await store.save(ev.seq)` after each event (the old README's advice)
//   background  the client's cursor with the default commit (every event, saves coalesced)
//   batched     commit: { events: 1000, intervalMs: 1000 }
// Live: a producer inserts RATE crossed alerts a second for SECONDS seconds while a `batched` bot
// consumes; reported: its rate and the lag of each event (handled - tick time), p50/p99/max.
//
// Run: node bench/cursor.bench.mjs [--events 60000] [--rounds 3] [--rate 20000] [--seconds 5]

import pg from "pg";

import { LaminatorClient, PgCursorStore } from "../dist/index.js";
import { Stack, TOKEN } from "../test/harness.mjs";

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const EVENTS = arg("events", 60_000);
const ROUNDS = arg("rounds", 3);
const RATE = arg("rate", 20_000);
const SECONDS = arg("seconds", 5);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const pct = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];

const stack = await new Stack().start();
const pool = new pg.Pool({ connectionString: stack.url, max: 4 });
const head = async () => Number((await pool.query("SELECT coalesce(max(seq),0)::text AS s FROM alert_events")).rows[0].s);
let nextId = 1;
async function insertCrossed(n) {
  // Alerts that fire at the next tick (BTC is near 80,000 on the mock), spread over users 1..3.
  await pool.query(
    `INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price)
     SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
            ('0000000c-0000-4000-8000-' || lpad(to_hex(1 + g % 3), 12, '0'))::uuid,
            '0000000a-0000-4000-8000-0000000000a1', 'price_above', 'greater_than', 1
       FROM generate_series($1::bigint, $2::bigint) g`,
    [nextId, nextId + n - 1],
  );
  nextId += n;
}

try {
  // ---- catch-up ----
  const from = await head();
  for (let done = 0; done < EVENTS; done += 5000) await insertCrossed(Math.min(5000, EVENTS - done));
  const t0 = Date.now();
  while ((await head()) < from + EVENTS && Date.now() - t0 < 120_000) await sleep(200);
  const to = await head();
  const n = to - from;
  console.log(`journal: ${n} events (seq ${from + 1}..${to})`);

  async function consume(mode, round) {
    const store = new PgCursorStore(pool, `bench-${mode}-${round}`);
    const opts = { url: stack.streamUrl, token: TOKEN, since: from };
    if (mode === "background") Object.assign(opts, { cursor: store });
    if (mode === "batched") Object.assign(opts, { cursor: store, commit: { events: 1000, intervalMs: 1000 } });
    const client = new LaminatorClient(opts);
    const start = process.hrtime.bigint();
    let got = 0;
    for await (const ev of client) {
      ++got;
      if (mode === "per-event") await store.save(ev.seq);
      if (ev.seq >= to) break;
    }
    const s = Number(process.hrtime.bigint() - start) / 1e9;
    const stored = Number((await store.load()) ?? 0);
    return { rate: got / s, stored };
  }

  const modes = ["per-event", "background", "batched"];
  const rates = Object.fromEntries(modes.map((m) => [m, []]));
  for (let r = 0; r < ROUNDS; ++r) {
    for (const m of r % 2 ? [...modes].reverse() : modes) {
      const { rate, stored } = await consume(m, r);
      rates[m].push(rate);
      console.log(`round ${r + 1} ${m.padEnd(10)} ${Math.round(rate).toString().padStart(7)} events/s  (cursor stored: ${stored})`);
    }
  }
  const base = median(rates["per-event"]);
  for (const m of modes)
    console.log(`median ${m.padEnd(10)} ${Math.round(median(rates[m])).toString().padStart(7)} events/s  x${(median(rates[m]) / base).toFixed(1)} the per-event baseline`);

  // ---- live ----
  const store = new PgCursorStore(pool, "bench-live");
  const client = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, cursor: store, commit: { events: 1000, intervalMs: 1000 } });
  const lags = [];
  let first = 0;
  let last = 0;
  let opened = false;
  client.on("open", () => (opened = true));
  const loop = (async () => {
    for await (const ev of client) {
      const now = Date.now();
      if (ev.type !== "alert.triggered") continue;
      if (!first) first = now;
      last = now;
      lags.push(now - ev.ts);
    }
  })();
  while (!opened) await sleep(20);
  const perTick = Math.round(RATE / 10);
  const liveStart = Date.now();
  for (let i = 0; i < SECONDS * 10; ++i) {
    const due = liveStart + i * 100;
    if (Date.now() < due) await sleep(due - Date.now());
    await insertCrossed(perTick);
  }
  const produced = SECONDS * 10 * perTick;
  const end = Date.now() + 30_000;
  while (lags.length < produced && Date.now() < end) await sleep(50);
  await client.close();
  await loop;
  const span = (last - first) / 1000;
  console.log(
    `live: ${lags.length}/${produced} alerts at ${RATE}/s offered; handled at ${Math.round(lags.length / span)} events/s; ` +
      `lag (handled - tick) p50 ${pct(lags, 0.5)} ms, p99 ${pct(lags, 0.99)} ms, max ${Math.max(...lags)} ms; ` +
      `cursor ${await store.load()}`,
  );
} finally {
  await pool.end();
  await stack.stop();
}
