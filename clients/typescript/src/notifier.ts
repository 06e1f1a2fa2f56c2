// Telling users what happened, within Telegram's limits.
//
// When a market crashes, tens of thousands of alerts and fills fire in a second; the Bot API takes
// about 30 messages a second in all and about one a second per chat. Sending one message per event
// tells the last user half an hour late and earns 429s. The Notifier instead
//   * coalesces a chat's events into one digest (everything that arrived for it until its turn),
//   * paces sends under a global budget (`perSecond`) and a per-chat interval (`perChatIntervalMs`),
//   * serves chats by the most urgent event waiting (liquidations and fills, then triggered stops,
//     then price alerts, then the rest), oldest first within a priority,
//   * honours 429's `retry_after` (that chat and the whole budget wait), retries network errors and
//     5xx with backoff, and gives up on a chat the API refuses (403 blocked, 400 chat not found),
//   * honours each user's `notifications` setting (`price_alerts`, `trade_notifications`).
// It sends through `Sender`, which the bot implements with grammY, telegraf or `BotApiSender` (plain
// HTTP). Memory is bounded: a chat keeps at most `maxEventsPerChat` events and counts the rest.

import { EventEmitter } from "node:events";

import type { EventType, LaminatorEvent } from "./events.js";

/** Where a user is told, and what the user wants to be told (the seed's `user_settings`). */
export interface Recipient {
  chatId: string | number;
  /** `notifications.price_alerts` (default true): `alert.*` events. */
  priceAlerts: boolean;
  /** `notifications.trade_notifications` (default true): `order.*`, `position.*` events. */
  tradeNotifications: boolean;
}

/** Looks recipients up in batches (`PgDirectory` reads `users` and `user_settings`). */
export interface Directory {
  lookup(userIds: readonly string[]): Promise<Map<string, Recipient | undefined>>;
}

/** Sends one message; throws `SendError` (with `retryAfterMs` on a 429) when the API refuses. */
export interface Sender {
  send(chatId: string | number, text: string): Promise<void>;
}

export class SendError extends Error {
  constructor(
    message: string,
    /** The API's error code (429, 403, 400...), or 0 for a network error. */
    readonly status: number,
    /** A 429's `parameters.retry_after`, in ms. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "SendError";
  }
}

/**
 * `sendMessage` over plain HTTP (Node's fetch). The token is in the URL only; error messages carry
 * the API's description, never the URL.
 */
export class BotApiSender implements Sender {
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(token: string, options?: { baseUrl?: string; timeoutMs?: number }) {
    this.base = `${(options?.baseUrl ?? "https://api.telegram.org").replace(/\/+$/, "")}/bot${token}`;
    this.timeoutMs = options?.timeoutMs ?? 10_000;
  }

  async send(chatId: string | number, text: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${this.base}/sendMessage`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ chat_id: chatId, text, link_preview_options: { is_disabled: true } }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      // fetch's own errors name no URL; keep only their kind.
      const name = e instanceof Error ? e.name : "Error";
      throw new SendError(`sendMessage failed: ${name}`, 0);
    }
    if (res.ok) {
      await res.arrayBuffer();
      return;
    }
    let body: { description?: unknown; parameters?: { retry_after?: unknown } } = {};
    try {
      body = (await res.json()) as typeof body;
    } catch {
      // not JSON: a proxy's page
    }
    const ra = body.parameters?.retry_after;
    const retryAfterMs =
      typeof ra === "number" && Number.isFinite(ra) && ra >= 0 ? Math.ceil(ra * 1000) : undefined;
    const desc = typeof body.description === "string" ? body.description.slice(0, 200) : "";
    throw new SendError(
      `sendMessage: HTTP ${res.status}${desc ? ` ${desc}` : ""}`,
      res.status,
      res.status === 429 ? (retryAfterMs ?? 1000) : retryAfterMs,
    );
  }
}

/** What reads the database: node-postgres's `Pool` or `Client`. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * Recipients from the bot's tables: `users.telegram_id` is the chat, `user_settings` row
 * `notifications` = `{ "price_alerts": bool, "trade_notifications": bool }` (missing: both true).
 */
export class PgDirectory implements Directory {
  constructor(private readonly db: Queryable) {}

  async lookup(userIds: readonly string[]): Promise<Map<string, Recipient | undefined>> {
    const out = new Map<string, Recipient | undefined>();
    for (const u of userIds) out.set(u, undefined);
    const ids = userIds.filter((u) => /^[0-9a-f-]{36}$/i.test(u));
    if (ids.length === 0) return out;
    const r = await this.db.query(
      `SELECT u.id::text AS id, u.telegram_id::text AS chat, s.setting_value AS n
         FROM users u
         LEFT JOIN user_settings s ON s.user_id = u.id AND s.setting_key = 'notifications'
        WHERE u.id = ANY($1::uuid[])`,
      [ids],
    );
    for (const row of r.rows as { id: string; chat: string | null; n: unknown }[]) {
      if (row.chat === null) continue;
      const n = (typeof row.n === "object" && row.n !== null ? row.n : {}) as Record<string, unknown>;
      out.set(row.id, {
        chatId: row.chat,
        priceAlerts: n.price_alerts !== false,
        tradeNotifications: n.trade_notifications !== false,
      });
    }
    return out;
  }
}

/** 0 first. Money moved (liquidations, fills and their corrections), stops, price alerts, the rest. */
export function priorityOf(type: string): number {
  switch (type) {
    case "position.liquidated":
    case "order.filled":
    case "order.fill_voided":
    case "transition.voided":
      return 0;
    case "order.triggered":
    case "position.opened":
    case "position.increased":
    case "position.reduced":
    case "position.closed":
      return 1;
    case "alert.triggered":
      return 2;
    default:
      return 3;
  }
}

function settingOf(type: string): "priceAlerts" | "tradeNotifications" | undefined {
  if (type.startsWith("alert.")) return "priceAlerts";
  if (type.startsWith("order.") || type.startsWith("position.") || type === "transition.voided")
    return "tradeNotifications";
  return undefined;
}

/** One line per event (plain text: no parse mode to escape). */
export function describeEvent(ev: LaminatorEvent, market?: string): string {
  const m = market ? ` ${market}` : "";
  const e = ev as unknown as Record<string, string | undefined>;
  switch (ev.type) {
    case "position.liquidated":
      return `LIQUIDATED:${m} position at ${e.price}`;
    case "order.filled":
      return `Filled:${m} ${e.side ?? ""} ${e.size ?? ""} at ${e.price}`.replace(/\s+/g, " ");
    case "order.fill_voided":
      return e.reason === "position_closed"
        ? `Correction:${m} a fill reported earlier did not happen (the position was closed first); the order is still working`
        : `Correction:${m} a fill reported earlier did not happen (your change came first)`;
    case "transition.voided":
      return `Correction:${m} ${e.voided_type ?? "an update"} reported earlier did not happen`;
    case "order.triggered":
      return `Stop triggered:${m} at ${e.price}`;
    case "alert.triggered":
      return `Alert:${m} price ${e.price}`;
    case "alert.expired":
      return `Alert expired:${m}`;
    case "order.cancelled":
      return `Order cancelled:${m} (${e.reason ?? ""})`;
    case "order.expired":
      return `Order expired:${m}`;
    case "order.rejected":
      return `Order rejected:${m} (${e.reason ?? ""})`;
    case "order.placed":
      return `Stop-loss placed:${m} at ${e.trigger_price} (your stop-loss setting)`;
    case "settings.rejected":
      return `Your settings were not applied (${e.detail ?? e.reason ?? ""}): the defaults apply until you fix them`;
    default:
      return `${ev.type}:${m}`;
  }
}

export interface NotifierOptions {
  sender: Sender;
  directory: Directory;
  /** How long a chat's first event waits for more to coalesce with (default 1,000 ms). */
  windowMs?: number;
  /** Messages per second in all (default 25; Telegram's limit is about 30). */
  perSecond?: number;
  /** Least time between two messages to one chat (default 1,100 ms; Telegram: about 1 s). */
  perChatIntervalMs?: number;
  /** Events kept per chat; more are counted and shown as "and N more" (default 50). */
  maxEventsPerChat?: number;
  /** Characters per message (Telegram: 4,096). */
  maxChars?: number;
  /** Sends at once (default 8): an API round trip must not cap the rate. */
  concurrency?: number;
  /** Attempts for a network error or 5xx before the chat's digest is given up (default 5). */
  maxAttempts?: number;
  /** Types sent whatever the user's settings (default: `position.liquidated`). */
  alwaysNotify?: readonly EventType[];
  /** A market's name for the text (default: none). */
  marketName?: (marketId: string) => string | undefined;
  /** The digest's text (default: one `describeEvent` line per event, most urgent first). */
  format?: (events: readonly LaminatorEvent[], more: number) => string;
  /** How long a looked-up recipient is reused (default 60 s). */
  directoryTtlMs?: number;
  /**
   * After a quiet spell (nothing sent for a second), how long the first ready chat waits for others
   * whose windows end just after it (default 50 ms): the first messages of a burst then go by
   * urgency too, not to whichever chat's window happened to end a few milliseconds earlier.
   */
  startGraceMs?: number;
}

export interface NotifierStats {
  /** Events pushed. */
  events: number;
  /** Not sent because of the user's settings, or the user has no chat. */
  suppressed: number;
  /** Events told (in a digest that was accepted). */
  told: number;
  /** Messages accepted by the API. */
  messages: number;
  /** 429 answers (each honoured). */
  rateLimited: number;
  /** Other failed attempts (retried). */
  retries: number;
  /** Events given up: the API refused the chat, or the attempts ran out. */
  failed: number;
  /** Events beyond `maxEventsPerChat`, counted into "and N more". */
  folded: number;
}

export interface NotifierEvents {
  /** A digest was accepted. */
  sent: [{ chatId: string | number; events: readonly LaminatorEvent[]; more: number; text: string }];
  /** A digest was given up. */
  failed: [{ chatId: string | number; events: readonly LaminatorEvent[]; error: Error }];
}

interface Chat {
  id: string | number;
  key: string;
  events: LaminatorEvent[];
  more: number;
  firstAt: number;
  nextAllowedAt: number;
  best: number;
  inFlight: boolean;
  attempts: number;
  version: number;
  queued: boolean;
}

/** A binary min-heap. */
class Heap<T> {
  private readonly a: T[] = [];
  constructor(private readonly less: (x: T, y: T) => boolean) {}
  get size(): number {
    return this.a.length;
  }
  peek(): T | undefined {
    return this.a[0];
  }
  push(v: T): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i] as T, a[p] as T)) break;
      [a[i], a[p]] = [a[p] as T, a[i] as T];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l] as T, a[m] as T)) m = l;
        if (r < a.length && this.less(a[r] as T, a[m] as T)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as T, a[i] as T];
        i = m;
      }
    }
    return top;
  }
}

interface Entry {
  chat: Chat;
  version: number;
  at: number;
  priority: number;
}

export class Notifier extends EventEmitter<NotifierEvents> {
  readonly stats: NotifierStats = {
    events: 0,
    suppressed: 0,
    told: 0,
    messages: 0,
    rateLimited: 0,
    retries: 0,
    failed: 0,
    folded: 0,
  };
  private readonly o: Required<
    Omit<NotifierOptions, "marketName" | "format" | "alwaysNotify" | "sender" | "directory">
  >;
  private readonly always: ReadonlySet<string>;
  private readonly chats = new Map<string, Chat>();
  /** Chats whose turn has not come (by time), and chats that may send now (by urgency, then age). */
  private readonly waiting = new Heap<Entry>((x, y) => x.at < y.at);
  private readonly ready = new Heap<Entry>((x, y) =>
    x.priority !== y.priority ? x.priority < y.priority : x.at < y.at,
  );
  private readonly recipients = new Map<string, { r: Recipient | undefined; until: number }>();
  private unresolved: LaminatorEvent[] = [];
  private resolving: Promise<void> | undefined;
  private nextSendAt = 0;
  private lastSendAt = 0;
  /** When the first chat of a burst became ready after a quiet spell (0: none waiting). */
  private burstAt = 0;
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: NotifierOptions) {
    super();
    this.o = {
      windowMs: opts.windowMs ?? 1000,
      perSecond: opts.perSecond ?? 25,
      perChatIntervalMs: opts.perChatIntervalMs ?? 1100,
      maxEventsPerChat: opts.maxEventsPerChat ?? 50,
      maxChars: opts.maxChars ?? 4096,
      concurrency: opts.concurrency ?? 8,
      maxAttempts: opts.maxAttempts ?? 5,
      directoryTtlMs: opts.directoryTtlMs ?? 60_000,
      startGraceMs: opts.startGraceMs ?? 50,
    };
    if (!(this.o.perSecond > 0)) throw new Error("Notifier: perSecond must be > 0");
    this.always = new Set(opts.alwaysNotify ?? ["position.liquidated"]);
  }

  /** Queues an event for its user (events without a user, like `market.unserved`, are ignored). */
  push(ev: LaminatorEvent): void {
    if (this.closed) return;
    const userId = (ev as { user_id?: string }).user_id;
    if (typeof userId !== "string") return;
    this.stats.events += 1;
    this.unresolved.push(ev);
    this.resolving ??= this.resolve();
  }

  /** Resolves once every pushed event was told, suppressed or given up. */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops sending; what was not sent yet is dropped (drain first to send it). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Chats with events waiting or in flight. */
  get backlog(): number {
    let n = 0;
    for (const c of this.chats.values()) if (c.events.length > 0 || c.inFlight) n += 1;
    return n;
  }

  // ---- internals ----

  private idle(): boolean {
    return (
      this.unresolved.length === 0 &&
      this.resolving === undefined &&
      this.inFlight === 0 &&
      this.backlog === 0
    );
  }

  private checkIdle(): void {
    if (!this.idle()) return;
    const all = this.idleWaiters.splice(0);
    for (const w of all) w();
  }

  /** Looks the users of queued events up (one batch per turn) and routes the events to chats. */
  private async resolve(): Promise<void> {
    await new Promise((r) => setImmediate(r)); // gather a burst into one lookup
    while (this.unresolved.length > 0 && !this.closed) {
      const batch = this.unresolved;
      this.unresolved = [];
      const now = Date.now();
      const missing = new Set<string>();
      for (const ev of batch) {
        const u = (ev as { user_id: string }).user_id;
        const c = this.recipients.get(u);
        if (!c || c.until < now) missing.add(u);
      }
      if (missing.size > 0) {
        const ids = [...missing];
        for (let i = 0; i < ids.length; i += 5000) {
          const part = ids.slice(i, i + 5000);
          let found: Map<string, Recipient | undefined>;
          try {
            found = await this.opts.directory.lookup(part);
          } catch {
            found = new Map(); // the directory failed: retried for these users' next events
            for (const u of part) this.recipients.delete(u);
            continue;
          }
          const until = Date.now() + this.o.directoryTtlMs;
          for (const u of part) this.recipients.set(u, { r: found.get(u), until });
        }
      }
      for (const ev of batch) this.route(ev);
    }
    this.resolving = undefined;
    this.pump();
    this.checkIdle();
  }

  private route(ev: LaminatorEvent): void {
    const u = (ev as { user_id: string }).user_id;
    const r = this.recipients.get(u)?.r;
    const setting = settingOf(ev.type);
    if (!r || (setting && !r[setting] && !this.always.has(ev.type))) {
      this.stats.suppressed += 1;
      return;
    }
    const key = String(r.chatId);
    let chat = this.chats.get(key);
    const now = Date.now();
    if (!chat) {
      chat = {
        id: r.chatId,
        key,
        events: [],
        more: 0,
        firstAt: now,
        nextAllowedAt: 0,
        best: 9,
        inFlight: false,
        attempts: 0,
        version: 0,
        queued: false,
      };
      this.chats.set(key, chat);
    }
    if (chat.events.length === 0 && chat.more === 0) chat.firstAt = now;
    const p = priorityOf(ev.type);
    if (chat.events.length < this.o.maxEventsPerChat) {
      chat.events.push(ev);
    } else {
      // Full: keep the most urgent. An event less urgent than everything kept is only counted.
      let worst = -1;
      for (let i = 0; i < chat.events.length; ++i) {
        const e = chat.events[i] as LaminatorEvent;
        if (worst < 0 || priorityOf(e.type) >= priorityOf((chat.events[worst] as LaminatorEvent).type))
          worst = i;
      }
      if (worst >= 0 && priorityOf((chat.events[worst] as LaminatorEvent).type) > p)
        chat.events[worst] = ev;
      chat.more += 1;
      this.stats.folded += 1;
    }
    if (p < chat.best || !chat.queued) {
      chat.best = Math.min(chat.best, p);
      this.enqueue(chat);
    }
  }

  /** (Re)queues a chat at its time and urgency; older entries of it are skipped when met. */
  private enqueue(chat: Chat): void {
    if (chat.inFlight || chat.events.length === 0) return;
    chat.version += 1;
    chat.queued = true;
    const at = Math.max(chat.firstAt + this.o.windowMs, chat.nextAllowedAt);
    this.waiting.push({ chat, version: chat.version, at, priority: chat.best });
  }

  private pump(): void {
    if (this.closed) return;
    const now = Date.now();
    for (let top = this.waiting.peek(); top && top.at <= now; top = this.waiting.peek()) {
      this.waiting.pop();
      if (top.version === top.chat.version) this.ready.push(top);
    }
    const spacing = 1000 / this.o.perSecond;
    if (this.ready.size > 0 && this.inFlight === 0 && now - this.lastSendAt > 1000) {
      // A burst starts: let the chats whose windows end right after this one join the choice.
      if (this.burstAt === 0) this.burstAt = now;
      if (now < this.burstAt + this.o.startGraceMs) {
        this.arm(this.burstAt + this.o.startGraceMs);
        return;
      }
    }
    while (this.ready.size > 0 && this.inFlight < this.o.concurrency && this.nextSendAt <= now) {
      const e = this.ready.pop() as Entry;
      if (e.version !== e.chat.version || e.chat.inFlight || e.chat.events.length === 0) continue;
      this.nextSendAt = Math.max(this.nextSendAt, now - spacing) + spacing;
      this.lastSendAt = now;
      this.burstAt = 0;
      this.sendDigest(e.chat);
    }
    // Sleep until the next thing can happen: a send slot, or a waiting chat's turn.
    let wake = Infinity;
    if (this.ready.size > 0 && this.inFlight < this.o.concurrency) wake = this.nextSendAt;
    const w = this.waiting.peek();
    if (w) wake = Math.min(wake, Math.max(w.at, this.ready.size > 0 ? this.nextSendAt : w.at));
    this.arm(wake);
  }

  private arm(at: number): void {
    if (at === Infinity) return;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, at - Date.now()),
    );
  }

  private format(events: readonly LaminatorEvent[], more: number): string {
    if (this.opts.format) return this.opts.format(events, more).slice(0, this.o.maxChars);
    const sorted = [...events].sort(
      (a, b) => priorityOf(a.type) - priorityOf(b.type) || a.seq - b.seq,
    );
    const lines: string[] = [];
    let size = 0;
    let cut = more;
    for (let i = 0; i < sorted.length; ++i) {
      const ev = sorted[i] as LaminatorEvent;
      const mid = (ev as { market_id?: string | null }).market_id;
      const line = describeEvent(ev, mid ? this.opts.marketName?.(mid) : undefined);
      if (size + line.length + 1 > this.o.maxChars - 40) {
        cut += sorted.length - i;
        break;
      }
      lines.push(line);
      size += line.length + 1;
    }
    if (cut > 0) lines.push(`... and ${cut} more`);
    return lines.join("\n");
  }

  private sendDigest(chat: Chat): void {
    const events = chat.events;
    const more = chat.more;
    chat.events = [];
    chat.more = 0;
    chat.best = 9;
    chat.inFlight = true;
    chat.queued = false;
    this.inFlight += 1;
    const text = this.format(events, more);
    const started = Date.now();
    chat.nextAllowedAt = started + this.o.perChatIntervalMs;
    this.opts.sender.send(chat.id, text).then(
      () => {
        this.stats.messages += 1;
        this.stats.told += events.length + more;
        chat.attempts = 0;
        this.afterSend(chat);
        this.emit("sent", { chatId: chat.id, events, more, text });
      },
      (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        const status = e instanceof SendError ? e.status : 0;
        const retryAfter = e instanceof SendError ? e.retryAfterMs : undefined;
        const now = Date.now();
        if (status === 429) {
          // Flood control: this chat and the whole budget wait as told.
          this.stats.rateLimited += 1;
          const wait = retryAfter ?? 1000;
          chat.nextAllowedAt = now + wait;
          this.nextSendAt = Math.max(this.nextSendAt, now + wait);
          this.putBack(chat, events, more);
        } else if ((status === 0 || status >= 500) && chat.attempts + 1 < this.o.maxAttempts) {
          this.stats.retries += 1;
          chat.attempts += 1;
          chat.nextAllowedAt = now + Math.min(30_000, 500 * 2 ** chat.attempts);
          this.putBack(chat, events, more);
        } else {
          // Refused (blocked, chat not found, bad request) or out of attempts: given up.
          chat.attempts = 0;
          this.stats.failed += events.length + more;
          this.emit("failed", { chatId: chat.id, events, error: err });
        }
        this.afterSend(chat);
      },
    );
  }

  private putBack(chat: Chat, events: LaminatorEvent[], more: number): void {
    chat.events = events.concat(chat.events);
    chat.more += more;
    for (const e of chat.events) chat.best = Math.min(chat.best, priorityOf(e.type));
  }

  private afterSend(chat: Chat): void {
    chat.inFlight = false;
    this.inFlight -= 1;
    if (chat.events.length > 0) {
      chat.firstAt = Math.min(chat.firstAt, Date.now() - this.o.windowMs); // waited its window
      this.enqueue(chat);
    } else if (chat.more === 0) {
      // Nothing pending: forget the chat unless its pacing still matters.
      if (chat.nextAllowedAt <= Date.now()) this.chats.delete(chat.key);
    }
    this.pump();
    this.checkIdle();
  }
}
