#include "persistence/batch.h"

#include <algorithm>
#include <pqxx/pqxx>
#include <unordered_set>
#include <utility>

#include "engine/event_json.h"
#include "engine/matcher.h"

namespace lam::db {
namespace {

/// o.flags bits beside WriteOp's kTaker 1, kOpened 2, kReduce 4: the order rested in this batch;
/// its fill moves a position that a fill before it in this batch opened.
constexpr std::uint8_t kRestedFlag = 8, kOpenedEarlierFlag = 16;

class ArrayLiteral {
 public:
  void add_uuid(const Uuid& u) {
    sep();
    u.append_to(s_);
  }
  void add_fixed(Wide v, int digits) {
    sep();
    append_fixed(s_, v, digits);
  }
  void add_time(TimeNs t) {
    sep();
    append_iso8601_ms(s_, t);
  }
  void add_null() {
    sep();
    s_.append("NULL");
  }
  void add_word(std::string_view w) {
    sep();
    s_.append(w);
  }
  void add_uint(std::uint64_t v) {
    sep();
    s_.append(std::to_string(v));
  }
  /// A quoted element: `"` and `\` escaped as array literals require.
  void add_text(std::string_view t) {
    sep();
    s_.push_back('"');
    for (char c : t) {
      if (c == '"' || c == '\\') s_.push_back('\\');
      s_.push_back(c);
    }
    s_.push_back('"');
  }
  std::string done() {
    s_.push_back('}');
    return std::move(s_);
  }

 private:
  void sep() {
    if (s_.size() > 1) s_.push_back(',');
  }
  std::string s_ = "{";
};

/// Marks (per position or per market) in id order, PostgreSQL's uuid order: the lookups walk the
/// primary key and, for rows inserted in id order, the heap in order, and every batch locks its
/// rows in the same order.
std::vector<const WriteOp*> by_id(const std::unordered_map<Uuid, WriteOp, UuidHash>& marks) {
  std::vector<const WriteOp*> sorted;
  sorted.reserve(marks.size());
  for (const auto& [id, op] : marks) sorted.push_back(&op);
  std::sort(sorted.begin(), sorted.end(),
            [](const WriteOp* a, const WriteOp* b) { return a->id < b->id; });
  return sorted;
}

}  // namespace

void Batch::add(const WriteOp& op) {
  switch (op.kind) {
    case WriteKind::position_mark:
      marks_[op.id] = op;
      break;
    case WriteKind::market_mark: {
      auto [it, inserted] = market_marks_.try_emplace(op.id, op);
      if (!inserted && op.ts >= it->second.ts) it->second = op;
      break;
    }
    case WriteKind::position_liquidated:
      marks_.erase(op.id);  // the liquidation sets the final price and pnl
      liquidations_.push_back(op);
      break;
    case WriteKind::alert_triggered:
    case WriteKind::alert_expired:
    case WriteKind::alert_anchored: {
      auto [it, inserted] = alert_index_.try_emplace(op.id, alerts_.size());
      if (inserted) alerts_.push_back({op.id, AlertWrite{}});
      AlertWrite& w = alerts_[it->second].second;
      if (op.kind == WriteKind::alert_anchored) {
        w.anchor = op.price;
      } else {
        w.transition = op.kind;
        w.ts = op.ts;
        if (op.price != 0) w.anchor = op.price;
      }
      break;
    }
    case WriteKind::order_triggered:
    case WriteKind::order_rested:
    case WriteKind::order_ended:
    case WriteKind::order_filled: {
      auto [it, inserted] = order_index_.try_emplace(op.id, orders_.size());
      if (inserted) orders_.push_back({op.id, OrderWrite{}});
      OrderWrite& w = orders_[it->second].second;
      const bool final = w.status != OrderStatus::open;
      w.last = ++ops_;
      if (op.kind == WriteKind::order_triggered) {
        w.triggered = true;
        w.triggered_at = op.ts;
        if (!final) w.at = op.ts;
      } else if (op.kind == WriteKind::order_rested) {
        w.rested = true;
        if (!final) w.at = op.ts;
      } else if (op.kind == WriteKind::order_ended) {
        w.status = static_cast<OrderStatus>(op.code);
        w.reason = static_cast<RejectReason>(op.reason);
        w.at = op.ts;
      } else {
        w.status = OrderStatus::filled;
        w.filled = true;
        w.fill = op;
        w.at = op.ts;
      }
      break;
    }
  }
}

std::vector<const std::pair<Uuid, Batch::OrderWrite>*> Batch::orders_by_last() const {
  std::vector<const std::pair<Uuid, OrderWrite>*> v;
  v.reserve(orders_.size());
  for (const auto& ow : orders_) v.push_back(&ow);
  std::sort(v.begin(), v.end(),
            [](const auto* a, const auto* b) { return a->second.last < b->second.last; });
  return v;
}

void Batch::add_event(const Event& e, bool recovered) {
  events_.emplace_back(e, recovered);
  if (e.seq > max_seq_) max_seq_ = e.seq;
}

void Batch::clear() {
  events_.clear();
  max_seq_ = 0;
  marks_.clear();
  market_marks_.clear();
  liquidations_.clear();
  alert_index_.clear();
  alerts_.clear();
  order_index_.clear();
  orders_.clear();
  ops_ = 0;
}

std::optional<std::pair<EventType, Uuid>> Batch::voided_by(const std::string& conflict) const {
  const auto c1 = conflict.find(':');
  const auto c2 = conflict.rfind(':');
  if (c1 == std::string::npos || c2 == c1) return std::nullopt;
  const std::string table = conflict.substr(0, c1);
  const std::string found = conflict.substr(c2 + 1);
  const auto id = Uuid::parse(conflict.substr(c1 + 1, c2 - c1 - 1));
  if (!id) return std::nullopt;
  if (table == "alerts") {
    const auto it = alert_index_.find(*id);
    if (it == alert_index_.end()) return std::nullopt;
    const AlertWrite& w = alerts_[it->second].second;
    if (w.transition == WriteKind::alert_triggered)
      return std::pair{EventType::alert_triggered, *id};
    if (w.transition == WriteKind::alert_expired) return std::pair{EventType::alert_expired, *id};
    return std::nullopt;
  }
  if (table == "positions") {
    for (const WriteOp& op : liquidations_)
      if (op.id == *id) return std::pair{EventType::position_liquidated, *id};
    return std::nullopt;
  }
  if (table == "orders") {
    const auto it = order_index_.find(*id);
    if (it == order_index_.end()) return std::nullopt;
    const OrderWrite& w = orders_[it->second].second;
    if (w.filled) {
      // The bot's finished row reaches the engine, which voids the fill; a deleted row does not.
      if (found == "missing") return std::pair{EventType::order_filled, *id};
      return std::nullopt;
    }
    switch (w.status) {
      case OrderStatus::cancelled:
        return std::pair{EventType::order_cancelled, *id};
      case OrderStatus::expired:
        return std::pair{EventType::order_expired, *id};
      case OrderStatus::failed:
        return std::pair{EventType::order_rejected, *id};
      case OrderStatus::open:
        if (w.triggered) return std::pair{EventType::order_triggered, *id};
        return std::nullopt;  // rested: a transition with no event
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

Batch Batch::take_alerts() {
  Batch out;
  out.alert_index_ = std::move(alert_index_);
  out.alerts_ = std::move(alerts_);
  alert_index_.clear();
  alerts_.clear();
  return out;
}

std::pair<Batch, Batch> Batch::split() const {
  std::pair<Batch, Batch> out;
  const std::size_t half = rows() / 2;
  std::size_t i = 0;
  auto side = [&]() -> Batch& { return i++ < half ? out.first : out.second; };
  for (const WriteOp* op : by_id(market_marks_)) side().market_marks_.emplace(op->id, *op);
  for (const WriteOp* op : by_id(marks_)) side().marks_.emplace(op->id, *op);
  for (const WriteOp& op : liquidations_) side().liquidations_.push_back(op);
  for (const auto& [id, w] : alerts_) {
    Batch& b = side();
    b.alert_index_.emplace(id, b.alerts_.size());
    b.alerts_.emplace_back(id, w);
  }
  for (const auto* ow : orders_by_last()) {
    Batch& b = side();
    b.order_index_.emplace(ow->first, b.orders_.size());
    b.orders_.emplace_back(*ow);
    b.ops_ = std::max(b.ops_, ow->second.last);
  }
  for (const auto& ev : events_) {
    Batch& b = side();
    b.events_.push_back(ev);
    b.max_seq_ = std::max(b.max_seq_, ev.first.seq);
  }
  return out;
}

Batch::RowDescription Batch::describe_single() const {
  RowDescription d;
  if (!market_marks_.empty()) {
    const WriteOp& op = market_marks_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "market_marks";
    d.kind = "market_mark";
    d.detail = "price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    d.detail += " marked_at=";
    append_iso8601_ms(d.detail, op.ts);
  } else if (!marks_.empty()) {
    const WriteOp& op = marks_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "positions";
    d.kind = "mark";
    d.detail = "current_price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    d.detail += " unrealized_pnl=";
    append_fixed(d.detail, op.amount, 18);
  } else if (!liquidations_.empty()) {
    const WriteOp& op = liquidations_.front();
    op.id.append_to(d.row_id);
    d.table = "positions";
    d.kind = "liquidation";
    d.detail = "current_price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    d.detail += " realized_pnl=";
    append_fixed(d.detail, op.amount, kScaleDigits);
    d.detail += " closed_at=";
    append_iso8601_ms(d.detail, op.ts);
  } else if (!alerts_.empty()) {
    const auto& [aid, w] = alerts_.front();
    aid.append_to(d.row_id);
    d.table = "alerts";
    d.kind = w.transition == WriteKind::alert_triggered ? "alert_triggered"
             : w.transition == WriteKind::alert_expired ? "alert_expired"
                                                        : "alert_anchored";
    d.detail = "anchor_price=";
    append_fixed(d.detail, w.anchor, kScaleDigits);
    if (w.transition != WriteKind::alert_anchored) {
      d.detail += " at=";
      append_iso8601_ms(d.detail, w.ts);
    }
  } else if (!orders_.empty()) {
    const auto& [oid, w] = orders_.front();
    oid.append_to(d.row_id);
    d.table = "orders";
    d.kind = w.filled ? "order_filled" : "order_" + std::string(to_string(w.status));
    d.detail = "status=";
    d.detail += to_string(w.status);
    if (w.reason != RejectReason::none) {
      d.detail += " status_reason=";
      d.detail += reason_code(w.reason);
    }
    if (w.triggered) {
      d.detail += " triggered_at=";
      append_iso8601_ms(d.detail, w.triggered_at);
    }
    if (w.filled) {
      const WriteOp& f = w.fill;
      d.detail += " position_id=";
      f.ref.append_to(d.detail);
      for (const auto& [name, v] : {std::pair<const char*, Wide>{"price", f.price},
                                    {"size", f.size},
                                    {"fee", f.amount},
                                    {"realized_pnl", f.realized},
                                    {"locked", f.locked},
                                    {"entry_after", f.entry}}) {
        d.detail.append(" ").append(name).append("=");
        append_fixed(d.detail, v, kScaleDigits);
      }
    }
    d.detail += " at=";
    append_iso8601_ms(d.detail, w.at);
  } else if (!events_.empty()) {
    const Event& e = events_.front().first;
    d.table = "alert_events";
    d.row_id = std::to_string(e.seq);
    d.kind = "event";
    append_event_json(d.detail, e);
  }
  return d;
}

std::size_t Batch::transitions() const noexcept {
  std::size_t n = liquidations_.size();
  for (const auto& [id, w] : alerts_) n += w.transition != WriteKind::alert_anchored;
  return n + orders_.size();
}

std::vector<std::string> Batch::parameters() const {
  ArrayLiteral m_id, m_price, m_pnl;
  for (const WriteOp* op : by_id(marks_)) {
    m_id.add_uuid(op->id);
    m_price.add_fixed(op->price, kScaleDigits);
    m_pnl.add_fixed(op->amount, 18);
  }
  ArrayLiteral k_id, k_price, k_ts;
  for (const WriteOp* op : by_id(market_marks_)) {
    k_id.add_uuid(op->id);
    k_price.add_fixed(op->price, kScaleDigits);
    k_ts.add_time(op->ts);
  }
  ArrayLiteral l_id, l_price, l_ts, l_realized;
  for (const WriteOp& op : liquidations_) {
    l_id.add_uuid(op.id);
    l_price.add_fixed(op.price, kScaleDigits);
    l_ts.add_time(op.ts);
    l_realized.add_fixed(op.amount, kScaleDigits);
  }
  ArrayLiteral a_id, a_status, a_ts, a_anchor;
  for (const auto& [id, w] : alerts_) {
    a_id.add_uuid(id);
    a_status.add_word(w.transition == WriteKind::alert_triggered ? "triggered"
                      : w.transition == WriteKind::alert_expired ? "expired"
                                                                 : "active");
    if (w.transition == WriteKind::alert_anchored) {
      a_ts.add_null();
    } else {
      a_ts.add_time(w.ts);
    }
    if (w.anchor != 0) {
      a_anchor.add_fixed(w.anchor, kScaleDigits);
    } else {
      a_anchor.add_null();
    }
  }
  ArrayLiteral o_id, o_status, o_reason, o_triggered, o_position, o_price, o_size, o_fee,
      o_realized, o_locked, o_entry, o_at, o_flags, o_trade;
  // Positions a fill of this batch opens, so far (in the order the statement applies the fills):
  // a later fill into one of them may land although the position is not in the table yet. Known
  // here, the statement needs no join between the batch's own rows (a nested loop over a chain of
  // one position's fills was quadratic: issue 28).
  std::unordered_set<Uuid, UuidHash> opened;
  for (const auto* ow : orders_by_last()) {
    const Uuid& id = ow->first;
    const OrderWrite& w = ow->second;
    o_id.add_uuid(id);
    o_status.add_word(to_string(w.status));
    if (w.reason != RejectReason::none) {
      o_reason.add_word(reason_code(w.reason));
    } else {
      o_reason.add_null();
    }
    if (w.triggered) {
      o_triggered.add_time(w.triggered_at);
    } else {
      o_triggered.add_null();
    }
    o_at.add_time(w.at);
    if (w.filled) {
      const WriteOp& f = w.fill;
      o_position.add_uuid(f.ref);
      o_price.add_fixed(f.price, kScaleDigits);
      o_size.add_fixed(f.size, kScaleDigits);
      o_fee.add_fixed(f.amount, kScaleDigits);
      o_realized.add_fixed(f.realized, kScaleDigits);
      o_locked.add_fixed(f.locked, kScaleDigits);
      o_entry.add_fixed(f.entry, kScaleDigits);
      const bool opened_earlier = (f.flags & WriteOp::kOpened) == 0 && opened.contains(f.ref);
      if ((f.flags & WriteOp::kOpened) != 0) opened.insert(f.ref);
      o_flags.add_uint(f.flags | (w.rested ? kRestedFlag : 0) |
                       (opened_earlier ? kOpenedEarlierFlag : 0));
      o_trade.add_uuid(Matcher::trade_id_for(id));
    } else {
      for (ArrayLiteral* a :
           {&o_position, &o_price, &o_size, &o_fee, &o_realized, &o_locked, &o_entry, &o_trade})
        a->add_null();
      if (w.rested) {
        o_flags.add_uint(kRestedFlag);
      } else {
        o_flags.add_null();
      }
    }
  }
  ArrayLiteral e_seq, e_type, e_subject, e_user, e_market, e_time, e_body, e_recovered;
  std::string body;
  for (const auto& [e, recovered] : events_) {
    e_seq.add_uint(e.seq);
    e_type.add_word(to_string(e.type));
    e_subject.add_uuid(e.subject);
    e_user.add_uuid(e.user_id);
    if (e.has_market) {
      e_market.add_uuid(e.market_id);
    } else {
      e_market.add_null();
    }
    e_time.add_time(e.ts);
    body.clear();
    append_event_json(body, e);
    e_body.add_text(body);
    e_recovered.add_word(recovered ? "t" : "f");
  }
  return {m_id.done(),     m_price.done(),   m_pnl.done(),       l_id.done(),
          l_price.done(),  l_ts.done(),      l_realized.done(),  a_id.done(),
          a_status.done(), a_ts.done(),      a_anchor.done(),    e_seq.done(),
          e_type.done(),   e_subject.done(), e_user.done(),      e_market.done(),
          e_time.done(),   e_body.done(),    e_recovered.done(), o_id.done(),
          o_status.done(), o_reason.done(),  o_triggered.done(), o_position.done(),
          o_price.done(),  o_size.done(),    o_fee.done(),       o_realized.done(),
          o_locked.done(), o_entry.done(),   o_at.done(),        o_flags.done(),
          o_trade.done(),  k_id.done(),      k_price.done(),     k_ts.done()};
}

namespace {
constexpr const char* kBatchStatement = "laminator_batch";
}

void prepare_batch(pqxx::connection_base& c) {
  c.prepare(kBatchStatement, batch_statement());
  // Always the generic plan. A custom plan folds a 10k-row batch's arrays into constants, expects
  // 10k rows and merge-joins them against a full scan of the positions primary key; the generic
  // plan looks each row up by id. Measured on a 200k-position table: 160 ms -> 105 ms per 10k marks
  // (docs/performance.md). Without this, every new connection pays custom plans for 5 batches.
  c.set_variable("plan_cache_mode", "force_generic_plan");
}

namespace {
constexpr std::size_t kParameters = 36;
template <std::size_t... I>
pqxx::result exec_batch(pqxx::transaction_base& tx, const std::vector<std::string>& p,
                        std::index_sequence<I...>) {
  return tx.exec_prepared(kBatchStatement, p[I]...);
}
}  // namespace

BatchResult apply_batch(pqxx::transaction_base& tx, const Batch& b) {
  const std::vector<std::string> p = b.parameters();
  const pqxx::result r = exec_batch(tx, p, std::make_index_sequence<kParameters>{});
  BatchResult out;
  out.marks_applied = r[0][0].as<std::size_t>();
  out.fills_applied = r[0][2].as<std::size_t>();
  out.market_marks_applied = r[0][4].as<std::size_t>();
  auto parser = r[0][1].as_array();
  for (auto item = parser.get_next(); item.first != pqxx::array_parser::done;
       item = parser.get_next()) {
    if (item.first == pqxx::array_parser::string_value) out.conflicts.push_back(item.second);
  }
  return out;
}

const char* batch_statement() noexcept {
  // Transitions are conditional (status = 'active' / 'open', orders 'pending' / 'open'). A row that
  // did not change is either ours already (a retried batch whose first attempt committed: same
  // target status and time) or a conflict with the bot (it cancelled or closed the row first); only
  // conflicts are reported. A fill moves its position, trade, balance and audit rows only through
  // `ordered` (the order's own conditional update), so it lands whole or not at all, and once: a
  // retried fill finds its order filled already. Positions and balances move by deltas, so a fill
  // lost to the bot's cancel leaves the later ones right. Each row is modified once per statement
  // (a second modification of one row in one statement would be lost): marks skip positions that a
  // fill moves, a liquidation of a position that fills also moved is folded into its update, and a
  // wallet's balance deltas are summed before the one upsert.
  return R"SQL(
WITH m AS (
  SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::numeric[]) AS t(id, price, pnl)
), l AS (
  SELECT * FROM unnest($4::uuid[], $5::numeric[], $6::timestamptz[], $7::numeric[]) AS t(id, price, ts, realized)
), a AS (
  SELECT * FROM unnest($8::uuid[], $9::alert_status[], $10::timestamptz[], $11::numeric[]) AS t(id, status, ts, anchor)
), e AS (
  SELECT * FROM unnest($12::bigint[], $13::text[], $14::uuid[], $15::uuid[], $16::uuid[],
                       $17::timestamptz[], $18::text[], $19::boolean[])
           AS t(seq, type, subject_id, user_id, market_id, event_time, body, recovered)
), o AS (
  SELECT * FROM unnest($20::uuid[], $21::order_status[], $22::text[], $23::timestamptz[], $24::uuid[],
                       $25::numeric[], $26::numeric[], $27::numeric[], $28::numeric[], $29::numeric[],
                       $30::numeric[], $31::timestamptz[], $32::int[], $33::uuid[]) WITH ORDINALITY
           AS t(id, status, reason, triggered_at, position_id, price, size, fee, realized, locked,
                entry, at, flags, trade_id, ord)
), k AS (
  SELECT * FROM unnest($34::uuid[], $35::numeric[], $36::timestamptz[]) AS t(market_id, price, marked_at)
), market_marked AS (
  -- One row per market (docs/schema.md, "Marks"), never moved back to an older price: an update by
  -- primary key (HOT: no index covers the columns it sets), ...
  UPDATE market_marks x SET price = k.price, marked_at = k.marked_at, written_at = now()
  FROM k WHERE x.market_id = k.market_id AND x.marked_at <= k.marked_at
  RETURNING 1
), market_mark_new AS (
  -- ... and a market's first mark. A market the bot deleted meanwhile is skipped, not a foreign-key
  -- failure.
  INSERT INTO market_marks (market_id, price, marked_at, written_at)
  SELECT k.market_id, k.price, k.marked_at, now() FROM k JOIN markets mk ON mk.id = k.market_id
  WHERE NOT EXISTS (SELECT 1 FROM market_marks x WHERE x.market_id = k.market_id)
  ON CONFLICT (market_id) DO NOTHING
  RETURNING 1
), journaled AS (
  INSERT INTO alert_events (seq, type, subject_id, user_id, market_id, event_time, body, recovered)
  SELECT * FROM e ON CONFLICT (seq) DO NOTHING
  RETURNING seq
), order_prior AS MATERIALIZED (
  SELECT x.id, x.status FROM o JOIN orders x ON x.id = o.id
), ordered AS (
  UPDATE orders x SET status = o.status,
                      status_reason = COALESCE(o.reason, x.status_reason),
                      triggered_at = COALESCE(o.triggered_at, x.triggered_at),
                      filled_size = CASE WHEN o.status = 'filled' THEN o.size ELSE x.filled_size END,
                      avg_fill_price = CASE WHEN o.status = 'filled' THEN o.price ELSE x.avg_fill_price END,
                      total_fees = CASE WHEN o.status = 'filled' THEN o.fee ELSE x.total_fees END,
                      position_id = COALESCE(o.position_id, x.position_id),
                      filled_at = CASE WHEN o.status = 'filled' THEN o.at ELSE x.filled_at END,
                      updated_at = now()
  FROM o
  WHERE x.id = o.id AND x.status IN ('pending', 'open')
    AND (o.status <> 'filled' OR o.flags & 18 <> 0  -- opens it, or an earlier fill here did
         OR EXISTS (SELECT 1 FROM positions p WHERE p.id = o.position_id AND p.status = 'open'))
  RETURNING x.id, x.user_id, x.wallet_id, x.market_id, x.side, x.leverage, x.status,
            x.status_reason, x.triggered_at, x.filled_size, x.avg_fill_price, x.total_fees,
            x.position_id, x.filled_at, o.triggered_at IS NOT NULL AS triggered,
            COALESCE(o.flags & 8 <> 0, false) AS rested
), f AS (
  SELECT o.*, r.user_id, r.wallet_id, r.market_id, r.leverage AS order_leverage,
         CASE WHEN r.side IN ('long', 'sell') THEN 'long' ELSE 'short' END::position_side AS pside,
         CASE WHEN o.flags & 4 <> 0 THEN -o.size ELSE o.size END AS dsize
  FROM o JOIN ordered r ON r.id = o.id
  WHERE o.status = 'filled'
), traded AS (
  INSERT INTO trades (id, order_id, position_id, user_id, wallet_id, market_id, side, size, price,
                      fee, liquidity, realized_pnl, executed_at)
  SELECT f.trade_id, f.id, f.position_id, f.user_id, f.wallet_id, f.market_id, x.side, f.size,
         f.price, f.fee, CASE WHEN f.flags & 1 <> 0 THEN 'taker' ELSE 'maker' END::trade_liquidity,
         f.realized, f.at
  FROM f JOIN ordered x ON x.id = f.id
  ON CONFLICT (id) DO NOTHING
), fp AS (
  SELECT f.position_id AS id,
         (array_agg(f.user_id ORDER BY f.ord))[1] AS user_id,
         (array_agg(f.wallet_id ORDER BY f.ord))[1] AS wallet_id,
         (array_agg(f.market_id ORDER BY f.ord))[1] AS market_id,
         (array_agg(f.pside ORDER BY f.ord))[1] AS side,
         (array_agg(f.order_leverage ORDER BY f.ord))[1] AS leverage,
         (array_agg(f.entry ORDER BY f.ord DESC))[1] AS entry,
         (array_agg(f.price ORDER BY f.ord DESC))[1] AS last_price,
         min(f.at) AS opened_at, max(f.at) AS at,
         sum(f.dsize) AS dsize, sum(f.locked) AS dmargin, sum(f.realized) AS drealized
  FROM f GROUP BY f.position_id
), pos_prior AS MATERIALIZED (
  -- Which of the batch's positions exist already (updated), the rest are inserted.
  SELECT p.id FROM fp JOIN positions p ON p.id = fp.id
), pos_upd AS (
  UPDATE positions p SET
    size = p.size + fp.dsize,
    entry_price = fp.entry,
    current_price = COALESCE(l.price, fp.last_price),
    margin = p.margin + fp.dmargin,
    realized_pnl = COALESCE(l.realized, p.realized_pnl + fp.drealized),
    unrealized_pnl = CASE WHEN l.id IS NOT NULL OR p.size + fp.dsize = 0 THEN 0 ELSE p.unrealized_pnl END,
    status = CASE WHEN l.id IS NOT NULL THEN 'liquidated'
                  WHEN p.size + fp.dsize = 0 THEN 'closed' ELSE p.status END::position_status,
    closed_at = CASE WHEN l.id IS NOT NULL THEN l.ts WHEN p.size + fp.dsize = 0 THEN fp.at
                     ELSE p.closed_at END,
    leverage = CASE WHEN p.margin + fp.dmargin > 0
                    THEN LEAST(round((p.size + fp.dsize) * fp.entry / (p.margin + fp.dmargin), 2), 999999.99)
                    ELSE p.leverage END,
    updated_at = now()
  FROM fp JOIN pos_prior pr ON pr.id = fp.id LEFT JOIN l ON l.id = fp.id
  WHERE p.id = pr.id
  RETURNING p.id, p.user_id, p.wallet_id, p.market_id, p.margin, p.realized_pnl, p.status,
            p.closed_at
), marked AS (
  UPDATE positions p SET current_price = m.price, unrealized_pnl = m.pnl, updated_at = now()
  FROM m WHERE p.id = m.id AND p.status = 'open' AND m.id NOT IN (SELECT id FROM fp)
  RETURNING p.id
), liquidated AS (
  UPDATE positions p SET status = 'liquidated', closed_at = l.ts, current_price = l.price,
                         unrealized_pnl = 0, realized_pnl = l.realized, updated_at = now()
  FROM l WHERE p.id = l.id AND p.status = 'open' AND l.id NOT IN (SELECT id FROM fp)
  RETURNING p.id, p.user_id, p.wallet_id, p.market_id, p.margin, p.closed_at, p.current_price,
            p.realized_pnl
), pos_new AS (
  INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, current_price,
                         leverage, margin, unrealized_pnl, realized_pnl, status, opened_at,
                         closed_at, updated_at)
  SELECT fp.id, fp.user_id, fp.wallet_id, fp.market_id, fp.side, fp.dsize, fp.entry,
         COALESCE(l.price, fp.last_price), fp.leverage, fp.dmargin, 0,
         COALESCE(l.realized, fp.drealized),
         CASE WHEN l.id IS NOT NULL THEN 'liquidated' WHEN fp.dsize = 0 THEN 'closed'
              ELSE 'open' END::position_status,
         fp.opened_at, CASE WHEN l.id IS NOT NULL THEN l.ts WHEN fp.dsize = 0 THEN fp.at END, now()
  FROM fp LEFT JOIN l ON l.id = fp.id LEFT JOIN pos_prior pr ON pr.id = fp.id
  WHERE pr.id IS NULL
    -- After the positions this batch closes or liquidates: a side reopened in the same batch would
    -- otherwise meet its old row still open in uq_positions_open_side (the sub-statements' order is
    -- not defined; these uncorrelated sub-selects run first, once).
    AND (SELECT count(*) FROM pos_upd) >= 0 AND (SELECT count(*) FROM liquidated) >= 0
  RETURNING id, user_id, wallet_id, market_id, margin, realized_pnl, status, closed_at
), liquidated_all AS (
  SELECT id, wallet_id, market_id, margin FROM liquidated
  UNION ALL SELECT id, wallet_id, market_id, margin FROM pos_new WHERE status = 'liquidated'
  UNION ALL SELECT id, wallet_id, market_id, margin FROM pos_upd WHERE status = 'liquidated'
), bd AS (
  SELECT f.wallet_id, f.market_id, f.realized AS dbal, f.locked AS dlocked, true AS fill FROM f
  UNION ALL
  SELECT x.wallet_id, x.market_id, -x.margin, -x.margin, false FROM liquidated_all x
), bg AS MATERIALIZED (
  -- Per wallet and quote asset: the summed deltas and the row they move (looked up by index). A
  -- new row's id is derived from its wallet and asset, so each fill's audit row (fb) names it
  -- without a join between CTEs (their tiny estimates plan such joins as nested loops: quadratic
  -- in the batch).
  SELECT d.wallet_id, d.token, d.dbal, d.dlocked, d.from_fill, w.id IS NOT NULL AS existed,
         COALESCE(w.id, md5(d.wallet_id::text || '/' || d.token)::uuid) AS row_id
  FROM (SELECT bd.wallet_id, mk.quote_asset AS token, sum(bd.dbal) AS dbal,
               sum(bd.dlocked) AS dlocked, bool_or(bd.fill) AS from_fill
        FROM bd JOIN markets mk ON mk.id = bd.market_id
        GROUP BY bd.wallet_id, mk.quote_asset) d
  LEFT JOIN wallet_balances w ON w.wallet_id = d.wallet_id AND w.token_symbol = d.token
), bal_ins AS (
  -- Fills create the row (a wallet without one has a zero balance) ...
  INSERT INTO wallet_balances AS w (id, wallet_id, token_symbol, balance, locked_balance, updated_at)
  SELECT bg.row_id, bg.wallet_id, bg.token, bg.dbal, bg.dlocked, now() FROM bg WHERE bg.from_fill
  ON CONFLICT (wallet_id, token_symbol) DO UPDATE
    SET balance = w.balance + EXCLUDED.balance,
        locked_balance = w.locked_balance + EXCLUDED.locked_balance, updated_at = now()
), bal_upd AS (
  -- ... a liquidation alone only moves a row that exists.
  UPDATE wallet_balances w SET balance = w.balance + bg.dbal,
                               locked_balance = w.locked_balance + bg.dlocked, updated_at = now()
  FROM bg WHERE NOT bg.from_fill AND bg.existed AND w.id = bg.row_id
), alerted AS (
  UPDATE alerts x SET status = a.status,
                      triggered_at = CASE WHEN a.status = 'triggered' THEN a.ts ELSE x.triggered_at END,
                      anchor_price = COALESCE(a.anchor, x.anchor_price)
  FROM a WHERE x.id = a.id AND x.status = 'active'
  RETURNING x.id, x.user_id, x.status, x.triggered_at
), fa AS MATERIALIZED (
  -- Each fill's own transition of its position and wallet, as that fill left them: the batch's
  -- fills in order, from the rows as they were (read by index), so that two fills of one position
  -- in one flush are two audit rows, not one.
  SELECT f.id, f.position_id, f.user_id, f.wallet_id, f.dsize, f.entry, f.realized AS dbal,
         f.locked AS dlocked, f.ord, mk.quote_asset AS token,
         COALESCE(pp.size, 0) + sum(f.dsize) OVER w AS size_after,
         COALESCE(pp.margin, 0) + sum(f.locked) OVER w AS margin_after,
         COALESCE(pp.realized_pnl, 0) + sum(f.realized) OVER w AS realized_after,
         COALESCE(lag(f.entry) OVER w, pp.entry_price) AS entry_before
  FROM f LEFT JOIN positions pp ON pp.id = f.position_id
  JOIN markets mk ON mk.id = f.market_id
  WINDOW w AS (PARTITION BY f.position_id ORDER BY f.ord)
), fb AS MATERIALIZED (
  SELECT fa.*, COALESCE(b.balance, 0) + sum(fa.dbal) OVER wb AS balance_after,
         COALESCE(b.locked_balance, 0) + sum(fa.dlocked) OVER wb AS locked_after,
         b.id IS NOT NULL OR row_number() OVER wb > 1 AS existed,
         COALESCE(b.id, md5(fa.wallet_id::text || '/' || fa.token)::uuid) AS row_id
  FROM fa LEFT JOIN wallet_balances b ON b.wallet_id = fa.wallet_id AND b.token_symbol = fa.token
  WINDOW wb AS (PARTITION BY fa.wallet_id, fa.token ORDER BY fa.ord)
), audited AS (
  -- Every transition the engine makes, with the columns it changed (docs/schema.md).
  INSERT INTO audit_logs (user_id, action, resource_type, resource_id, old_values, new_values)
  SELECT x.user_id, 'alert.' || x.status, 'alert', x.id, jsonb_build_object('status', 'active'),
         jsonb_strip_nulls(jsonb_build_object('status', x.status, 'triggered_at', x.triggered_at))
  FROM alerted x WHERE x.status <> 'active'
  UNION ALL
  SELECT x.user_id, 'position.liquidated', 'position', x.id, jsonb_build_object('status', 'open'),
         jsonb_build_object('status', 'liquidated', 'closed_at', x.closed_at,
                            'current_price', x.current_price, 'realized_pnl', x.realized_pnl)
  FROM liquidated x
  UNION ALL
  SELECT x.user_id,
         'order.' || CASE WHEN x.status = 'open' AND x.triggered THEN 'triggered'
                          WHEN x.status = 'open' THEN 'rested' ELSE x.status::text END,
         'order', x.id,
         jsonb_build_object('status', CASE WHEN (x.triggered OR x.rested) AND x.status <> 'open'
                                           THEN 'open' ELSE pr.status::text END),
         jsonb_strip_nulls(jsonb_build_object(
           'status', x.status, 'status_reason', x.status_reason, 'triggered_at', x.triggered_at,
           'filled_size', CASE WHEN x.status = 'filled' THEN x.filled_size END,
           'avg_fill_price', CASE WHEN x.status = 'filled' THEN x.avg_fill_price END,
           'total_fees', CASE WHEN x.status = 'filled' THEN x.total_fees END,
           'position_id', CASE WHEN x.status = 'filled' THEN x.position_id END,
           'filled_at', x.filled_at))
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  UNION ALL
  -- A trigger coalesced with the fill or failure that followed it in the same flush: its own row.
  SELECT x.user_id, 'order.triggered', 'order', x.id, jsonb_build_object('status', pr.status),
         jsonb_build_object('status', 'open', 'triggered_at', x.triggered_at)
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  WHERE x.triggered AND x.status <> 'open'
  UNION ALL
  -- Likewise a limit that rested (pending -> open) and then filled, expired or was cancelled in
  -- the same flush.
  SELECT x.user_id, 'order.rested', 'order', x.id, jsonb_build_object('status', pr.status),
         jsonb_build_object('status', 'open')
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  WHERE x.rested AND NOT x.triggered AND x.status <> 'open'
  UNION ALL
  SELECT fb.user_id,
         'position.' || CASE WHEN fb.size_after = fb.dsize AND fb.dsize > 0 THEN 'opened'
                             WHEN fb.size_after = 0 THEN 'closed'
                             WHEN fb.dsize > 0 THEN 'increased' ELSE 'reduced' END,
         'position', fb.position_id,
         CASE WHEN fb.size_after <> fb.dsize THEN
           jsonb_build_object('size', fb.size_after - fb.dsize, 'entry_price', fb.entry_before,
                              'margin', fb.margin_after - fb.dlocked,
                              'realized_pnl', fb.realized_after - fb.dbal) END,
         jsonb_build_object('size', fb.size_after, 'entry_price', fb.entry,
                            'margin', fb.margin_after, 'realized_pnl', fb.realized_after,
                            'status', CASE WHEN fb.size_after = 0 THEN 'closed' ELSE 'open' END,
                            'order_id', fb.id)
  FROM fb
  UNION ALL
  -- A position that fills moved and that was liquidated in the same flush.
  SELECT x.user_id, 'position.liquidated', 'position', x.id, jsonb_build_object('status', 'open'),
         jsonb_build_object('status', 'liquidated', 'closed_at', x.closed_at,
                            'realized_pnl', x.realized_pnl)
  FROM (SELECT * FROM pos_new UNION ALL SELECT * FROM pos_upd) x
  WHERE x.status = 'liquidated'
  UNION ALL
  SELECT fb.user_id, 'balance.updated', 'wallet_balance', fb.row_id,
         CASE WHEN fb.existed THEN
           jsonb_build_object('token_symbol', fb.token, 'balance', fb.balance_after - fb.dbal,
                              'locked_balance', fb.locked_after - fb.dlocked) END,
         jsonb_build_object('token_symbol', fb.token, 'balance', fb.balance_after,
                            'locked_balance', fb.locked_after, 'order_id', fb.id)
  FROM fb
  UNION ALL
  -- A liquidation releases its margin and takes it from the wallet (a row that exists).
  SELECT wl.user_id, 'balance.updated', 'wallet_balance', b.id, NULL,
         jsonb_build_object('token_symbol', b.token_symbol, 'balance_change', -x.margin,
                            'locked_change', -x.margin, 'position_id', x.id)
  FROM liquidated_all x JOIN markets mk ON mk.id = x.market_id
  JOIN wallet_balances b ON b.wallet_id = x.wallet_id AND b.token_symbol = mk.quote_asset
  JOIN wallets wl ON wl.id = x.wallet_id
), lost AS (
  -- Fills that lost to the bot (their order was cancelled or changed first; a retried fill of ours
  -- is not one).
  -- NOT IN over `ordered` is a hashed subplan: an anti join between two CTEs (estimated at a row
  -- or ten) ran as a nested loop, quadratic in the batch's orders (20 s of a 20k-fill statement).
  SELECT o.position_id, x.wallet_id, x.market_id
  FROM o JOIN orders x ON x.id = o.id
  WHERE o.status = 'filled' AND o.id NOT IN (SELECT id FROM ordered)
    AND NOT (x.status = 'filled' AND x.filled_at IS NOT DISTINCT FROM o.at)
), reconciled AS (
  -- Such a fill moved the engine's position and wallet in memory, not in the database: the
  -- listener re-reads both rows (as if the bot had written them), so the engine follows the
  -- database again.
  SELECT pg_notify('laminator_changes',
                   json_build_object('t', n.t, 'op', 'RECONCILE', 'id', n.id)::text)
  FROM (SELECT 'positions' AS t, lost.position_id AS id FROM lost
        UNION
        SELECT 'wallet_balances', w.id
        FROM lost JOIN markets mk ON mk.id = lost.market_id
        JOIN wallet_balances w ON w.wallet_id = lost.wallet_id AND w.token_symbol = mk.quote_asset) n
), conflicts AS (
  SELECT 'positions:' || l.id || ':' || COALESCE(p.status::text, 'missing') AS c
  FROM l LEFT JOIN positions p ON p.id = l.id
  WHERE l.id NOT IN (SELECT id FROM liquidated_all)
    AND NOT (p.status IS NOT DISTINCT FROM 'liquidated' AND p.closed_at IS NOT DISTINCT FROM l.ts)
  UNION ALL
  SELECT 'alerts:' || a.id || ':' || COALESCE(x.status::text, 'missing')
  FROM a LEFT JOIN alerts x ON x.id = a.id
  WHERE a.id NOT IN (SELECT id FROM alerted)
    AND NOT (x.status IS NOT DISTINCT FROM a.status AND
             (a.status <> 'triggered' OR x.triggered_at IS NOT DISTINCT FROM a.ts))
    AND NOT (a.status = 'active' AND x.status IS NOT NULL)
  UNION ALL
  SELECT 'orders:' || o.id || ':' || COALESCE(x.status::text, 'missing')
  FROM o LEFT JOIN orders x ON x.id = o.id
  WHERE o.id NOT IN (SELECT id FROM ordered)
    AND NOT (x.status IS NOT DISTINCT FROM o.status AND
             (o.status <> 'filled' OR x.filled_at IS NOT DISTINCT FROM o.at))
)
SELECT (SELECT count(*) FROM marked), COALESCE((SELECT array_agg(c) FROM conflicts), '{}'),
       (SELECT count(*) FROM f), (SELECT count(*) FROM reconciled),
       (SELECT count(*) FROM market_marked) + (SELECT count(*) FROM market_mark_new)
)SQL";
}

}  // namespace lam::db
