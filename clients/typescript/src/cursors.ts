// Cursor stores that ship with the client, and the tools for exactly-once effects.
//
// Delivery is at-least-once: the cursor is saved after events were handled, in batches, so a bot that
// dies between handling an event and the next save gets that event again. Three ways to live with it:
// effects that are idempotent anyway, `SeqGuard` (drop what the bot's own records say it has done),
// or `PgCursorStore.applyOnce` (the effect and the cursor in one transaction of the bot's: exactly once).

import { randomBytes } from "node:crypto";
import { open, readFile, rename } from "node:fs/promises";
import path from "node:path";

import type { CursorStore } from "./client.js";
import { type SeqLike, toSeq } from "./seq.js";

/** What `PgCursorStore` needs of node-postgres: a `Pool`, a `Client`, or a pool's checked-out client. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A pool (`pg.Pool`): `applyOnce` checks a connection out for its transaction. */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgQueryable & { release(err?: Error | boolean): void }>;
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/**
 * The cursor in PostgreSQL: one row per consumer name in `stream_cursors` (migration 0015), moved
 * only forward. Give it a `pg.Pool` (or `Client`) and a name per bot process that consumes the
 * stream (two processes with one name would share, and fight over, one cursor).
 */
export class PgCursorStore implements CursorStore {
  private readonly table: string;

  constructor(
    private readonly db: PgQueryable,
    readonly consumer: string,
    options?: { table?: string },
  ) {
    const table = options?.table ?? "stream_cursors";
    if (!IDENT.test(table)) throw new Error(`PgCursorStore: not a table name: ${table}`);
    if (consumer.length === 0 || consumer.length > 200)
      throw new Error("PgCursorStore: the consumer name must be 1 to 200 characters");
    this.table = table;
  }

  /** The saved seq as PostgreSQL's text of the bigint, or undefined for a new consumer. */
  async load(): Promise<string | undefined> {
    const r = await this.db.query(`SELECT seq::text AS seq FROM ${this.table} WHERE consumer = $1`, [
      this.consumer,
    ]);
    const row = r.rows[0] as { seq: string } | undefined;
    return row?.seq;
  }

  /** Upserts the row; a seq at or below the stored one changes nothing (saves may race). */
  async save(seq: number): Promise<void> {
    await this.saveIn(this.db, seq);
  }

  /**
   * The same upsert on the caller's connection, inside the caller's transaction: the cursor moves
   * if and only if the transaction commits.
   */
  async saveIn(tx: PgQueryable, seq: SeqLike): Promise<void> {
    const s = toSeq(seq, "seq");
    if (s instanceof Error) throw s;
    await tx.query(
      `INSERT INTO ${this.table} (consumer, seq) VALUES ($1, $2)
       ON CONFLICT (consumer) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()
       WHERE ${this.table}.seq < EXCLUDED.seq`,
      [this.consumer, s],
    );
  }

  /**
   * Exactly-once effects: runs `effect` in a transaction on a connection of the pool, with the
   * cursor row locked, and moves the cursor to `ev.seq` in the same transaction. An event at or
   * below the stored cursor (a redelivery) is skipped: `{ applied: false }`. If `effect` throws, the
   * transaction is rolled back (neither the effect nor the cursor moves) and the error is rethrown.
   * Writes of `effect` must go through `tx` to share its fate.
   */
  async applyOnce<T>(
    ev: { seq: SeqLike },
    effect: (tx: PgQueryable) => Promise<T>,
  ): Promise<{ applied: true; value: T } | { applied: false }> {
    const pool = this.db as Partial<PgPoolLike>;
    if (typeof pool.connect !== "function")
      throw new Error("PgCursorStore.applyOnce needs a pg.Pool (a connection per transaction)");
    const s = toSeq(ev.seq, "seq");
    if (s instanceof Error) throw s;
    const tx = await pool.connect();
    let broken: Error | undefined;
    try {
      await tx.query("BEGIN");
      await tx.query(
        `INSERT INTO ${this.table} (consumer, seq) VALUES ($1, 0) ON CONFLICT (consumer) DO NOTHING`,
        [this.consumer],
      );
      const r = await tx.query(
        `SELECT seq::text AS seq FROM ${this.table} WHERE consumer = $1 FOR UPDATE`,
        [this.consumer],
      );
      const stored = Number((r.rows[0] as { seq: string }).seq);
      if (s <= stored) {
        await tx.query("ROLLBACK");
        return { applied: false };
      }
      const value = await effect(tx);
      await this.saveIn(tx, s);
      await tx.query("COMMIT");
      return { applied: true, value };
    } catch (e) {
      try {
        await tx.query("ROLLBACK");
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw e;
    } finally {
      tx.release(broken ?? false);
    }
  }

  /**
   * Moves the cursor to `seq`, backwards too: after the stream's database was restored from a
   * backup (the client stops with "since ahead"), to start over from what the restored journal holds.
   */
  async reset(seq: SeqLike = 0): Promise<void> {
    const s = toSeq(seq, "seq");
    if (s instanceof Error) throw s;
    await this.db.query(
      `INSERT INTO ${this.table} (consumer, seq) VALUES ($1, $2)
       ON CONFLICT (consumer) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()`,
      [this.consumer, s],
    );
  }
}

/**
 * The cursor in a file, replaced atomically (written to a temporary file, flushed, renamed), so a
 * crash leaves the old seq or the new one, never a torn file. For a bot without a database.
 */
export class FileCursorStore implements CursorStore {
  constructor(readonly file: string) {}

  async load(): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    const t = text.trim();
    if (!/^\d+$/.test(t)) throw new Error(`${this.file} does not hold a seq`);
    return t;
  }

  async save(seq: number): Promise<void> {
    const tmp = path.join(
      path.dirname(this.file),
      `.${path.basename(this.file)}.${randomBytes(6).toString("hex")}.tmp`,
    );
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(`${seq}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }
}

/**
 * Drops redeliveries by seq: remembers the newest seq the bot's own records say was done, and
 * answers whether an event is past it. Seed it from where the bot records its effects (the highest
 * seq it stored with them); `SeqGuard` itself keeps nothing across restarts.
 */
export class SeqGuard {
  private last: number | undefined;

  constructor(doneUpTo?: SeqLike | null) {
    if (doneUpTo !== undefined && doneUpTo !== null) {
      const s = toSeq(doneUpTo, "doneUpTo");
      if (s instanceof Error) throw s;
      this.last = s;
    }
  }

  /** The newest seq marked done. */
  get doneUpTo(): number | undefined {
    return this.last;
  }

  /** True if `ev` was not done yet (the bot should act on it). */
  fresh(ev: { seq: number }): boolean {
    return this.last === undefined || ev.seq > this.last;
  }

  /** Records that `ev`'s effects are done. */
  done(ev: { seq: number }): void {
    if (this.last === undefined || ev.seq > this.last) this.last = ev.seq;
  }
}
