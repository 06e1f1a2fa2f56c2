// The alert-stream client: one WebSocket at a time to `GET /v1/stream`, resumed with `since` after
// every close that allows it, never yielding a seq twice (docs/events.md, "The alert stream").

import { EventEmitter } from "node:events";
import WebSocket from "ws";

import { type EventType, type LaminatorEvent, parseEvent, type Uuid } from "./events.js";

/** Which events a subscription receives (each list is OR-ed, the three are AND-ed). */
export interface Filter {
  userId?: Uuid | readonly Uuid[];
  marketId?: Uuid | readonly Uuid[];
  type?: EventType | readonly EventType[];
}

/** Where the caller keeps the last seq it has processed, so a restarted bot resumes after it. */
export interface CursorStore {
  load(): number | undefined | Promise<number | undefined>;
  save(seq: number): void | Promise<void>;
}

export interface BackoffOptions {
  /** First retry delay ceiling, ms (default 250). */
  initialMs?: number;
  /** Cap, ms (default 30,000). */
  maxMs?: number;
}

export interface ClientOptions {
  /** ws://host:port/v1/stream (or wss://). Filters go in `filter`, not in the URL. */
  url: string;
  token: string;
  filter?: Filter;
  /**
   * Resume after this seq (0: everything the journal still holds). Without it (and without a
   * cursor value) the stream starts live.
   */
  since?: number;
  /**
   * Read-committed mode: receive an event only once it is journaled (stored with the rows it
   * changed), so nothing you show a user can still be undone by a lost race (`order.fill_voided`
   * never follows an `order.filled` you acted on before it was stored). Costs about one writer
   * flush of latency (docs/performance.md). Default false: events as soon as they are published.
   */
  committed?: boolean;
  cursor?: CursorStore;
  backoff?: BackoffOptions;
  /** Events buffered for a slow async iterator before the socket is paused (default 10,000). */
  highWaterMark?: number;
  /** Extra `ws` options (a CA for wss://, an agent). */
  wsOptions?: WebSocket.ClientOptions;
}

/** A close the client will not retry: a wrong token, a filter outside the token's scope, ... */
export class StreamError extends Error {
  constructor(
    message: string,
    /** HTTP status of a refused upgrade, or the WebSocket close code. */
    readonly code: number,
    readonly reason: string,
  ) {
    super(message);
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

export interface ClientEvents {
  event: [LaminatorEvent];
  open: [];
  close: [CloseInfo];
  reconnecting: [{ attempt: number; delayMs: number }];
  /** The client stopped for good: `error` says why. */
  fatal: [StreamError];
  /** The cursor store's `save` failed (the stream goes on; the next save retries). */
  cursorError: [unknown];
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

function queryOf(filter: Filter | undefined, since: number | undefined, committed = false): string {
  const q = new URLSearchParams();
  const list = (v: string | readonly string[] | undefined) =>
    v === undefined ? undefined : typeof v === "string" ? v : v.join(",");
  const u = list(filter?.userId);
  const mk = list(filter?.marketId);
  const t = list(filter?.type);
  if (u) q.set("user_id", u);
  if (mk) q.set("market_id", mk);
  if (t) q.set("type", t);
  if (since !== undefined) q.set("since", String(since));
  if (committed) q.set("committed", "1");
  const s = q.toString();
  return s ? `?${s}` : "";
}

function filterMessage(filter: Filter): string {
  const out: Record<string, string | readonly string[]> = {};
  if (filter.userId !== undefined) out.user_id = filter.userId;
  if (filter.marketId !== undefined) out.market_id = filter.marketId;
  if (filter.type !== undefined) out.type = filter.type;
  return JSON.stringify(out);
}

/**
 * A subscription to the alert stream. Use it as an async iterator (`for await (const ev of
 * client)`) or as an event emitter (`client.on("event", ...)`), or both: every event goes to the
 * listeners and to the iterator, once, in seq order.
 */
export class LaminatorClient extends EventEmitter<ClientEvents> {
  private ws: WebSocket | undefined;
  private lastSeq: number | undefined;
  private filter: Filter | undefined;
  private attempt = 0;
  private closed = false;
  private started = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly queue: LaminatorEvent[] = [];
  private waiter:
    | { resolve: (r: IteratorResult<LaminatorEvent>) => void; reject: (e: StreamError) => void }
    | undefined;
  private iteratorStarted = false;
  private failure: StreamError | undefined;
  private paused = false;
  private readonly highWater: number;
  private pendingSave: number | undefined;

  constructor(private readonly opts: ClientOptions) {
    super();
    this.filter = opts.filter;
    this.lastSeq = opts.since;
    this.highWater = opts.highWaterMark ?? 10_000;
  }

  /** The last seq delivered (to listeners, or taken from the iterator). */
  get seq(): number | undefined {
    return this.lastSeq;
  }

  /** Connects (once); iterating or calling it again is harmless. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.opts.cursor) {
      const saved = await this.opts.cursor.load();
      if (saved !== undefined && (this.lastSeq === undefined || saved > this.lastSeq))
        this.lastSeq = saved;
    }
    this.connect();
  }

  /** Replaces the filter on the open connection and on every later one. */
  setFilter(filter: Filter): void {
    this.filter = filter;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(filterMessage(filter));
  }

  /** Closes for good; a pending iterator ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close(1000);
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    }
    await this.flushSave();
    this.finish();
  }

  [Symbol.asyncIterator](): AsyncIterator<LaminatorEvent> {
    this.iteratorStarted = true;
    void this.start();
    return {
      next: async () => {
        // The caller is done with the previous event: that is when the cursor moves.
        await this.flushSave();
        const ev = this.queue.shift();
        if (ev !== undefined) {
          this.markDelivered(ev.seq);
          if (this.paused && this.queue.length < this.highWater / 2) {
            this.paused = false;
            this.ws?.resume();
          }
          return { value: ev, done: false };
        }
        if (this.failure) throw this.failure;
        if (this.closed) return { value: undefined, done: true };
        return new Promise<IteratorResult<LaminatorEvent>>((resolve, reject) => {
          this.waiter = {
            resolve: (r) => {
              if (!r.done) this.markDelivered(r.value.seq);
              resolve(r);
            },
            reject,
          };
        });
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  // ---- internals ----

  private markDelivered(seq: number): void {
    this.pendingSave = seq;
  }

  private saving: Promise<void> = Promise.resolve();

  /** Saves the last delivered seq; saves run one after another, so the store ends at the newest. */
  private flushSave(): Promise<void> {
    const seq = this.pendingSave;
    if (seq === undefined) return this.saving;
    this.pendingSave = undefined;
    const cursor = this.opts.cursor;
    if (!cursor) return this.saving;
    // A store that fails is reported (`cursorError`), and the next save tries again.
    this.saving = this.saving
      .then(() => cursor.save(seq))
      .catch((e: unknown) => {
        this.emit("cursorError", e);
      });
    return this.saving;
  }

  private connect(): void {
    if (this.closed) return;
    const url = this.opts.url + queryOf(this.filter, this.lastSeq, this.opts.committed);
    const ws = new WebSocket(url, {
      ...this.opts.wsOptions,
      headers: { ...this.opts.wsOptions?.headers, Authorization: `Bearer ${this.opts.token}` },
      perMessageDeflate: false,
    });
    this.ws = ws;
    let refused: StreamError | undefined;
    ws.on("unexpected-response", (_req, res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      // A wrong token, a scope violation or a bad query will not mend by retrying.
      if (status === 400 || status === 401 || status === 403 || status === 404 || status === 426) {
        refused = new StreamError(`upgrade refused with HTTP ${status}`, status, res.statusMessage ?? "");
      }
      ws.terminate();
    });
    ws.on("open", () => {
      this.emit("open");
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      for (const line of text.split("\n")) {
        if (!line) continue;
        let ev: LaminatorEvent;
        try {
          ev = parseEvent(line);
        } catch {
          continue; // never from the server; skipped rather than fatal
        }
        this.deliver(ev);
      }
    });
    ws.on("error", () => {
      // 'close' follows and decides.
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
        this.failure = c.fatal ?? new StreamError(`stream closed with ${code}`, code, reason);
        this.closed = true;
        if (this.listenerCount("fatal") > 0) this.emit("fatal", this.failure);
        this.finish();
        return;
      }
      this.scheduleReconnect();
    });
  }

  private deliver(ev: LaminatorEvent): void {
    // Never the same seq twice: a resumed connection starts after lastSeq, but a server restarted
    // from an older journal, or a redelivery, must not reach the bot again.
    if (this.lastSeq !== undefined && ev.seq <= this.lastSeq) return;
    this.lastSeq = ev.seq;
    this.attempt = 0; // data flows: the next drop retries from the smallest delay again
    this.emit("event", ev);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
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
      this.markDelivered(ev.seq);
      void this.flushSave();
    }
  }

  private scheduleReconnect(): void {
    const initial = this.opts.backoff?.initialMs ?? 250;
    const max = this.opts.backoff?.maxMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.attempt, 30));
    // Full jitter: many bots restarted together do not reconnect in step.
    const delayMs = Math.floor(Math.random() * ceiling);
    this.attempt += 1;
    this.emit("reconnecting", { attempt: this.attempt, delayMs });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delayMs);
  }

  /** Ends a waiting iterator: with the failure, or done after close(). */
  private finish(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    if (this.failure) w.reject(this.failure);
    else w.resolve({ value: undefined, done: true });
  }
}
