#include "persistence/batch.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "engine/event_json.h"

namespace lam::db {
namespace {

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

}  // namespace

void Batch::add(const WriteOp& op) {
  switch (op.kind) {
    case WriteKind::position_mark:
      marks_[op.id] = op;
      break;
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
  }
}

void Batch::add_event(const Event& e, bool recovered) {
  events_.emplace_back(e, recovered);
  if (e.seq > max_seq_) max_seq_ = e.seq;
}

void Batch::clear() {
  events_.clear();
  max_seq_ = 0;
  marks_.clear();
  liquidations_.clear();
  alert_index_.clear();
  alerts_.clear();
}

std::pair<Batch, Batch> Batch::split() const {
  std::pair<Batch, Batch> out;
  const std::size_t half = rows() / 2;
  std::size_t i = 0;
  auto side = [&]() -> Batch& { return i++ < half ? out.first : out.second; };
  std::vector<const WriteOp*> sorted;
  for (const auto& [id, op] : marks_) sorted.push_back(&op);
  std::sort(sorted.begin(), sorted.end(),
            [](const WriteOp* a, const WriteOp* b) { return a->id < b->id; });
  for (const WriteOp* op : sorted) side().marks_.emplace(op->id, *op);
  for (const WriteOp& op : liquidations_) side().liquidations_.push_back(op);
  for (const auto& [id, w] : alerts_) {
    Batch& b = side();
    b.alert_index_.emplace(id, b.alerts_.size());
    b.alerts_.emplace_back(id, w);
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
  if (!marks_.empty()) {
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
  return n;
}

std::vector<std::string> Batch::parameters() const {
  // Marks in id order (PostgreSQL's uuid order): the lookups walk the primary key and, for rows
  // inserted in id order, the heap in order, and every batch locks its rows in the same order.
  std::vector<const WriteOp*> sorted;
  sorted.reserve(marks_.size());
  for (const auto& [id, op] : marks_) sorted.push_back(&op);
  std::sort(sorted.begin(), sorted.end(),
            [](const WriteOp* a, const WriteOp* b) { return a->id < b->id; });
  ArrayLiteral m_id, m_price, m_pnl;
  for (const WriteOp* op : sorted) {
    m_id.add_uuid(op->id);
    m_price.add_fixed(op->price, kScaleDigits);
    m_pnl.add_fixed(op->amount, 18);
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
  return {m_id.done(),     m_price.done(),    m_pnl.done(),  l_id.done(),       l_price.done(),
          l_ts.done(),     l_realized.done(), a_id.done(),   a_status.done(),   a_ts.done(),
          a_anchor.done(), e_seq.done(),      e_type.done(), e_subject.done(),  e_user.done(),
          e_market.done(), e_time.done(),     e_body.done(), e_recovered.done()};
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

BatchResult apply_batch(pqxx::transaction_base& tx, const Batch& b) {
  const std::vector<std::string> p = b.parameters();
  const pqxx::result r =
      tx.exec_prepared(kBatchStatement, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9],
                       p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17], p[18]);
  BatchResult out;
  out.marks_applied = r[0][0].as<std::size_t>();
  auto parser = r[0][1].as_array();
  for (auto item = parser.get_next(); item.first != pqxx::array_parser::done;
       item = parser.get_next()) {
    if (item.first == pqxx::array_parser::string_value) out.conflicts.push_back(item.second);
  }
  return out;
}

const char* batch_statement() noexcept {
  // Transitions are conditional (status = 'active' / 'open'). A row that did not change is either
  // ours already (a retried batch whose first attempt committed: same target status and time) or a
  // conflict with the bot (it cancelled or closed the row first); only conflicts are reported.
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
), journaled AS (
  INSERT INTO alert_events (seq, type, subject_id, user_id, market_id, event_time, body, recovered)
  SELECT * FROM e ON CONFLICT (seq) DO NOTHING
  RETURNING seq
), marked AS (
  UPDATE positions p SET current_price = m.price, unrealized_pnl = m.pnl, updated_at = now()
  FROM m WHERE p.id = m.id AND p.status = 'open'
  RETURNING p.id
), liquidated AS (
  UPDATE positions p SET status = 'liquidated', closed_at = l.ts, current_price = l.price,
                         unrealized_pnl = 0, realized_pnl = l.realized, updated_at = now()
  FROM l WHERE p.id = l.id AND p.status = 'open'
  RETURNING p.id
), alerted AS (
  UPDATE alerts x SET status = a.status,
                      triggered_at = CASE WHEN a.status = 'triggered' THEN a.ts ELSE x.triggered_at END,
                      anchor_price = COALESCE(a.anchor, x.anchor_price)
  FROM a WHERE x.id = a.id AND x.status = 'active'
  RETURNING x.id
), conflicts AS (
  SELECT 'positions:' || l.id || ':' || COALESCE(p.status::text, 'missing') AS c
  FROM l LEFT JOIN positions p ON p.id = l.id
  WHERE l.id NOT IN (SELECT id FROM liquidated)
    AND NOT (p.status IS NOT DISTINCT FROM 'liquidated' AND p.closed_at IS NOT DISTINCT FROM l.ts)
  UNION ALL
  SELECT 'alerts:' || a.id || ':' || COALESCE(x.status::text, 'missing')
  FROM a LEFT JOIN alerts x ON x.id = a.id
  WHERE a.id NOT IN (SELECT id FROM alerted)
    AND NOT (x.status IS NOT DISTINCT FROM a.status AND
             (a.status <> 'triggered' OR x.triggered_at IS NOT DISTINCT FROM a.ts))
    AND NOT (a.status = 'active' AND x.status IS NOT NULL)
)
SELECT (SELECT count(*) FROM marked), COALESCE((SELECT array_agg(c) FROM conflicts), '{}')
)SQL";
}

}  // namespace lam::db
