// Keeps schema.prisma true: migrates a throwaway PostgreSQL with the laminator binary, then compares
// every table, view, column (type, nullability), enum and foreign key with the schema, and fails on
// any drift, naming it. Then runs the typed example (example/bot.ts) through the generated client.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const build = process.env.LAMINATOR_BUILD_DIR ?? path.join(root, "build/release");

let dir;
let url;
const sql = (text) =>
  execFileSync("psql", ["-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", text], {
    encoding: "utf8",
  })
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("\t"));

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "laminator-prisma-"));
  execFileSync("chmod", ["755", dir]);
  url = execFileSync(path.join(root, "scripts/local-pg"), ["start", path.join(dir, "pg")], {
    encoding: "utf8",
  }).trim();
  execFileSync(path.join(build, "app/laminator"), ["migrate", "--database-url", url], {
    stdio: "ignore",
  });
});
after(() => {
  try {
    execFileSync(path.join(root, "scripts/local-pg"), ["stop", path.join(dir, "pg")], {
      stdio: "ignore",
    });
  } catch {}
  rmSync(dir, { recursive: true, force: true });
});

// ---- schema.prisma, read as the drift check needs it ----

function parseSchema(text) {
  const enums = new Map(); // prisma name -> { db, values }
  const models = []; // { name, kind, table, fields: [{ name, column, type, list, optional, native, relation }] }
  const blocks = text.matchAll(/^(model|view|enum)\s+(\w+)\s*\{([\s\S]*?)^\}/gm);
  for (const [, kind, name, body] of blocks) {
    const lines = body.split("\n").map((l) => l.replace(/\/\/.*$/, "").trim()).filter(Boolean);
    const mapped = lines.find((l) => l.startsWith("@@map("));
    const db = mapped ? /@@map\("([^"]+)"\)/.exec(mapped)[1] : name;
    if (kind === "enum") {
      enums.set(name, { db, values: lines.filter((l) => !l.startsWith("@@")).map((l) => l.split(/\s/)[0]) });
      continue;
    }
    const fields = [];
    for (const l of lines) {
      if (l.startsWith("@@")) continue;
      const m = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(l);
      if (!m) throw new Error(`cannot read ${name}: ${l}`);
      const [, fname, type, list, optional, attrs] = m;
      const col = /@map\("([^"]+)"\)/.exec(attrs);
      const native = /@db\.(\w+(?:\([^)]*\))?)/.exec(attrs);
      fields.push({
        name: fname,
        column: col ? col[1] : fname,
        type,
        list: Boolean(list),
        optional: Boolean(optional),
        native: native ? native[1] : "",
        relation: attrs.includes("@relation") ? attrs : "",
      });
    }
    models.push({ name, kind, table: db, fields });
  }
  return { enums, models };
}

const schemaText = readFileSync(path.join(here, "../schema.prisma"), "utf8");
const schema = parseSchema(schemaText);

/** The PostgreSQL type (format_type) a scalar field of `schema` stands for. */
function dbType(schema, f) {
  const e = schema.enums.get(f.type);
  let t;
  if (e) t = e.db;
  else {
    const n = f.native.replace(/\s+/g, "");
    switch (f.type) {
      case "String":
        t = n === "Uuid" ? "uuid" : n.startsWith("VarChar") ? `character varying${n.slice(7)}` : n === "Inet" ? "inet" : "text";
        break;
      case "Decimal":
        t = n.startsWith("Decimal(") ? `numeric${n.slice(7).replace(",", ",")}` : "numeric";
        break;
      case "Int":
        t = n === "SmallInt" ? "smallint" : "integer";
        break;
      case "BigInt":
        t = "bigint";
        break;
      case "Boolean":
        t = "boolean";
        break;
      case "DateTime":
        t = n.startsWith("Timestamptz") ? "timestamp with time zone" : n === "Date" ? "date" : "timestamp without time zone";
        break;
      case "Json":
        t = n === "Json" ? "json" : "jsonb";
        break;
      case "Bytes":
        t = "bytea";
        break;
      case "Float":
        t = "double precision";
        break;
      default:
        t = `? ${f.type}`;
    }
  }
  return f.list ? `${t}[]` : t;
}

/** Every difference between `schema` and the migrated database, as sentences. */
function driftOf(schema) {
  const modelNames = new Set(schema.models.map((m) => m.name));
  const drift = [];
  // Enums
  const dbEnums = new Map();
  for (const [t, v] of sql(
    "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid " +
      "WHERE t.typnamespace = 'public'::regnamespace ORDER BY t.typname, e.enumsortorder",
  )) {
    if (!dbEnums.has(t)) dbEnums.set(t, []);
    dbEnums.get(t).push(v);
  }
  const schemaEnums = new Map([...schema.enums.values()].map((e) => [e.db, e.values]));
  for (const [t, values] of dbEnums) {
    if (!schemaEnums.has(t)) drift.push(`enum ${t} is missing`);
    else if (schemaEnums.get(t).join(",") !== values.join(","))
      drift.push(`enum ${t}: database [${values}] vs schema [${schemaEnums.get(t)}]`);
  }
  for (const t of schemaEnums.keys()) if (!dbEnums.has(t)) drift.push(`enum ${t} is not in the database`);

  // Tables and views (partitions are rows of their parent; schema_migrations is the migrator's)
  const rels = new Map(
    sql(
      "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace " +
        "AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition AND c.relname <> 'schema_migrations'",
    ),
  );
  const byTable = new Map(schema.models.map((m) => [m.table, m]));
  for (const [rel, kind] of rels) {
    const m = byTable.get(rel);
    if (!m) {
      drift.push(`${kind === "v" ? "view" : "table"} ${rel} has no model`);
      continue;
    }
    if ((kind === "v") !== (m.kind === "view")) drift.push(`${rel}: a ${kind === "v" ? "view" : "table"} modelled as ${m.kind}`);
    const cols = new Map(
      sql(
        `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a ` +
          `WHERE a.attrelid = 'public.${rel}'::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
      ).map(([n, t, nn]) => [n, { type: t, notNull: nn === "t" }]),
    );
    const scalars = m.fields.filter((f) => !modelNames.has(f.type));
    for (const f of scalars) {
      const c = cols.get(f.column);
      if (!c) {
        drift.push(`${rel}.${f.column} (${m.name}.${f.name}) is not in the database`);
        continue;
      }
      const want = dbType(schema, f);
      if (want !== c.type) drift.push(`${rel}.${f.column}: database ${c.type}, schema ${want}`);
      const nullable = !c.notNull;
      if (!f.list && nullable !== f.optional)
        drift.push(`${rel}.${f.column}: ${nullable ? "nullable" : "NOT NULL"} in the database, ${f.optional ? "optional" : "required"} in the schema`);
    }
    for (const col of cols.keys())
      if (!scalars.some((f) => f.column === col)) drift.push(`${rel}.${col} has no field in ${m.name}`);
  }
  for (const m of schema.models) if (!rels.has(m.table)) drift.push(`${m.kind} ${m.name} (${m.table}) is not in the database`);

  // Foreign keys: each is a @relation with the same columns and target
  for (const [rel, def] of sql(
    "SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid) FROM pg_constraint c " +
      "JOIN pg_class r ON r.oid = c.conrelid WHERE c.contype = 'f' AND NOT r.relispartition " +
      "AND c.connamespace = 'public'::regnamespace",
  )) {
    // One column or several (0012's (wallet_id, user_id) -> wallets (id, user_id)).
    const fk = /FOREIGN KEY \(([\w, ]+)\) REFERENCES (\w+)\(([\w, ]+)\)/.exec(def);
    const m = byTable.get(rel);
    if (!fk || !m) {
      if (!fk) drift.push(`${rel}: foreign key not understood: ${def}`);
      continue;
    }
    const columns = fk[1].split(", ");
    const fields = columns.map((c) => m.fields.find((f) => f.column === c)?.name);
    const target = schema.models.find((x) => x.table === fk[2]);
    const refs = fk[3].split(", ").map((c) => target?.fields.find((f) => f.column === c)?.name);
    const rf = m.fields.find(
      (f) =>
        f.relation &&
        f.type === target?.name &&
        f.relation.includes(`fields: [${fields.join(", ")}]`) &&
        f.relation.includes(`references: [${refs.join(", ")}]`),
    );
    if (!rf) drift.push(`${rel}: foreign key ${columns.join(", ")} -> ${fk[2]} has no @relation`);
  }
  return drift;
}

test("every table, view, column, type, nullability, enum and foreign key of the migrated database is in schema.prisma, and nothing else", () => {
  const drift = driftOf(schema);
  assert.deepEqual(drift, [], `schema.prisma drifted from the migrations:\n  ${drift.join("\n  ")}`);
});

test("the drift check fails on drift: a column, an enum value, a nullability and a relation taken away", () => {
  // The check above is only worth something if it fails: the same comparison on a doctored schema.
  const doctored = parseSchema(
    schemaText
      .replace(/^\s+telegramUsername\s.*$/m, "")
      .replace(/^\s+liquidated\s*$/m, "")
      .replace(/(\n\s+walletAddress\s+String)(\s)/, "$1?$2")
      .replace(/^\s+market\s+Market\s+@relation\(fields: \[marketId\].*$/m, ""),
  );
  const drift = driftOf(doctored).join("\n");
  assert.match(drift, /\.telegram_username has no field in /);
  assert.match(drift, /enum position_status: database \[open,closed,liquidated\]/);
  assert.match(drift, /wallets\.wallet_address: NOT NULL in the database, optional in the schema/);
  assert.match(drift, /foreign key market_id -> markets has no @relation/);
});

test("typed example: create an alert and a stop-loss, read a user's positions with fresh uPnL", async () => {
  const user = "0000000c-0000-4000-8000-000000000001";
  const wallet = "0000000e-0000-4000-8000-000000000001";
  const market = "0000000a-0000-4000-8000-000000000001";
  sql(`INSERT INTO users (id, telegram_id) VALUES ('${user}', 42);
       INSERT INTO wallets (id, user_id, wallet_address) VALUES ('${wallet}', '${user}', 'W' || repeat('1', 40));
       INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name, market_type)
         VALUES ('${market}', 'BTCUSDT', 'BTC', 'USDT', 'binance', 'perpetual');
       INSERT INTO positions (user_id, wallet_id, market_id, side, size, entry_price, leverage, margin)
         VALUES ('${user}', '${wallet}', '${market}', 'long', 1, 78000, 10, 7800);
       INSERT INTO market_marks (market_id, price, marked_at) VALUES ('${market}', 80000, now());`);
  const { botExample } = await import("../dist/example/bot.js");
  const r = await botExample(url, user, market, wallet);
  assert.equal(r.alertStatus, "active");
  assert.equal(r.stopStatus, "pending");
  assert.equal(r.positions.length, 1);
  assert.equal(r.positions[0].side, "long");
  assert.equal(r.positions[0].currentPrice, "80000");
  assert.equal(r.positions[0].unrealizedPnl, "2000"); // (80,000 - 78,000) x 1
  assert.match(r.refused, /filled_size is written by the engine only/);
  assert.equal(sql("SELECT count(*) FROM orders WHERE order_type = 'market'")[0][0], "0");
  const [[type, trigger]] = sql(`SELECT order_type, trigger_price FROM orders WHERE id = '${r.stopId}'`);
  assert.equal(type, "stop");
  assert.equal(Number(trigger), 75000);
});
