// Issue 29's defects, each against the real daemon (PostgreSQL, mock exchange, `laminator run`):
// filters in the URL across reconnects, close() and the cursor promise, errors that reach the caller
// instead of crashing it or retrying in silence, bigint/string cursors, batched commits, the
// PostgreSQL cursor store and exactly-once effects in the bot's own transaction. Bounded in time.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";

import pg from "pg";

import {
  LaminatorClient,
  PgCursorStore,
  SeqGuard,
  StreamError,
  streamUrl,
  toSeq,
} from "../dist/index.js";
import { alertId, Stack, TOKEN, user, waitFor } from "./harness.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stack;
let pool;
before(async () => {
  stack = await new Stack().start();
  pool = new pg.Pool({ connectionString: stack.url, max: 4 });
});
after(async () => {
  await pool?.end();
  await stack?.stop();
});

/** The stream's head: the newest journaled seq. */
function head() {
  return Number(stack.sql("SELECT coalesce(max(seq), 0) FROM alert_events").trim());
}


test("streamUrl: one well-formed query whatever the URL held", () => {
  const u = streamUrl(
    "ws://127.0.0.1:1/v1/stream?user_id=a&type=alert.triggered&since=3",
    { userId: ["u1", "u2"] },
    42,
    true,
  );
  const p = new URL(u).searchParams;
  assert.equal(p.get("user_id"), "u1,u2");
  assert.equal(p.getAll("since").length, 1);
  assert.equal(p.get("since"), "42");
  assert.equal(p.get("committed"), "1");
  assert.equal(p.get("type"), null, "the filter passed replaces the URL's");
  assert.equal(u.split("?").length, 2);
});

// Before the fix: `url + "?since=N"` on a URL with a query made `...?type=x?since=N`, a 400 at the
// first reconnect, and the client stopped for good.
for (const [name, make] of [
  ["filters in the URL", (u) => ({ url: `${stack.streamUrl}?user_id=${u}&type=alert.triggered` })],
  ["repeated parameters in the URL", (u) => ({ url: `${stack.streamUrl}?user_id=${u}&user_id=${user(3)}&type=alert.triggered,alert.expired` })],
  ["the filter option", (u) => ({ url: stack.streamUrl, filter: { userId: u, type: "alert.triggered" } })],
  ["URL and filter option", (u) => ({ url: `${stack.streamUrl}?type=alert.triggered`, filter: { userId: [u] } })],
  ["setFilter after start", (u) => ({ url: `${stack.streamUrl}?type=alert.triggered`, later: { userId: u } })],
]) {
  test(`a reconnect after an event keeps working with ${name}`, async () => {
    const { later, ...opts } = make(user(2));
    const client = new LaminatorClient({ ...opts, token: TOKEN, backoff: { initialMs: 20, maxMs: 100 } });
    const got = [];
    const closes = [];
    let fatal;
    client.on("event", (ev) => got.push(ev));
    client.on("close", (c) => closes.push(c));
    client.on("fatal", (e) => (fatal = e));
    let opened = 0;
    client.on("open", () => ++opened);
    await client.start();
    await waitFor(() => opened === 1, 10_000, "open");
    if (later) {
      client.setFilter(later);
      await sleep(100);
    }
    const [a] = stack.fire(2);
    stack.fire(1); // filtered out
    await waitFor(() => got.some((e) => e.alert_id === a), 10_000, "the first alert");
    // Drop the connection under the client: it must resume with since = the alert's seq.
    client["ws"].terminate();
    await waitFor(() => opened === 2 || fatal, 10_000, "the reconnect");
    assert.equal(fatal, undefined, fatal?.message);
    const [b] = stack.fire(2);
    await waitFor(() => got.some((e) => e.alert_id === b) || fatal, 10_000, "the alert after the reconnect");
    await client.close();
    assert.equal(fatal, undefined, fatal?.message);
    assert.deepEqual(got.map((e) => e.alert_id), [a, b]);
    assert.ok(got.every((e) => e.user_id === user(2)));
    assert.ok(closes.some((c) => c.code === 1006 && c.retry));
  });
}

test("close(): no handler after it resolves, and the cursor never passes the event in hand", async () => {
  const saved = [];
  const client = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    filter: { userId: user(2), type: "alert.triggered" },
    cursor: { load: () => undefined, save: (s) => void saved.push(s) },
  });
  let opened = false;
  client.on("open", () => (opened = true));
  const handled = [];
  let closeResolved = false;
  let afterClose = 0;
  const loop = (async () => {
    for await (const ev of client) {
      if (closeResolved) ++afterClose;
      handled.push(ev.seq);
      if (handled.length === 2) {
        // The bot shuts down while handling its second event (a SIGTERM handler would do this).
        await client.close();
        closeResolved = true;
        assert.ok(saved.every((s) => s < ev.seq), `saved ${saved} while ${ev.seq} was in hand`);
        await sleep(100); // the handler finishes after close() resolved
      }
    }
  })();
  await waitFor(() => opened, 10_000, "open");
  stack.fire(2, 4); // four alerts, usually in one message: two stay buffered
  await loop;
  assert.equal(handled.length, 2, `handled ${handled}`);
  assert.equal(afterClose, 0);
  assert.equal(saved.at(-1), handled[0], "the cursor holds the last completed event");
});

test("a refused upgrade carries the server's text (400)", async () => {
  const client = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, filter: { type: "alert.fired" } });
  await assert.rejects(
    (async () => {
      for await (const _ of client);
    })(),
    (e) =>
      e instanceof StreamError &&
      e.code === 400 &&
      e.kind === "refused" &&
      /unknown event type 'alert.fired'/.test(e.message) &&
      /unknown event type/.test(e.reason),
  );
});

test("a wrong port: each failed attempt is reported with its count, delay and cause; maxAttempts stops it", async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const client = new LaminatorClient({
    url: `ws://127.0.0.1:${port}/v1/stream`,
    token: TOKEN,
    backoff: { initialMs: 10, maxMs: 40, maxAttempts: 4 },
  });
  const attempts = [];
  client.on("reconnecting", (r) => attempts.push(r));
  await assert.rejects(
    (async () => {
      for await (const _ of client);
    })(),
    (e) => e instanceof StreamError && e.kind === "retries" && /ECONNREFUSED/.test(e.message),
  );
  assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3]);
  assert.ok(attempts.every((a) => a.delayMs >= 0 && a.delayMs <= 40 && /ECONNREFUSED/.test(a.error.message)));
});

test("what the caller passes never crashes the process: a failing cursor.load(), bad URLs, bad seqs", async () => {
  const failing = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    cursor: {
      load: async () => {
        throw new Error("connection refused by the cursor database");
      },
      save: () => undefined,
    },
  });
  await assert.rejects(
    (async () => {
      for await (const _ of failing);
    })(),
    (e) => e instanceof StreamError && e.kind === "cursor" && /cursor database/.test(e.message),
  );
  for (const url of ["not a url", "ftp://127.0.0.1/v1/stream", ""]) {
    const c = new LaminatorClient({ url, token: TOKEN });
    await assert.rejects(c.start(), (e) => e instanceof StreamError && e.kind === "config");
    await assert.rejects(c.wait(), (e) => e instanceof StreamError);
  }
  for (const since of [-1, 1.5, Number.NaN, "12abc", 2n ** 64n]) {
    const c = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, since });
    await assert.rejects(c.start(), (e) => e instanceof StreamError && e.kind === "config");
  }
  const junk = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    cursor: { load: () => ({ seq: 1 }), save: () => undefined },
  });
  await assert.rejects(junk.start(), (e) => e instanceof StreamError && e.kind === "cursor");
  // An emitter listener that throws stops the client (fatal), the process lives on.
  const thrower = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, since: 0 });
  thrower.on("event", () => {
    throw new Error("bug in the bot");
  });
  await thrower.start();
  await assert.rejects(thrower.wait(), (e) => e instanceof StreamError && e.kind === "handler");
});

test("cursors as Prisma and node-postgres read bigint seqs: bigint and decimal strings", async () => {
  assert.equal(toSeq(5n, "s"), 5);
  assert.equal(toSeq("5", "s"), 5);
  assert.ok(toSeq(2n ** 60n, "s") instanceof Error);
  const h = head();
  assert.ok(h > 0);
  for (const load of [() => BigInt(h), () => String(h), async () => BigInt(h)]) {
    const got = [];
    const client = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, cursor: { load, save: () => undefined } });
    client.on("event", (ev) => got.push(ev.seq));
    await client.start();
    const [a] = stack.fire(3);
    await waitFor(() => got.length > 0, 10_000, "an event after the cursor");
    await client.close();
    assert.ok(got.every((s) => s > h), `${got} after ${h}`);
    assert.equal(typeof client.seq, "number", "seqs come out as numbers: JSON.stringify works");
    assert.ok(JSON.stringify({ cursor: client.completedSeq, seq: client.seq }));
    void a;
  }
});

test("batched commits to PostgreSQL: far fewer writes, the last completed seq on close()", async () => {
  stack.fire(1, 30);
  await sleep(500);
  const total = head();
  const store = new PgCursorStore(pool, "batched-test");
  let saves = 0;
  const counting = { load: () => store.load(), save: (s) => (++saves, store.save(s)) };
  const client = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    since: 0,
    cursor: counting,
    commit: { events: 100, intervalMs: 10_000 },
  });
  let n = 0;
  let last = 0;
  for await (const ev of client) {
    ++n;
    last = ev.seq;
    if (ev.seq >= total) break;
  }
  // `break` leaves the event in hand unhandled: the cursor is the one before it.
  assert.ok(saves <= Math.ceil(n / 100) + 1, `${saves} saves for ${n} events`);
  const stored = Number(await store.load());
  assert.ok(stored < last && stored >= last - 1 - 0, `stored ${stored}, last ${last}`);
  // Never backwards: an older save is ignored.
  await store.save(1);
  assert.equal(Number(await store.load()), stored);
  // A new client resumes after it: the event in hand at the break comes again, nothing before it.
  const again = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, cursor: store });
  const got = [];
  again.on("event", (ev) => got.push(ev.seq));
  await again.start();
  await waitFor(() => got.length > 0, 10_000, "the redelivered event");
  await again.close();
  assert.equal(got[0], last);
});

test("exactly-once effects: applyOnce in the bot's transaction, through a crash and a full redelivery", async () => {
  await pool.query("CREATE TABLE IF NOT EXISTS bot_effects (seq bigint PRIMARY KEY, alert_id uuid)");
  const store = new PgCursorStore(pool, "exactly-once-test");
  stack.fire(2, 20);
  await sleep(500);
  const total = head();
  // A first run that "crashes" after 25 events: no close(), no commit of its own.
  const first = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, since: 0 });
  let done = 0;
  for await (const ev of first) {
    const r = await store.applyOnce(ev, (tx) =>
      tx.query("INSERT INTO bot_effects (seq, alert_id) VALUES ($1, $2)", [ev.seq, ev.alert_id ?? null]),
    );
    assert.equal(r.applied, true);
    if (++done === 25) break;
  }
  // An effect that throws rolls back with its cursor move.
  const before = await store.load();
  await assert.rejects(
    store.applyOnce({ seq: 10 ** 9 }, async (tx) => {
      await tx.query("INSERT INTO bot_effects (seq) VALUES (999999999)");
      throw new Error("effect failed");
    }),
    /effect failed/,
  );
  assert.equal(await store.load(), before);
  // The second run is handed everything again (since 0: the worst redelivery).
  const second = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, since: 0 });
  let skipped = 0;
  for await (const ev of second) {
    const r = await store.applyOnce(ev, (tx) =>
      tx.query("INSERT INTO bot_effects (seq, alert_id) VALUES ($1, $2)", [ev.seq, ev.alert_id ?? null]),
    );
    if (!r.applied) ++skipped;
    if (ev.seq >= total) break;
  }
  assert.equal(skipped, 25);
  const r = await pool.query(
    "SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM bot_effects WHERE seq <= $1",
    [total],
  );
  assert.equal(r.rows[0].n, r.rows[0].d);
  assert.equal(r.rows[0].n, Number(stack.sql(`SELECT count(*) FROM alert_events WHERE seq <= ${total}`).trim()));
  // SeqGuard: the same decision from the bot's own record.
  const guard = new SeqGuard((await pool.query("SELECT max(seq)::text AS m FROM bot_effects")).rows[0].m);
  assert.equal(guard.fresh({ seq: total }), false);
  assert.equal(guard.fresh({ seq: total + 1 }), true);
});
