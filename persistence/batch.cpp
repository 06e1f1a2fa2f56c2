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
    case WriteKind::order_activated:
      activations_[op.id] = op;
      break;
    case WriteKind::order_placed:
      placements_.try_emplace(op.id, op);  // placed once
      break;
    case WriteKind::trail_group: {
      auto [it, inserted] = trail_groups_.try_emplace(op.id, op);
      if (!inserted) {
        const Uuid into = op.ref.is_nil() ? it->second.ref : op.ref;  // a meld stays
        it->second = op;
        it->second.ref = into;
      }
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
  activations_.clear();
  trail_groups_.clear();
  placements_.clear();
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
      // The bot's finished row (or, still pending / open, the row the writer has re-read: op
      // RECONCILE) reaches the engine, which voids the fill; a deleted row does not.
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
  // Placements first: a half never holds a transition of an order the other half inserts later.
  for (const WriteOp* op : by_id(placements_)) side().placements_.emplace(op->id, *op);
  for (const WriteOp* op : by_id(market_marks_)) side().market_marks_.emplace(op->id, *op);
  for (const WriteOp* op : by_id(trail_groups_)) side().trail_groups_.emplace(op->id, *op);
  for (const WriteOp* op : by_id(activations_)) side().activations_.emplace(op->id, *op);
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
  // Long: one branch per kind of row a batch holds, each naming its table, id and values.
  RowDescription d;
  if (!placements_.empty()) {
    const WriteOp& op = placements_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "orders";
    d.kind = "order_placed";
    d.detail = "opened_by=";
    op.ref.append_to(d.detail);
    d.detail += " trigger_price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    d.detail += " size=";
    append_fixed(d.detail, op.size, kScaleDigits);
    d.detail += " created_at=";
    append_iso8601_ms(d.detail, op.ts);
  } else if (!market_marks_.empty()) {
    const WriteOp& op = market_marks_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "market_marks";
    d.kind = "market_mark";
    d.detail = "price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    d.detail += " marked_at=";
    append_iso8601_ms(d.detail, op.ts);
  } else if (!trail_groups_.empty()) {
    const WriteOp& op = trail_groups_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "trail_groups";
    d.kind = "trail_group";
    d.detail = "best_price=";
    append_fixed(d.detail, op.price, kScaleDigits);
    if (!op.ref.is_nil()) {
      d.detail += " merged_into=";
      op.ref.append_to(d.detail);
    }
  } else if (!activations_.empty()) {
    const WriteOp& op = activations_.begin()->second;
    op.id.append_to(d.row_id);
    d.table = "orders";
    d.kind = "order_activated";
    d.detail = "activated_at=";
    append_iso8601_ms(d.detail, op.ts);
    d.detail += " trail_group_id=";
    op.ref.append_to(d.detail);
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
  // Long: the batch statement's 42 parameters (persistence/sql/batch.sql), built in parameter
  // order, one block per unnest() group.
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
  ArrayLiteral v_id, v_at, v_group;
  for (const WriteOp* op : by_id(activations_)) {
    v_id.add_uuid(op->id);
    v_at.add_time(op->ts);
    v_group.add_uuid(op->ref);
  }
  ArrayLiteral g_id, g_price, g_into;
  for (const WriteOp* op : by_id(trail_groups_)) {
    g_id.add_uuid(op->id);
    g_price.add_fixed(op->price, kScaleDigits);
    if (op->ref.is_nil()) {
      g_into.add_null();
    } else {
      g_into.add_uuid(op->ref);
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
  return {
      m_id.done(),     m_price.done(),    m_pnl.done(),       l_id.done(),        l_price.done(),
      l_ts.done(),     l_realized.done(), a_id.done(),        a_status.done(),    a_ts.done(),
      a_anchor.done(), e_seq.done(),      e_type.done(),      e_subject.done(),   e_user.done(),
      e_market.done(), e_time.done(),     e_body.done(),      e_recovered.done(), o_id.done(),
      o_status.done(), o_reason.done(),   o_triggered.done(), o_position.done(),  o_price.done(),
      o_size.done(),   o_fee.done(),      o_realized.done(),  o_locked.done(),    o_entry.done(),
      o_at.done(),     o_flags.done(),    o_trade.done(),     k_id.done(),        k_price.done(),
      k_ts.done(),     v_id.done(),       v_at.done(),        v_group.done(),     g_id.done(),
      g_price.done(),  g_into.done()};
}

std::vector<std::string> Batch::placement_parameters() const {
  ArrayLiteral id, by, trigger, size, at;
  for (const WriteOp* op : by_id(placements_)) {
    id.add_uuid(op->id);
    by.add_uuid(op->ref);
    trigger.add_fixed(op->price, kScaleDigits);
    size.add_fixed(op->size, kScaleDigits);
    at.add_time(op->ts);
  }
  return {id.done(), by.done(), trigger.done(), size.done(), at.done()};
}

namespace {
constexpr const char* kBatchStatement = "laminator_batch";
constexpr const char* kPlacementStatement = "laminator_placement";
}  // namespace

void prepare_batch(pqxx::connection_base& c) {
  c.prepare(kBatchStatement, batch_statement());
  c.prepare(kPlacementStatement, placement_statement());
  // Always the generic plan. A custom plan folds a 10k-row batch's arrays into constants, expects
  // 10k rows and merge-joins them against a full scan of the positions primary key; the generic
  // plan looks each row up by id. Measured on a 200k-position table: 160 ms -> 105 ms per 10k marks
  // (docs/performance.md). Without this, every new connection pays custom plans for 5 batches.
  c.set_variable("plan_cache_mode", "force_generic_plan");
}

namespace {
constexpr std::size_t kParameters = 42;
template <std::size_t... I>
pqxx::result exec_batch(pqxx::transaction_base& tx, const std::vector<std::string>& p,
                        std::index_sequence<I...>) {
  return tx.exec_prepared(kBatchStatement, p[I]...);
}
}  // namespace

BatchResult apply_batch(pqxx::transaction_base& tx, const Batch& b) {
  BatchResult out;
  if (b.has_placements()) {
    const std::vector<std::string> q = b.placement_parameters();
    const pqxx::result placed = tx.exec_prepared(kPlacementStatement, q[0], q[1], q[2], q[3], q[4]);
    out.placed = placed[0][0].as<std::size_t>();
  }
  const std::vector<std::string> p = b.parameters();
  const pqxx::result r = exec_batch(tx, p, std::make_index_sequence<kParameters>{});
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

// persistence/sql/batch.sql and placement.sql, embedded at build time (batch_sql.cpp,
// placement_sql.cpp).
extern const char* const kBatchSql;
extern const char* const kPlacementSql;

const char* placement_statement() noexcept {
  return kPlacementSql;
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
  return kBatchSql;
}

}  // namespace lam::db
