// The package as a bot developer installs it: `npm pack` output, and this folder as a fresh checkout
// has it (no dist/, no node_modules/), each installed into an empty project that must import it and
// type-check a use of it under `--strict`. Uses the npm registry (for `ws` and the type packages),
// preferring npm's cache.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { clientRoot } from "./harness.mjs";

const tsc = path.join(clientRoot, "node_modules/typescript/bin/tsc");
let dir;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "laminator-install-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// npm's own settings for this test run (npm test sets npm_config_*) must not leak into the installs.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_(config|package|lifecycle)_/i.test(k)),
);
const npm = (cwd, ...args) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], {
    cwd,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });

const USE = `import {
  LaminatorClient, PgCursorStore, FileCursorStore, SeqGuard, Notifier, BotApiSender, StreamError, is,
  type LaminatorEvent, type CursorStore, type Sender,
} from "@laminator/client";

const store: CursorStore = { load: () => 5n, save: (seq: number) => void seq };
const client = new LaminatorClient({
  url: "ws://127.0.0.1:1/v1/stream?type=alert.triggered",
  token: "t",
  cursor: store,
  commit: { events: 100, intervalMs: 1000 },
  backoff: { maxAttempts: 1 },
});
const price = (ev: LaminatorEvent): string | undefined => (is(ev, "alert.triggered") ? ev.price : undefined);
const sender: Sender = { send: async (_chat: string | number, _text: string) => {} };
void [client, price, sender, PgCursorStore, FileCursorStore, SeqGuard, Notifier, BotApiSender];
try {
  await client.start();
  await client.wait();
} catch (e) {
  console.log(e instanceof StreamError ? "StreamError " + e.kind : "other");
}
`;

function project(name) {
  const p = path.join(dir, name);
  mkdirSync(p);
  writeFileSync(path.join(p, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  writeFileSync(
    path.join(p, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        outDir: "out",
        skipLibCheck: false,
      },
      files: ["index.ts"],
    }),
  );
  writeFileSync(path.join(p, "index.ts"), USE);
  return p;
}

function checkProject(p) {
  // Type-checks with the package's published declarations, strict, libraries included.
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: p, encoding: "utf8" });
  // ...and runs: the import resolves, a closed port ends in a StreamError, not a crash.
  const out = execFileSync(process.execPath, ["out/index.js"], { cwd: p, encoding: "utf8" });
  assert.match(out, /StreamError retries/);
}

test("npm pack output installs into an empty project that imports and type-checks it under --strict", () => {
  const packed = npm(clientRoot, "pack", "--pack-destination", dir, "--json");
  const [info] = JSON.parse(packed.slice(packed.indexOf("[")));
  const files = info.files.map((f) => f.path);
  assert.ok(files.includes("dist/index.js") && files.includes("dist/index.d.ts"), files.join(" "));
  assert.ok(!files.some((f) => f.startsWith("src/") || f.startsWith("test/") || f.startsWith("examples/")));
  const p = project("from-tarball");
  npm(p, "install", path.join(dir, info.filename));
  checkProject(p);
});

test("a fresh checkout's folder (no dist/, no node_modules/) installs and builds itself", () => {
  const copy = path.join(dir, "checkout");
  cpSync(clientRoot, copy, {
    recursive: true,
    filter: (src) => !/\/(node_modules|dist)(\/|$)/.test(src.slice(clientRoot.length)),
  });
  assert.ok(!readdirSync(copy).includes("dist"));
  const p = project("from-folder");
  npm(p, "install", copy);
  checkProject(p);
});
