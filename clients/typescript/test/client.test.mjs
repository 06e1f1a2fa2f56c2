// The client against the real daemon (PostgreSQL, mock exchange, `laminator run` on loopback):
// typed events, filters, a daemon restart mid-stream, cursors, refusals. Bounded in time.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { readFileSync } from "node:fs";
import path from "node:path";

import { classifyClose, EVENT_TYPES, is, LaminatorClient, StreamError } from "../dist/index.js";
import { alertId, clientRoot, Stack, TOKEN, user, waitFor } from "./harness.mjs";

let stack;
before(async () => {
  stack = await new Stack().start();
});
after(async () => {
  await stack?.stop();
});

test("EVENT_TYPES is the engine's list of event types (engine/event.h), in its order", () => {
  const header = readFileSync(path.join(clientRoot, "../../engine/event.h"), "utf8");
  const engine = [...header.matchAll(/^\s*X\(\w+, "([a-z_.]+)"\)/gm)].map((m) => m[1]);
  assert.ok(engine.length >= 19);
  assert.deepEqual([...EVENT_TYPES], engine);
});

test("close codes: resume where the server says, retry what mends, stop on what does not", () => {
  assert.deepEqual(classifyClose(1001, "server shutting down", 41), { retry: true, resumeAfter: 41 });
  assert.deepEqual(classifyClose(1008, "slow consumer: resume with since=57", 41), {
    retry: true,
    resumeAfter: 57,
  });
  assert.deepEqual(classifyClose(1013, "try again later", undefined), {
    retry: true,
    resumeAfter: undefined,
  });
  assert.equal(classifyClose(1011, "journal unavailable", 3).retry, true);
  const ahead = classifyClose(1008, "since ahead: since=90 is beyond this stream's head 12", 90);
  assert.equal(ahead.retry, false);
  assert.ok(ahead.fatal instanceof StreamError);
  assert.equal(classifyClose(1008, "bad filter", 1).retry, false);
  assert.equal(classifyClose(1003, "binary frame", 1).retry, false);
});

test("typed events through a daemon restart mid-stream: every alert once, seqs increasing", async () => {
  const saved = [];
  const client = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    filter: { userId: user(1), type: ["alert.triggered", "alert.rejected"] },
    since: 0,
    cursor: { load: () => undefined, save: (seq) => void saved.push(seq) },
    backoff: { initialMs: 50, maxMs: 500 },
  });
  const closes = [];
  client.on("close", (c) => closes.push(c));
  // Alerts 0..29, one every 40 ms; every fifth belongs to user 2 (filtered out). At #12 the daemon
  // goes away (1001 to subscribers) and comes back; #12 (user 1) and #13 (user 2) are written while
  // it is down, loaded at its start, and fire then.
  const total = 30;
  const ownerOf = (n) => (n === 13 || (n % 5 === 4 && n !== 12) ? 2 : 1);
  const mine = new Set();
  for (let n = 0; n < total; ++n) if (ownerOf(n) === 1) mine.add(alertId(1000 + n));
  const producer = (async () => {
    for (let n = 0; n < total; ++n) {
      if (n === 12) {
        assert.equal(await stack.stopDaemon(), 0, stack.log());
        stack.addFiringAlert(1000 + n, ownerOf(n));
        ++n;
        stack.addFiringAlert(1000 + n, ownerOf(n));
        await stack.startDaemon();
        continue;
      }
      stack.addFiringAlert(1000 + n, ownerOf(n));
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  const fired = new Map();
  const seqs = [];
  const deadline = setTimeout(() => void client.close(), 45_000);
  for await (const ev of client) {
    assert.ok(is(ev, "alert.triggered"), JSON.stringify(ev));
    assert.equal(ev.user_id, user(1));
    assert.match(ev.price, /^\d+(\.\d+)?$/, "decimals stay strings");
    assert.ok(!fired.has(ev.alert_id), `alert ${ev.alert_id} delivered twice`);
    fired.set(ev.alert_id, ev.seq);
    seqs.push(ev.seq);
    if (fired.size === mine.size) break;
  }
  clearTimeout(deadline);
  await producer;
  assert.deepEqual(new Set(fired.keys()), mine);
  for (let i = 1; i < seqs.length; ++i) assert.ok(seqs[i] > seqs[i - 1], "seq order");
  assert.ok(
    closes.some((c) => c.code === 1001 && c.retry),
    `saw ${JSON.stringify(closes)}`,
  );
  // The cursor moved as the loop consumed events; the event in hand at the `break` is not counted
  // as handled (a restarted bot gets it again): the last saved seq is the one before it.
  assert.ok(saved.length >= 1);
  for (let i = 1; i < saved.length; ++i) assert.ok(saved[i] > saved[i - 1], "saves only move forward");
  assert.equal(saved.at(-1), seqs.at(-2));
  assert.equal(client.seq, seqs.at(-1));
});

test("a cursor resumes a new client after the last processed seq; emitter API; live filter", async () => {
  // Everything up to now, through the emitter.
  let head = 0;
  const first = new LaminatorClient({ url: stack.streamUrl, token: TOKEN, since: 0 });
  first.on("event", (ev) => {
    head = Math.max(head, ev.seq);
  });
  await first.start();
  await waitFor(() => head > 0, 10_000, "replayed events");
  await new Promise((r) => setTimeout(r, 300));
  await first.close();

  let stored = head;
  const second = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    filter: { userId: user(3) },
    cursor: { load: () => stored, save: (s) => void (stored = s) },
  });
  const got = [];
  second.on("event", (ev) => got.push(ev));
  await second.start();
  await new Promise((r) => setTimeout(r, 300));
  stack.addFiringAlert(3000, 2); // not user 3's: filtered
  stack.addFiringAlert(3001, 3);
  await waitFor(() => got.length >= 1, 10_000, "user 3's alert");
  // Switch the live filter to user 2: the next of user 2's alerts arrives, user 3's do not.
  second.setFilter({ userId: user(2) });
  await new Promise((r) => setTimeout(r, 200));
  stack.addFiringAlert(3002, 3);
  stack.addFiringAlert(3003, 2);
  await waitFor(() => got.some((e) => e.alert_id === alertId(3003)), 10_000, "user 2's alert");
  await second.close();
  assert.deepEqual(
    got.map((e) => e.alert_id),
    [alertId(3001), alertId(3003)],
  );
  assert.ok(got.every((e) => e.seq > head), "nothing at or before the cursor again");
  assert.equal(stored, got.at(-1).seq, "the cursor followed the emitter");
});

test("read-committed (committed: true): an alert arrives once its trigger is stored", async () => {
  const got = [];
  const client = new LaminatorClient({
    url: stack.streamUrl,
    token: TOKEN,
    filter: { userId: user(3), type: "alert.triggered" },
    committed: true,
  });
  client.on("event", (ev) => got.push({ ev, status: stack.sql(`SELECT status FROM alerts WHERE id = '${ev.alert_id}'`) }));
  await client.start();
  await new Promise((r) => setTimeout(r, 300));
  stack.addFiringAlert(4001, 3);
  await waitFor(() => got.some((g) => g.ev.alert_id === alertId(4001)), 10_000, "the alert, committed");
  await client.close();
  const mine = got.find((g) => g.ev.alert_id === alertId(4001));
  assert.match(String(mine.status), /triggered/, "stored as triggered when it arrived");
});

test("a wrong token is refused for good (401), not retried", async () => {
  const client = new LaminatorClient({ url: stack.streamUrl, token: "not-the-token" });
  let reconnects = 0;
  client.on("reconnecting", () => ++reconnects);
  await assert.rejects(
    (async () => {
      for await (const _ of client) {
        // nothing arrives
      }
    })(),
    (e) => e instanceof StreamError && e.code === 401,
  );
  assert.equal(reconnects, 0);
});
