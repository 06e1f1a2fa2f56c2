// The events of docs/events.md, as they arrive on the alert stream. Decimals stay strings: a price
// is never parsed through binary floating point (use a decimal library, or BigInt on scaled text).

/** A decimal as Laminator writes it: no exponent, no trailing zeros ("65000.5", "-0.25"). */
export type Decimal = string;
/** Lower-case canonical UUID text. */
export type Uuid = string;

interface Base<T extends string> {
  /** Global sequence number: +1 per event across all types, within a run and across restarts. */
  seq: number;
  type: T;
  /** Tick time, ms since the Unix epoch. */
  ts: number;
  /** Replayed from the journal after a crash: the subscriber may have seen it before. */
  redelivered?: true;
  /**
   * Through `laminator gateway` only (docs/events.md, "Through JetStream"): the shard that made the
   * event, and its seq in that shard's own stream. `seq` is then the JetStream stream sequence.
   */
  shard?: string;
  shard_seq?: number;
}

interface UserBase<T extends string> extends Base<T> {
  user_id: Uuid;
  market_id: Uuid | null;
}

export type AlertRejectReason =
  | "unsupported_condition"
  | "missing_market"
  | "unknown_market"
  | "missing_target"
  | "invalid_target"
  | "invalid_window"
  | "not_a_number"
  | "invalid_value"
  | "out_of_range";

export interface AlertTriggered extends UserBase<"alert.triggered"> {
  alert_id: Uuid;
  price: Decimal;
}
export interface AlertExpired extends UserBase<"alert.expired"> {
  alert_id: Uuid;
}
export interface AlertRejected extends UserBase<"alert.rejected"> {
  alert_id: Uuid;
  reason: AlertRejectReason;
  detail: string;
}
export interface AlertAnchored extends UserBase<"alert.anchored"> {
  alert_id: Uuid;
  anchor_price: Decimal;
}
export interface PositionLiquidated extends UserBase<"position.liquidated"> {
  position_id: Uuid;
  price: Decimal;
}
export interface PositionRejected extends UserBase<"position.rejected"> {
  position_id: Uuid;
  reason: AlertRejectReason;
  detail: string;
}
export interface MarketUnserved extends Base<"market.unserved"> {
  market_id: Uuid;
}
export interface OrderTriggered extends UserBase<"order.triggered"> {
  order_id: Uuid;
  price: Decimal;
}
export interface OrderFilled extends UserBase<"order.filled"> {
  order_id: Uuid;
  price: Decimal;
  position_id: Uuid;
  size: Decimal;
  fee: Decimal;
  liquidity: "maker" | "taker";
}
export interface OrderCancelled extends UserBase<"order.cancelled"> {
  order_id: Uuid;
  reason: string;
  detail?: string;
}
export interface OrderExpired extends UserBase<"order.expired"> {
  order_id: Uuid;
}
export interface OrderRejected extends UserBase<"order.rejected"> {
  order_id: Uuid;
  /**
   * e.g. `invalid_size`, `insufficient_margin`, `foreign_wallet` (the wallet is another user's),
   * `invalid_trail` (a trailing stop's offsets)
   */
  reason: string;
  detail?: string;
}
/**
 * The bot set a finished order (filled, cancelled, expired, failed) back to pending / open: the
 * engine did not arm it again and left the row alone. To retry, insert a new order.
 */
/**
 * Compensates an earlier `order.filled` of this order, never stored. `changed_first`: the bot
 * cancelled (or otherwise finished) the order before the engine's fill reached the database; it
 * never will be. `position_closed`: the fill moved a position the bot closed first; the order is
 * still live and is filled anew (a later `order.filled` of the same order). The order, position and
 * wallet rows are as the database holds them; undo what you told the user.
 */
export interface OrderFillVoided extends UserBase<"order.fill_voided"> {
  order_id: Uuid;
  /** the position the voided fill had moved */
  position_id: Uuid;
  size: Decimal;
  reason: "changed_first" | "position_closed";
  detail?: string;
}
/**
 * Compensates an earlier event (`voided_type`) whose transition the database never took: the bot
 * changed the row first (cancelled the alert as it triggered, closed the position as it was
 * liquidated, ended the order as the engine triggered or ended it). The row as the bot left it is
 * the truth. The subject field is the voided event's: `alert_id`, `position_id` or `order_id`.
 */
export interface TransitionVoided extends UserBase<"transition.voided"> {
  voided_type: EventType;
  alert_id?: Uuid;
  position_id?: Uuid;
  order_id?: Uuid;
  reason: "changed_first";
  detail?: string;
}
export interface OrderRevivalRefused extends UserBase<"order.revival_refused"> {
  order_id: Uuid;
  reason: "finished_order";
  detail?: string;
}
/**
 * A `user_settings` row the engine cannot follow (a value out of its range, or not a number: `reason`
 * `invalid_setting`, `not_a_number` or `invalid_value`; the daemon's log names the field). None of the row's
 * values are followed until the bot fixes it: the market's maximum leverage and the daemon's slippage
 * apply meanwhile.
 */
export interface SettingsRejected extends UserBase<"settings.rejected"> {
  setting_id: Uuid;
  reason: string;
  detail?: string;
}
/**
 * The engine placed an order for the user: the protective stop of the user's
 * `risk_management.stop_loss_percentage` on a position a paper fill opened (`position_id`). It is an
 * ordinary reduce-only `stop` row (a long's sells, a short's buys; `size` the position's, the
 * trigger `stop_loss_percentage` from the entry, on the tick): move or cancel it like any order.
 */
export interface OrderPlaced extends UserBase<"order.placed"> {
  order_id: Uuid;
  position_id: Uuid;
  trigger_price: Decimal;
  size: Decimal;
}
type PositionMove = "position.opened" | "position.increased" | "position.reduced" | "position.closed";
export interface PositionMoved<T extends PositionMove = PositionMove> extends UserBase<T> {
  position_id: Uuid;
  price: Decimal;
  order_id: Uuid;
  size: Decimal;
  realized_pnl: Decimal;
}

export type LaminatorEvent =
  | AlertTriggered
  | AlertExpired
  | AlertRejected
  | AlertAnchored
  | PositionLiquidated
  | PositionRejected
  | MarketUnserved
  | OrderTriggered
  | OrderFilled
  | OrderCancelled
  | OrderExpired
  | OrderRejected
  | OrderRevivalRefused
  | OrderFillVoided
  | TransitionVoided
  | SettingsRejected
  | OrderPlaced
  | PositionMoved<"position.opened">
  | PositionMoved<"position.increased">
  | PositionMoved<"position.reduced">
  | PositionMoved<"position.closed">;

export type EventType = LaminatorEvent["type"];

/** Every event type, for filters and exhaustiveness checks. */
export const EVENT_TYPES: readonly EventType[] = [
  "alert.triggered",
  "alert.expired",
  "alert.rejected",
  "alert.anchored",
  "position.liquidated",
  "position.rejected",
  "market.unserved",
  "order.triggered",
  "order.filled",
  "order.cancelled",
  "order.expired",
  "order.rejected",
  "position.opened",
  "position.increased",
  "position.reduced",
  "position.closed",
  "order.revival_refused",
  "order.fill_voided",
  "transition.voided",
  "settings.rejected",
  "order.placed",
];

/** Narrows an event by type: `if (is(ev, "alert.triggered")) ev.alert_id`. */
export function is<T extends EventType>(
  ev: LaminatorEvent,
  type: T,
): ev is Extract<LaminatorEvent, { type: T }> {
  return ev.type === type;
}

/**
 * Parses one line of the stream. Throws on a line that is not an event object (the server never
 * sends one; a proxy or a bug might). Unknown types from a newer server are passed through.
 */
export function parseEvent(line: string): LaminatorEvent {
  const v: unknown = JSON.parse(line);
  if (typeof v !== "object" || v === null) throw new Error("not an event object");
  const o = v as Record<string, unknown>;
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 1) throw new Error("event without a valid seq");
  if (typeof o.type !== "string") throw new Error("event without a type");
  return v as LaminatorEvent;
}
