// The alert-stream client: one WebSocket at a time to `GET /v1/stream`, resumed with `since` after
// every close that allows it, never yielding a seq twice (docs/events.md, "The alert stream").
//
// The cursor promise: the cursor store is only ever given the seq of an event whose handling has
// completed (the iterator asked for the next event, or the listeners returned), so a bot that dies at
// any moment gets again what it had not finished, never loses it (at-least-once). Commits are batched
// (`commit`), run one at a time in the background and coalesce, so a slow store never caps the stream.

import { EventEmitter } from "node:events";
import WebSocket from "ws";

import { type EventType, type LaminatorEvent, parseEvent, type Uuid } from "./events.js";
import { type SeqLike, toSeq } from "./seq.js";

/** Which events a subscription receives (each list is OR-ed, the three are AND-ed). */
export interface Filter {
  userId?: Uuid | readonly Uuid[];
  marketId?: Uuid | readonly Uuid[];
  type?: EventType | readonly EventType[];
}

/**
 * Where the caller keeps the last seq it has processed, so a restarted bot resumes after it.
 * `load` may return what the store holds as it is: a number, a `bigint` (Prisma reads the journal's
 * bigint seqs so) or a decimal string (node-postgres). `PgCursorStore` and `FileCursorStore` ship.
 */
export interface CursorStore {
  load(): SeqLike | null | undefined | Promise<SeqLike | null | undefined>;
  save(seq: number): void | Promise<void>;
}

/**
 * When the cursor is saved, the way Kafka consumers commit offsets: after `events` completed events
 * or `intervalMs` after the oldest uncommitted one, whichever comes first, and always on `close()`.
 * Defaults: every event (`events: 1`). Saves never block the stream: one runs at a time and the next
 * one carries the newest completed seq (a store that takes 2 ms still follows 20k events/s, a save
 * covering ~40 events). Larger batches mean fewer writes and more redelivered events after a crash.
 */
export interface CommitOptions {
  events?: number;
  intervalMs?: number;
}

export interface BackoffOptions {
  /** First retry delay ceiling, ms (default 250). */
  initialMs?: number;
  /** Cap, ms (default 30,000). */
  maxMs?: number;
  /**
   * Consecutive failed attempts (no event received in between) after which the client stops with
   * `StreamError` (kind `retries`). Default: retry forever, reporting each failure (`reconnecting`).
   */
  maxAttempts?: number;
}

export interface ClientOptions {
  /**
   * ws://host:port/v1/stream (or wss://). Filters may be in the URL (`?user_id=U&type=a,b`, as
   * `laminator tail` takes them), in `filter`, or both (`filter` wins for the keys it sets).
   */
  url: string;
  token: string;
  filter?: Filter;
  /**
   * Resume after this seq (0: everything the journal still holds). Without it (and without a
   * cursor value) the stream starts live.
   */
  since?: SeqLike;
  /**
   * Read-committed mode: receive an event only once it is journaled (stored with the rows it
   * changed), so nothing you show a user can still be undone by a lost race (`order.fill_voided`
   * never follows an `order.filled` you acted on before it was stored). Costs about one writer
   * flush of latency (docs/performance.md). Default false: events as soon as they are published.
   */
  committed?: boolean;
  cursor?: CursorStore;
  commit?: CommitOptions;
  backoff?: BackoffOptions;
  /** Events buffered for a slow async iterator before the socket is paused (default 10,000). */
  highWaterMark?: number;
  /** Extra `ws` options (a CA for wss://, an agent). */
  wsOptions?: WebSocket.ClientOptions;
}

/** Why the client stopped for good. */
export type StreamErrorKind =
  /** The server refused the upgrade (`code` is the HTTP status, `reason` the server's text). */
  | "refused"
  /** The server closed with a code that retrying cannot mend (`code` is the close code). */
  | "closed"
  /** An option was wrong: the URL, `since`, the filter (`code` 0). */
  | "config"
  /** `cursor.load()` failed or returned something that is not a seq (`code` 0). */
  | "cursor"
  /** `backoff.maxAttempts` consecutive attempts failed (`code` 0; `cause` is the last failure). */
  | "retries"
  /** An `event` listener threw (`code` 0; `cause` is what it threw). */
  | "handler";

/** The client stopped and will not retry: a wrong token, a filter outside the token's scope, ... */
export class StreamError extends Error {
  constructor(
    message: string,
    /** HTTP status of a refused upgrade, the WebSocket close code, or 0 (see `kind`). */
    readonly code: number,
    /** The server's explanation (the refusal's body or the close reason), else the cause's text. */
    readonly reason: string,
    readonly kind: StreamErrorKind = "closed",
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StreamError";
  }
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** The seq the next connection resumes after (undefined: live). */
  resumeAfter: number | undefined;
  /** Whether the client reconnects. */
  retry: boolean;
}

export interface ReconnectInfo {
  /** Consecutive failed attempts so far (1 after the first failure). */
  attempt: number;
  /** When the next attempt starts. */
  delayMs: number;
  /** What failed: refused connection, an HTTP 503 with the server's text, a close code... */
  error: Error;
}

export interface ClientEvents {
  event: [LaminatorEvent];
  open: [];
  close: [CloseInfo];
  reconnecting: [ReconnectInfo];
  /** The client stopped for good: `error` says why (also thrown by the iterator and `wait()`). */
  fatal: [StreamError];
  /** The cursor store's `save` failed (the stream goes on; the next commit retries). */
  cursorError: [unknown];
  /** The cursor store holds this seq (after a `save` resolved). */
  committed: [number];
}

const RESUME_RE = /resume with since=(\d+)/;

/** What a close means: retry or not, and from where (docs/events.md, "Close codes"). */
export function classifyClose(
  code: number,
  reason: string,
  lastSeq: number | undefined,
): { retry: boolean; resumeAfter: number | undefined; fatal?: StreamError } {
  const m = RESUME_RE.exec(reason);
  // The server names the exact position: everything up to N was written or filtered out.
  const named = m ? Number(m[1]) : undefined;
  const after =
    named !== undefined && (lastSeq === undefined || named > lastSeq) ? named : lastSeq;
  switch (code) {
    case 1000: // normal (a proxy), 1001 going away (server shutting down), 1006 dropped
    case 1001:
    case 1005:
    case 1006:
    case 1011: // journal unavailable: retry with backoff
    case 1012:
    case 1013: // try again later: the writer is behind
      return { retry: true, resumeAfter: after };
    case 1008:
      if (m) return { retry: true, resumeAfter: after }; // slow consumer, server fell behind
      return {
        retry: false,
        resumeAfter: after,
        fatal: new StreamError(
          reason.startsWith("since ahead")
            ? `the stream's head is behind the cursor (${reason}): a restored or different database`
            : `policy violation: ${reason}`,
          code,
          reason,
        ),
      };
    default: // 1003 (we sent binary), 1002, 1007, 1009...: a bug, not a transient state
      return {
        retry: false,
        resumeAfter: after,
        fatal: new StreamError(`stream closed with ${code}: ${reason}`, code, reason),
      };
  }
}

const FILTER_KEYS = ["user_id", "market_id", "type"] as const;
const CONTROL_KEYS = ["since", "committed"] as const;

/** A filter list as the server takes it: comma-separated, repeated parameters joined. */
function listOf(v: string | readonly string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const all = typeof v === "string" ? [v] : [...v];
  return all.flatMap((s) => s.split(",")).filter((s) => s.length > 0);
}

/**
 * The stream's URL with the filter, `since` and `committed` of one connection, built with URL and
 * URLSearchParams: whatever the caller's URL held (a path, other parameters, a `?` already), the
 * result is one well-formed query with each key once.
 */
export function streamUrl(
  base: string | URL,
  filter: Filter | undefined,
  since: number | undefined,
  committed: boolean,
): string {
  const u = new URL(base);
  for (const k of [...FILTER_KEYS, ...CONTROL_KEYS]) u.searchParams.delete(k);
  const put = (k: string, v: string | readonly string[] | undefined) => {
    const l = listOf(v);
    if (l && l.length > 0) u.searchParams.set(k, l.join(","));
  };
  put("user_id", filter?.userId);
  put("market_id", filter?.marketId);
  put("type", filter?.type);
  if (since !== undefined) u.searchParams.set("since", String(since));
  if (committed) u.searchParams.set("committed", "1");
  return u.href;
}

/** The filter written in a URL's query (`?user_id=A,B&user_id=C&type=...`). */
function filterOfUrl(u: URL): Filter {
  const f: Filter = {};
  const get = (k: string) => {
    const all = u.searchParams.getAll(k);
    return all.length > 0 ? listOf(all) : undefined;
  };
  const users = get("user_id");
  const markets = get("market_id");
  const types = get("type") as EventType[] | undefined;
  if (users) f.userId = users;
  if (markets) f.marketId = markets;
  if (types) f.type = types;
  return f;
}

function filterMessage(filter: Filter): string {
  const out: Record<string, string | readonly string[]> = {};
  if (filter.userId !== undefined) out.user_id = filter.userId;
  if (filter.marketId !== undefined) out.market_id = filter.marketId;
  if (filter.type !== undefined) out.type = filter.type;
  return JSON.stringify(out);
}

function errorOf(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

interface Waiter {
  resolve: (r: IteratorResult<LaminatorEvent>) => void;
  reject: (e: StreamError) => void;
}

/**
 * A subscription to the alert stream. Use it as an async iterator (`for await (const ev of
 * client)`) or as an event emitter (`client.on("event", ...)`), or both: every event goes to the
 * listeners and to the iterator, once, in seq order. Nothing the caller passes throws out of the
 * client or crashes the process: a wrong option, a failing cursor store or a refusal ends the client
 * with a `StreamError` (thrown by the iterator, rejected by `start()` / `wait()`, emitted as `fatal`).
 */
export class LaminatorClient extends EventEmitter<ClientEvents> {
  private ws: WebSocket | undefined;
  private base: URL | undefined;
  /** The newest seq received: the resume point and the duplicate guard. */
  private lastSeq: number | undefined;
  private filter: Filter | undefined;
  private committedMode = false;
  private attempt = 0;
  private closed = false;
  private startPromise: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: LaminatorEvent[] = [];
  private waiter: Waiter | undefined;
  private iteratorStarted = false;
  private failure: StreamError | undefined;
  private paused = false;
  private readonly highWater: number;
  private configError: StreamError | undefined;

  // The cursor: `inHand` is the event the iterator's loop is handling, `completed` the newest seq
  // whose handling finished, `committedSeq` what the store holds, `target` what the next save writes.
  private inHand: number | undefined;
  private completed: number | undefined;
  private committedSeq: number | undefined;
  private uncommitted = 0;
  private commitTimer: NodeJS.Timeout | undefined;
  private saveLoop: Promise<void> | undefined;
  private target: number | undefined;
  private saveError: unknown;
  private readonly commitEvents: number;
  private readonly commitMs: number;
  private readonly endWaiters: { resolve: () => void; reject: (e: StreamError) => void }[] = [];

  constructor(private readonly opts: ClientOptions) {
    super();
    this.highWater = Math.max(1, opts.highWaterMark ?? 10_000);
    this.commitEvents = Math.max(1, Math.floor(opts.commit?.events ?? 1));
    this.commitMs = Math.max(0, opts.commit?.intervalMs ?? 0);
    // Validation errors are kept, not thrown: they end the client at start() like any other.
    try {
      const base = new URL(opts.url);
      if (!["ws:", "wss:", "http:", "https:"].includes(base.protocol))
        throw new Error(`the URL's scheme must be ws: or wss:, got ${base.protocol}`);
      this.base = base;
      this.filter = { ...filterOfUrl(base), ...(opts.filter ?? {}) };
      if (Object.keys(this.filter).length === 0) this.filter = undefined;
      const urlCommitted = base.searchParams.get("committed");
      this.committedMode = opts.committed ?? (urlCommitted === "1" || urlCommitted === "true");
      const since = opts.since ?? base.searchParams.get("since") ?? undefined;
      if (since !== undefined) {
        const s = toSeq(since, "since");
        if (s instanceof Error) throw s;
        this.lastSeq = s;
      }
    } catch (e) {
      const err = errorOf(e);
      this.configError = new StreamError(
        `invalid client options: ${err.message}`,
        0,
        err.message,
        "config",
        { cause: e },
      );
    }
  }

  /** The last seq received (the next connection resumes after it). */
  get seq(): number | undefined {
    return this.lastSeq;
  }

  /** The newest seq whose handling completed (what the next commit saves). */
  get completedSeq(): number | undefined {
    return this.completed;
  }

  /** The seq the cursor store holds, as far as this client saved it. */
  get committedCursor(): number | undefined {
    return this.committedSeq;
  }

  /**
   * Loads the cursor and connects (once; calling it again returns the same promise). Rejects with
   * `StreamError` if the options are wrong or the cursor cannot be loaded.
   */
  start(): Promise<void> {
    this.startPromise ??= this.begin();
    return this.startPromise;
  }

  /**
   * Resolves when the client was closed with `close()`, rejects with the `StreamError` that stopped
   * it. For the emitter style: `client.on("event", ...); await client.start(); await client.wait()`.
   */
  wait(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => this.endWaiters.push({ resolve, reject }));
  }

  /** Replaces the filter on the open connection and on every later one. */
  setFilter(filter: Filter): void {
    this.filter = filter;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(filterMessage(filter));
  }

  /**
   * Saves the newest completed seq now (whatever `commit` says) and resolves once the store holds
   * it. Rejects with what `save` threw.
   */
  async commitNow(): Promise<void> {
    const c = this.completed;
    if (c === undefined || !this.opts.cursor) return;
    this.requestSave(c);
    await this.saveLoop;
    if (this.committedSeq === undefined || this.committedSeq < c) throw this.saveError;
  }

  /**
   * Closes for good. Once it resolves no handler is called again, buffered events are dropped, and
   * the cursor store holds the newest seq whose handling completed (never the event a loop is still
   * handling: that one is delivered again to the next client). Safe to call from inside a handler.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    if (this.closed) return this.saveLoop ?? Promise.resolve();
    this.closing = this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        try {
          if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
          else ws.close(1000);
        } catch {
          resolve();
        }
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    }
    await this.finalCommit();
    // A loop waiting for the next event ends only now, so code after it (closing the pool the
    // cursor store uses) runs after the last commit.
    this.finishWaiter();
    this.settleEnd();
  }

  [Symbol.asyncIterator](): AsyncIterator<LaminatorEvent> {
    this.iteratorStarted = true;
    // A start() failure reaches the loop through `failure`; never an unhandled rejection.
    this.start().catch(() => undefined);
    return {
      next: async () => {
        // The caller asks for the next event: it is done with the one in hand.
        if (this.inHand !== undefined) {
          const done = this.inHand;
          this.inHand = undefined;
          if (!this.closed) this.complete(done);
        }
        if (this.closing) await this.closing; // the loop ends after the last commit
        if (this.failure) throw this.failure;
        if (this.closed) return { value: undefined, done: true };
        const ev = this.queue.shift();
        if (ev !== undefined) {
          this.inHand = ev.seq;
          if (this.paused && this.queue.length < this.highWater / 2) {
            this.paused = false;
            this.ws?.resume();
          }
          return { value: ev, done: false };
        }
        return new Promise<IteratorResult<LaminatorEvent>>((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      // `break`, `return` or a throw in the loop: the event in hand is not counted as handled.
      return: async () => {
        this.inHand = undefined;
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  // ---- internals ----

  private async begin(): Promise<void> {
    if (this.configError) {
      this.fail(this.configError);
      throw this.configError;
    }
    if (this.opts.cursor) {
      let loaded: SeqLike | null | undefined;
      try {
        loaded = await this.opts.cursor.load();
      } catch (e) {
        const err = new StreamError(
          `cursor.load() failed: ${errorOf(e).message}`,
          0,
          errorOf(e).message,
          "cursor",
          { cause: e },
        );
        this.fail(err);
        throw err;
      }
      if (loaded !== undefined && loaded !== null) {
        const s = toSeq(loaded, "the seq cursor.load() returned");
        if (s instanceof Error) {
          const err = new StreamError(s.message, 0, s.message, "cursor");
          this.fail(err);
          throw err;
        }
        if (this.lastSeq === undefined || s > this.lastSeq) this.lastSeq = s;
        this.committedSeq = s;
        this.completed = s;
      }
    }
    if (this.closed) return;
    this.connect();
  }

  private connect(): void {
    if (this.closed || !this.base) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(streamUrl(this.base, this.filter, this.lastSeq, this.committedMode), {
        ...this.opts.wsOptions,
        headers: { ...this.opts.wsOptions?.headers, Authorization: `Bearer ${this.opts.token}` },
        perMessageDeflate: false,
      });
    } catch (e) {
      const m = errorOf(e).message;
      this.fail(new StreamError(`cannot connect: ${m}`, 0, m, "config", { cause: e }));
      return;
    }
    this.ws = ws;
    let refused: StreamError | undefined;
    let failure: Error | undefined;
    ws.on("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        if (size < 4096) chunks.push(c);
        size += c.length;
      });
      const settle = () => {
        const body = Buffer.concat(chunks).toString("utf8").slice(0, 4096).trim();
        const text = body || res.statusMessage || "";
        const message = `upgrade refused with HTTP ${status}${text ? `: ${text}` : ""}`;
        // A wrong token, a scope violation or a bad query will not mend by retrying; a 503
        // (shutting down, connection limit) will.
        if ([400, 401, 403, 404, 413, 426, 431].includes(status))
          refused = new StreamError(message, status, text, "refused");
        else failure = new Error(message);
        ws.terminate();
      };
      res.once("end", settle);
      res.once("error", settle);
      // A server that never ends its body does not hold the client.
      setTimeout(() => {
        if (!refused && !failure) settle();
      }, 2000).unref();
    });
    ws.on("open", () => {
      if (this.closed) return;
      this.emit("open");
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary || this.closed) return;
      const text = data.toString();
      for (const line of text.split("\n")) {
        if (!line || this.closed) continue;
        let ev: LaminatorEvent;
        try {
          ev = parseEvent(line);
        } catch {
          continue; // never from the server; skipped rather than fatal
        }
        this.deliver(ev);
      }
    });
    ws.on("error", (e) => {
      failure ??= e; // 'close' follows and decides
    });
    ws.on("close", (code, reasonBuf) => {
      if (this.ws === ws) this.ws = undefined;
      if (this.closed) return;
      const reason = reasonBuf.toString();
      const c = refused
        ? { retry: false, resumeAfter: this.lastSeq, fatal: refused }
        : classifyClose(code, reason, this.lastSeq);
      if (c.resumeAfter !== undefined && (this.lastSeq === undefined || c.resumeAfter > this.lastSeq))
        this.lastSeq = c.resumeAfter;
      this.emit("close", { code, reason, resumeAfter: this.lastSeq, retry: c.retry });
      if (!c.retry) {
        this.fail(c.fatal ?? new StreamError(`stream closed with ${code}`, code, reason));
        return;
      }
      this.scheduleReconnect(
        failure ?? new Error(`stream closed with ${code}${reason ? `: ${reason}` : ""}`),
      );
    });
  }

  private deliver(ev: LaminatorEvent): void {
    // Never the same seq twice: a resumed connection starts after lastSeq, but a server restarted
    // from an older journal, or a redelivery, must not reach the bot again.
    if (this.lastSeq !== undefined && ev.seq <= this.lastSeq) return;
    this.lastSeq = ev.seq;
    this.attempt = 0; // data flows: the next drop retries from the smallest delay again
    if (this.listenerCount("event") > 0) {
      try {
        this.emit("event", ev);
      } catch (e) {
        // A listener that throws stops the client before this event counts as handled.
        const m = errorOf(e).message;
        this.fail(
          new StreamError(`an event listener threw at seq ${ev.seq}: ${m}`, 0, m, "handler", {
            cause: e,
          }),
        );
        return;
      }
      if (this.closed) return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.inHand = ev.seq;
      w.resolve({ value: ev, done: false });
    } else if (this.iteratorStarted) {
      this.queue.push(ev);
      if (!this.paused && this.queue.length >= this.highWater) {
        // Back-pressure to the server: it paces catch-up by our socket, and cuts a subscriber
        // that stalls too long with "resume with since=N", which we follow.
        this.paused = true;
        this.ws?.pause();
      }
    } else {
      this.complete(ev.seq);
    }
  }

  /** The handling of `seq` finished: commit by the policy. */
  private complete(seq: number): void {
    if (this.completed !== undefined && seq <= this.completed) return;
    this.completed = seq;
    if (!this.opts.cursor) return;
    this.uncommitted += 1;
    if (this.uncommitted >= this.commitEvents) {
      this.requestSave(seq);
    } else if (this.commitMs > 0 && !this.commitTimer) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        if (this.completed !== undefined && !this.closed) this.requestSave(this.completed);
      }, this.commitMs);
      this.commitTimer.unref?.();
    }
  }

  /** Saves run one at a time; each takes the newest requested seq, so they coalesce under load. */
  private requestSave(seq: number): void {
    const cursor = this.opts.cursor;
    if (!cursor) return;
    this.uncommitted = 0;
    if (this.commitTimer) {
      clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    }
    if (this.target !== undefined && seq <= this.target) return;
    this.target = seq;
    if (this.saveLoop) return;
    this.saveLoop = (async () => {
      while (
        this.target !== undefined &&
        (this.committedSeq === undefined || this.target > this.committedSeq)
      ) {
        const s = this.target;
        try {
          await cursor.save(s);
        } catch (e) {
          this.saveError = e;
          if (this.listenerCount("cursorError") > 0) this.emit("cursorError", e);
          this.target = this.committedSeq; // the next completion or close() tries again
          break;
        }
        this.committedSeq = s;
        this.emit("committed", s);
      }
      this.saveLoop = undefined;
    })();
  }

  private async finalCommit(): Promise<void> {
    if (this.commitTimer) {
      clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
    }
    await this.saveLoop;
    const c = this.completed;
    if (c !== undefined && (this.committedSeq === undefined || c > this.committedSeq)) {
      this.requestSave(c);
      await this.saveLoop;
    }
  }

  private scheduleReconnect(error: Error): void {
    const initial = this.opts.backoff?.initialMs ?? 250;
    const max = this.opts.backoff?.maxMs ?? 30_000;
    const limit = this.opts.backoff?.maxAttempts ?? Infinity;
    this.attempt += 1;
    if (this.attempt >= limit) {
      this.fail(
        new StreamError(
          `gave up after ${this.attempt} failed attempts: ${error.message}`,
          0,
          error.message,
          "retries",
          { cause: error },
        ),
      );
      return;
    }
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.attempt - 1, 30));
    // Full jitter: many bots restarted together do not reconnect in step.
    const delayMs = Math.floor(Math.random() * ceiling);
    this.emit("reconnecting", { attempt: this.attempt, delayMs, error });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delayMs);
  }

  /** Stops for good with `err`: the iterator throws it, `wait()` rejects, `fatal` is emitted. */
  private fail(err: StreamError): void {
    if (this.failure) return;
    this.failure = err;
    const wasClosed = this.closed;
    this.closed = true;
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    ws?.terminate();
    if (this.listenerCount("fatal") > 0) this.emit("fatal", err);
    if (this.closing) return; // close() in progress ends the loop and settles wait()
    // The loop and wait() end after the last commit of what was handled.
    this.closing = (async () => {
      if (!wasClosed) await this.finalCommit();
      this.finishWaiter();
      this.settleEnd();
    })();
  }

  /** Ends a waiting iterator: with the failure, or done after close(). */
  private finishWaiter(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.failure) w.reject(this.failure);
    else w.resolve({ value: undefined, done: true });
  }

  private settleEnd(): void {
    const all = this.endWaiters.splice(0);
    for (const w of all) {
      if (this.failure) w.reject(this.failure);
      else w.resolve();
    }
  }
}
