// The README's examples are the files in examples/, verbatim, and each runs against the real daemon:
// the bot loop (batched cursor in PostgreSQL, SIGTERM), exactly-once effects through a SIGKILL, the
// errors it reports, and the Notifier telling users through a local Bot API. Bounded in time.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";

import { alertId, clientRoot, Stack, TOKEN, user, waitFor } from "./harness.mjs";
import { FakeTelegram } from "./telegram.mjs";

let stack;
before(async () => {
  execFileSync(process.execPath, [path.join(clientRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.examples.json"], {
    cwd: clientRoot,
    stdio: "inherit",
  });
  stack = await new Stack().start();
});
after(async () => {
  await stack?.stop();
});

function run(example, env = {}) {
  const child = spawn(process.execPath, [path.join(clientRoot, "examples/dist", `${example}.js`)], {
    env: {
      ...process.env,
      LAMINATOR_URL: stack.streamUrl,
      LAMINATOR_TOKEN: TOKEN,
      DATABASE_URL: stack.url,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "", child };
  child.stdout.on("data", (d) => (out.stdout += d));
  child.stderr.on("data", (d) => (out.stderr += d));
  out.exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return out;
}


test("README.md shows each example file verbatim", () => {
  const readme = readFileSync(path.join(clientRoot, "README.md"), "utf8");
  const files = readdirSync(path.join(clientRoot, "examples")).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const text = readFileSync(path.join(clientRoot, "examples", f), "utf8").trimEnd();
    assert.ok(readme.includes("```ts\n" + text + "\n```"), `README.md lacks examples/${f} as it is`);
  }
});

test("examples/bot.ts: handles alerts, commits its cursor in batches, exits cleanly on SIGTERM", async () => {
  const bot = run("bot");
  await waitFor(() => stack.health().then((s) => s === 200), 5000, "daemon");
  await new Promise((r) => setTimeout(r, 500)); // connected (live start: no cursor yet)
  const ids = stack.fire(1, 5);
  await waitFor(() => ids.every((id) => bot.stdout.includes(`alert ${id}`)), 15_000, "the bot's lines");
  bot.child.kill("SIGTERM");
  const { code } = await bot.exited;
  assert.equal(code, 0, bot.stderr);
  const last = Math.max(...[...bot.stdout.matchAll(/\(seq (\d+)\)/g)].map((m) => Number(m[1])));
  const stored = stack.sql("SELECT seq FROM stream_cursors WHERE consumer = 'example-bot'").trim();
  assert.equal(Number(stored), last, "close() committed the last handled event");
});

test("examples/exactly-once.ts: every alert's effect once, through a SIGKILL mid-stream", async () => {
  let bot = run("exactly-once");
  await new Promise((r) => setTimeout(r, 800));
  const first = stack.fire(2, 10);
  await waitFor(
    () => Number(stack.sql("SELECT count(*) FROM bot_inbox").trim()) >= 3,
    15_000,
    "some effects",
  );
  bot.child.kill("SIGKILL"); // mid-stream: some effects done, the client's own commits behind
  await bot.exited;
  const second = stack.fire(2, 10); // while the bot is down
  bot = run("exactly-once");
  const all = [...first, ...second];
  const inbox = () =>
    stack
      .sql("SELECT count(*) FROM bot_inbox i JOIN alert_events e USING (seq) WHERE e.type = 'alert.triggered'")
      .trim();
  const want = () =>
    stack
      .sql(
        `SELECT count(*) FROM alert_events WHERE type = 'alert.triggered'
           AND seq >= (SELECT min(seq) FROM bot_inbox)`,
      )
      .trim();
  await waitFor(() => Number(inbox()) >= all.length && inbox() === want(), 20_000, "every effect");
  bot.child.kill("SIGTERM");
  assert.equal((await bot.exited).code, 0, bot.stderr);
  assert.equal(
    stack.sql("SELECT count(*) - count(DISTINCT seq) FROM bot_inbox").trim(),
    "0",
    "no effect twice",
  );
  assert.equal(inbox(), want(), "no event missed");
});

test("examples/errors.ts: a refusal with the server's text (exit 2); a dead port gives up after 5 reports (exit 3)", async () => {
  const refused = run("errors", { LAMINATOR_TOKEN: "wrong" });
  assert.equal((await refused.exited).code, 2);
  assert.match(refused.stderr, /stopped \(refused, 401\)/);
  const port = await new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const dead = run("errors", { LAMINATOR_URL: `ws://127.0.0.1:${port}/v1/stream` });
  assert.equal((await dead.exited).code, 3);
  assert.equal([...dead.stderr.matchAll(/attempt \d failed \(.*ECONNREFUSED/g)].length, 4);
  assert.match(dead.stderr, /stopped \(retries, 0\): gave up after 5 failed attempts/);
});

test("examples/notifier.ts: users told on Telegram, one digest each, within the limits", async () => {
  const tg = await new FakeTelegram().start();
  try {
    const bot = run("notifier", { TELEGRAM_TOKEN: tg.token, TELEGRAM_API: tg.url });
    await new Promise((r) => setTimeout(r, 800));
    stack.fire(1, 3);
    stack.fire(3, 2);
    await waitFor(() => tg.messages.length >= 2, 15_000, "two digests");
    await new Promise((r) => setTimeout(r, 300));
    bot.child.kill("SIGTERM");
    assert.equal((await bot.exited).code, 0, bot.stderr);
    const byChat = new Map(tg.messages.map((m) => [m.chatId, m.text]));
    // users.telegram_id is 700000 + n (the harness): one message each, every alert in it.
    assert.equal(byChat.get("700001").split("\n").length, 3);
    assert.equal(byChat.get("700003").split("\n").length, 2);
    assert.equal(tg.messages.length, 2);
    assert.equal(tg.tooMany, 0);
    void user;
  } finally {
    await tg.stop();
  }
});
