// The real thing on loopback for the client's tests: a throwaway PostgreSQL (scripts/local-pg), the
// mock exchange generating prices, and `laminator run`, which the tests stop and start mid-stream.
// Binaries come from the Release build (LAMINATOR_BUILD_DIR, default build/release).

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, openSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const build = process.env.LAMINATOR_BUILD_DIR ?? path.join(root, "build/release");
export const laminatorBin = path.join(build, "app/laminator");
export const mockexBin = path.join(build, "tools/mockex/mockex");

export const MARKET = "0000000a-0000-4000-8000-0000000000a1";
export const user = (n) => `0000000c-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
export const alertId = (n) => `0000000d-0000-4000-8000-${n.toString(16).padStart(12, "0")}`;
export const TOKEN = "ts-client-test-token";
export const clientRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor(pred, limitMs = 15_000, what = "condition") {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export class Stack {
  /** PostgreSQL only, migrated, with users 1..3 (no daemon, no mock exchange). */
  async startDb() {
    this.dir = mkdtempSync(path.join(tmpdir(), "laminator-ts-"));
    execFileSync("chmod", ["755", this.dir]);
    this.pgDir = path.join(this.dir, "pg");
    this.url = execFileSync(path.join(root, "scripts/local-pg"), ["start", this.pgDir], {
      encoding: "utf8",
    }).trim();
    execFileSync(laminatorBin, ["migrate", "--database-url", this.url], { stdio: "ignore" });
    this.sql(`INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name, market_type,
                price_source) VALUES ('${MARKET}', 'BTCUSDT', 'BTC', 'USDT', 'binance', 'perpetual', 'mark');
              INSERT INTO users (id, telegram_id) SELECT ('0000000c-0000-4000-8000-' ||
                lpad(to_hex(g), 12, '0'))::uuid, 700000 + g FROM generate_series(1, 3) g;`);
    return this;
  }

  /** PostgreSQL, the mock exchange generating prices, and `laminator run`. */
  async start() {
    await this.startDb();
    this.mockPort = await freePort();
    this.port = await freePort();
    this.mock = spawn(mockexBin, ["--port", String(this.mockPort), "--rate", "200"], {
      stdio: ["ignore", "ignore", openSync(path.join(this.dir, "mockex.log"), "a")],
    });
    this.writeConfig();
    await this.startDaemon();
    return this;
  }

  get streamUrl() {
    return `ws://127.0.0.1:${this.port}/v1/stream`;
  }

  writeConfig() {
    const urls = [
      ["binance", "market", "/market/stream"],
      ["binance", "public", "/public/stream"],
      ["bybit", "linear", "/v5/public/linear"],
      ["okx", "public", "/ws/v5/public"],
      ["hyperliquid", "ws", "/ws"],
      ["coinbase", "advanced", "/"],
      ["pyth", "hermes", "/hermes/ws"],
    ];
    let feeds = "[feeds]\nhousekeeping_ms = 20\nbackoff_initial_ms = 50\nbackoff_max_ms = 200\n";
    for (const venue of new Set(urls.map((u) => u[0]))) {
      feeds += `[feeds.${venue}.urls]\n`;
      for (const [v, route, p] of urls)
        if (v === venue) feeds += `${route} = "ws://127.0.0.1:${this.mockPort}${p}"\n`;
    }
    writeFileSync(
      path.join(this.dir, "laminator.toml"),
      `log_level = "info"
[database]
url_env = "LAMINATOR_DATABASE_URL"
migrate = "check"
[engine]
crash_ring = "${this.dir}/events.ring"
[writer]
flush_interval_ms = 20
[listener]
batch_window_ms = 1
[stream]
address = "127.0.0.1"
port = ${this.port}
[[stream.tokens]]
name = "bot"
token_env = "TS_TEST_TOKEN"
${feeds}`,
    );
  }

  async startDaemon() {
    this.daemon = spawn(
      laminatorBin,
      ["run", "--config", path.join(this.dir, "laminator.toml"), "--status-every", "0"],
      {
        env: { ...process.env, LAMINATOR_DATABASE_URL: this.url, TS_TEST_TOKEN: TOKEN },
        stdio: ["ignore", "ignore", openSync(path.join(this.dir, "daemon.log"), "a")],
      },
    );
    this.exited = new Promise((r) => this.daemon.once("exit", (code) => r(code)));
    await waitFor(async () => (await this.health()) === 200, 20_000, "the daemon to be healthy");
  }

  async stopDaemon() {
    this.daemon.kill("SIGTERM");
    return this.exited;
  }

  async health() {
    try {
      const r = await fetch(`http://127.0.0.1:${this.port}/healthz`);
      return r.status;
    } catch {
      return 0;
    }
  }

  sql(text) {
    return execFileSync("psql", ["-qAtX", "-v", "ON_ERROR_STOP=1", this.url, "-c", text], {
      encoding: "utf8",
    });
  }

  /** `count` alerts of user `userN` that fire at the next tick, numbered from `this.nextAlert`. */
  fire(userN, count = 1) {
    this.nextAlert ??= 20_000;
    const ids = [];
    for (let i = 0; i < count; ++i) {
      const n = this.nextAlert++;
      this.addFiringAlert(n, userN);
      ids.push(alertId(n));
    }
    return ids;
  }

  /** An alert that fires at the next tick (BTC is near 80,000 on the mock). */
  addFiringAlert(n, userN) {
    this.sql(`INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price)
              VALUES ('${alertId(n)}', '${user(userN)}', '${MARKET}', 'price_above', 'greater_than', 1)`);
  }

  log() {
    try {
      return readFileSync(path.join(this.dir, "daemon.log"), "utf8");
    } catch {
      return "";
    }
  }

  async stop() {
    if (this.daemon && this.daemon.exitCode === null) await this.stopDaemon();
    this.mock?.kill("SIGTERM");
    try {
      execFileSync(path.join(root, "scripts/local-pg"), ["stop", this.pgDir], { stdio: "ignore" });
    } catch {}
    rmSync(this.dir, { recursive: true, force: true });
  }
}
