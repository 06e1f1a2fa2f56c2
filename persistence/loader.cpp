#include "persistence/loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <type_traits>

#include "engine/fixed.h"
#include "engine/row_reader.h"
#include "persistence/pg_array.h"

namespace lam::db {
namespace {

using Fields = std::vector<std::optional<std::string_view>>;

// Columns selected for each table, in the order of the row reader's column enums. Timestamps are
// epoch seconds (a decimal, or +-Infinity), which the reader saturates; never a cast that can fail.
constexpr const char* kMarketCols =
    "id, symbol, dex_name, market_type, price_source, maintenance_margin_rate, maker_fee_rate, "
    "taker_fee_rate, min_order_size, max_order_size, tick_size, step_size, max_leverage, "
    "quote_asset, oracle_feed_id";
// Positions and orders carry their wallet's owner (wallets.user_id), so that a row naming another
// user's wallet is rejected however it got there (before migration 0012's constraints, say).
constexpr const char* kPositionCols =
    "p.id, p.user_id, p.market_id, p.side, p.size, p.entry_price, p.margin, p.realized_pnl, "
    "p.status, p.current_price, p.unrealized_pnl, extract(epoch FROM p.closed_at), p.wallet_id, "
    "p.leverage, w.user_id";
constexpr const char* kPositionsFrom =
    " FROM positions p LEFT JOIN wallets w ON w.id = p.wallet_id";
constexpr const char* kAlertCols =
    "id, user_id, market_id, alert_type, condition_type, target_price, target_percentage, "
    "target_value, anchor_price, extract(epoch FROM expires_at), metadata->>'window_seconds', "
    "status, extract(epoch FROM triggered_at)";

constexpr const char* kOrderCols =
    "o.id, o.user_id, o.wallet_id, o.market_id, o.order_type, o.side, o.execution, o.size, "
    "o.price, o.trigger_price, o.trigger_source, o.leverage, o.status, "
    "extract(epoch FROM o.triggered_at), extract(epoch FROM o.expires_at), o.filled_size, "
    "extract(epoch FROM o.filled_at), w.user_id, o.trail_rate, o.trail_distance, "
    "o.activation_price, extract(epoch FROM o.activated_at), tg.id, tg.best_price";
constexpr const char* kOrdersFrom =
    " FROM orders o LEFT JOIN wallets w ON w.id = o.wallet_id"
    " LEFT JOIN trail_groups tg ON o.trail_group_id IS NOT NULL AND tg.id = "
    "trail_root(o.trail_group_id)";
constexpr const char* kBalanceCols = "wallet_id, token_symbol, balance, locked_balance, id";
// user_settings: the engine's keys, their JSON values as text (`->>`: any JSON type, or NULL for a
// missing key or a value that is not an object); the row reader judges them (issue 33 §3).
constexpr const char* kSettingCols =
    "id, user_id, setting_key, setting_value->>'max_leverage', "
    "setting_value->>'stop_loss_percentage', setting_value->>'default_slippage'";
constexpr const char* kSettingsFrom = " FROM user_settings";
constexpr const char* kOrdersWatched = "o.status IN ('pending', 'open')";

// Active alerts to arm: not those the engine already finished but could not write (a dead letter of
// their transition: the event is journaled, so arming them again would fire them twice).
constexpr const char* kArmable =
    "status = 'active' AND NOT EXISTS (SELECT 1 FROM engine_dead_letters d WHERE d.table_name = "
    "'alerts' AND d.row_id = alerts.id::text AND d.kind IN ('alert_triggered', 'alert_expired'))";

/// The row reader's view of one COPY line or result row: columns by position.
class PositionalCells final : public rows::CellSource {
 public:
  explicit PositionalCells(const Fields& f) : f_(f) {}
  [[nodiscard]] rows::Cell cell(std::size_t i) const override {
    if (i >= f_.size() || !f_[i]) return {};
    return {true, *f_[i]};
  }

 private:
  const Fields& f_;
};

/// What the loader and the listener do with the reader's verdict: unreadable rows are counted and
/// skipped, rejected ones are counted and passed on (the matcher emits their rejection).
struct Verdicts {
  std::size_t* bad = nullptr;
  std::size_t* rejected = nullptr;
  const char* table = "";
  bool keep(const rows::RowReport& rep, const Uuid& id) {
    if (rep.ok()) return true;
    const bool unreadable = rep.verdict == rows::Verdict::unreadable;
    std::size_t& n = unreadable ? *bad : *rejected;
    if (n++ < 20) {
      spdlog::warn("loader: {} {} row {}: {}",
                   unreadable ? "skipping an unreadable" : "rejecting a", table, id.str(),
                   rep.detail);
    }
    return !unreadable;
  }
};

bool parse_market(const Fields& f, MarketRow& m, Verdicts& v) {
  return v.keep(rows::read_market(PositionalCells(f), m), m.spec.id);
}
bool parse_position(const Fields& f, PositionSpec& p, Verdicts& v) {
  return v.keep(rows::read_position(PositionalCells(f), p), p.id);
}
bool parse_alert(const Fields& f, AlertSpec& a, Verdicts& v) {
  return v.keep(rows::read_alert(PositionalCells(f), a), a.id);
}
bool parse_order(const Fields& f, OrderSpec& o, Verdicts& v) {
  return v.keep(rows::read_order(PositionalCells(f), o), o.id);
}
bool parse_balance(const Fields& f, BalanceSpec& b, Verdicts& v) {
  return v.keep(rows::read_balance(PositionalCells(f), b), b.row_id);
}
bool parse_setting(const Fields& f, UserSettingRow& s, Verdicts& v) {
  return v.keep(rows::read_setting(PositionalCells(f), s), s.id);
}

template <class Row, class Parse, class Emit>
std::size_t stream(pqxx::transaction_base& tx, const std::string& query, Parse parse, Emit emit,
                   LoadCounts& counts, const char* table) {
  Verdicts verdicts{&counts.bad_rows, &counts.rejected_rows, table};
  pqxx::stream_from s(tx, "(" + query + ")");  // 6.4: COPY <this> TO STDOUT
  std::string line;
  Fields fields;
  std::deque<std::string> scratch;
  std::size_t n = 0;
  while (s.get_raw_line(line)) {
    split_copy_line(line, fields, scratch);
    Row row;
    if (!parse(fields, row, verdicts)) continue;
    emit(std::move(row));
    ++n;
  }
  s.complete();
  return n;
}

template <class Row, class Parse>
void fetch(pqxx::transaction_base& tx, const std::string& query, const std::vector<Uuid>& ids,
           Parse parse, std::vector<Row>& out, std::vector<Uuid>* missing, const char* table,
           LoadCounts& counts) {
  if (ids.empty()) return;
  Verdicts verdicts{&counts.bad_rows, &counts.rejected_rows, table};
  const pqxx::result r = tx.exec_params(query, uuid_array(ids));
  Fields fields;
  for (const auto& row : r) {
    fields.clear();
    for (const auto& field : row) {
      fields.emplace_back(field.is_null() ? std::nullopt
                                          : std::optional<std::string_view>(
                                                std::string_view(field.c_str(), field.size())));
    }
    Row parsed;
    if (parse(fields, parsed, verdicts)) out.push_back(std::move(parsed));
  }
  // An unreadable row counts as missing: the engine stops acting on a row it can no longer read.
  if (missing == nullptr) return;
  for (const Uuid& id : ids) {
    const bool found = std::any_of(out.begin(), out.end(), [&](const Row& x) {
      if constexpr (std::is_same_v<Row, MarketRow>) {
        return x.spec.id == id;
      } else if constexpr (std::is_same_v<Row, BalanceSpec>) {
        return x.row_id == id;
      } else {
        return x.id == id;
      }
    });
    if (!found) missing->push_back(id);
  }
}

}  // namespace

void split_copy_line(const std::string& line, Fields& out, std::deque<std::string>& scratch) {
  out.clear();
  scratch.clear();
  std::size_t len = line.size();
  if (len > 0 && line[len - 1] == '\n') --len;  // libpqxx 6.4's get_raw_line keeps the newline
  std::size_t start = 0;
  while (start <= len) {
    std::size_t end = start;
    bool escaped = false;
    while (end < len && line[end] != '\t') {
      if (line[end] == '\\') {
        escaped = true;
        ++end;  // the escaped character cannot end the field
      }
      ++end;
    }
    end = std::min(end, len);
    const std::string_view raw(line.data() + start, end - start);
    if (raw == "\\N") {
      out.emplace_back(std::nullopt);
    } else if (!escaped) {
      out.emplace_back(raw);
    } else {
      std::string& u = scratch.emplace_back();
      for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '\\' && i + 1 < raw.size()) {
          switch (raw[++i]) {
            case 't':
              c = '\t';
              break;
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 'b':
              c = '\b';
              break;
            case 'f':
              c = '\f';
              break;
            case 'v':
              c = '\v';
              break;
            default:
              c = raw[i];
              break;
          }
        }
        u.push_back(c);
      }
      out.emplace_back(std::string_view(u));
    }
    start = end + 1;
  }
}

namespace {

/// Parsed rows handed from a parser thread to the caller's thread, in order.
struct Chunk {
  std::vector<MarketRow> markets;
  std::vector<PositionSpec> positions;
  std::vector<AlertSpec> alerts;
  std::vector<BalanceSpec> balances;
  std::vector<OrderSpec> orders;
  std::vector<UserSettingRow> settings;
  std::optional<std::array<std::size_t, 3>> reserve;
  std::exception_ptr error;
  std::size_t origin = 0;       // the stream it belongs to
  bool first_part_end = false;  // the stream's first table is complete (markets, balances)
  bool end = false;             // the stream is complete
  [[nodiscard]] std::size_t size() const {
    return markets.size() + positions.size() + alerts.size() + balances.size() + orders.size() +
           settings.size();
  }
};

/// Bounded hand-offs from the parser threads to the one thread that applies their rows: a queue per
/// stream, one lock. The consumer takes from whichever of the queues it may take from has a chunk;
/// a producer whose queue is full waits (a few chunks in flight per stream). close() makes further
/// pushes throw.
class ChunkHub {
 public:
  struct Closed {};
  explicit ChunkHub(std::size_t streams) : q_(streams) {}
  void push(std::size_t s, Chunk&& c) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || q_[s].size() < kCapacity; });
    if (closed_) throw Closed{};
    q_[s].push_back(std::move(c));
    not_empty_.notify_one();
  }
  /// A chunk from one of the streams in `mask` (bit i: stream i), waiting for one.
  Chunk pop_any(unsigned mask, std::size_t& from) {
    std::unique_lock lock(mu_);
    for (;;) {
      for (std::size_t i = 0; i < q_.size(); ++i) {
        if ((mask & (1U << i)) == 0 || q_[i].empty()) continue;
        Chunk c = std::move(q_[i].front());
        q_[i].pop_front();
        not_full_.notify_all();  // producers wait on different queues
        from = i;
        return c;
      }
      not_empty_.wait(lock);
    }
  }
  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
  }

 private:
  static constexpr std::size_t kCapacity = 8;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::vector<std::deque<Chunk>> q_;
  bool closed_ = false;
};

/// The load's snapshot, exported by the first connection and imported by the others, so that every
/// stream reads the same database state. The exporting transaction stays open until every other has
/// imported it (or given up).
class SharedSnapshot {
 public:
  explicit SharedSnapshot(int importers) : waiting_(importers) {}
  void publish(std::string id) {
    std::lock_guard lock(mu_);
    id_ = std::move(id);
    cv_.notify_all();
  }
  void fail() {  // the exporter gave up: importers stop waiting
    std::lock_guard lock(mu_);
    failed_ = true;
    cv_.notify_all();
  }
  /// The snapshot's id, or nullopt if the exporter failed.
  std::optional<std::string> await_id() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return id_.has_value() || failed_; });
    return id_;
  }
  void imported() {  // or failed before importing: either way, not to be waited for
    std::lock_guard lock(mu_);
    --waiting_;
    cv_.notify_all();
  }
  void await_imports() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_ <= 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<std::string> id_;
  bool failed_ = false;
  int waiting_ = 0;
};

/// pg_export_snapshot()'s ids are hex digits and dashes ("00000003-0000001B-1"); anything else is
/// refused rather than spliced into SET TRANSACTION SNAPSHOT (which takes no parameters).
bool snapshot_id_ok(const std::string& id) {
  return !id.empty() && id.size() < 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return c == '-' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  });
}

constexpr std::size_t kChunkRows = 4096;

}  // namespace

std::vector<std::string> Loader::snapshot_queries(bool orders) {
  std::vector<std::string> q = {
      std::string("SELECT ") + kMarketCols + " FROM markets",
      std::string("SELECT ") + kPositionCols + kPositionsFrom + " WHERE p.status = 'open'",
      std::string("SELECT ") + kAlertCols + " FROM alerts WHERE " + kArmable};
  if (orders) {
    q.push_back(std::string("SELECT ") + kBalanceCols + " FROM wallet_balances");
    q.push_back(std::string("SELECT ") + kOrderCols + kOrdersFrom + " WHERE " + kOrdersWatched);
    q.push_back(std::string("SELECT ") + kSettingCols + kSettingsFrom);
  }
  return q;
}

LoadCounts Loader::load_all(const LoadSink& sink) const {
  // Long: the three reader threads and the applying loop share the chunk hub, the exported snapshot
  // and the counts by reference; in one function their lifetimes (every thread joined before any of
  // them goes out of scope, on every path) are visible in one place.
  // Three streams: markets then positions; alerts; balances then orders. In parallel (the default),
  // each has a parser thread and a connection, all reading one exported snapshot; else one thread
  // reads them in turn on one connection. This thread applies their rows to the sink (the matcher)
  // in an order the rows allow: every market first; then positions and balances as they come; then,
  // once every position is in, alerts and orders as they come (an order may reduce a position and
  // spends its wallet's balance; a position_pnl alert starts from its positions).
  enum Stream : std::size_t { kMain, kAlerts, kOrders, kStreams };
  const bool want_reserve = static_cast<bool>(sink.reserve);
  const bool want_orders = static_cast<bool>(sink.order) && static_cast<bool>(sink.balance);
  const std::vector<std::string> queries = snapshot_queries(want_orders);
  ChunkHub hub(kStreams);
  SharedSnapshot snapshot(!parallel_ ? 0 : want_orders ? 2 : 1);
  std::array<LoadCounts, kStreams> counts{};

  // A chunk of stream `origin`, on its own queue (or, read in turn, all on the first).
  auto push = [&](Stream origin, Chunk&& c) {
    c.origin = origin;
    hub.push(parallel_ ? origin : kMain, std::move(c));
  };
  // Runs one stream's body, handing its end, its failure or the consumer's going away on; returns
  // whether it completed.
  auto run = [&](Stream out, auto&& body) {
    try {
      body();
      Chunk end;
      end.end = true;
      push(out, std::move(end));
      return true;
    } catch (const ChunkHub::Closed&) {
      return false;  // the consumer gave up
    } catch (...) {
      Chunk failed;
      failed.error = std::current_exception();
      try {
        push(out, std::move(failed));
      } catch (const ChunkHub::Closed&) {
      }
      return false;
    }
  };
  // Streams one table into chunks of stream `out`.
  auto chunked = [&](Stream out, pqxx::transaction_base& tx, const std::string& query, auto parse,
                     auto member, std::size_t& n, const char* table) {
    using Row = typename std::remove_reference_t<decltype(Chunk{}.*member)>::value_type;
    Chunk cur;
    n = stream<Row>(
        tx, query, parse,
        [&](Row&& row) {
          (cur.*member).push_back(std::move(row));
          if (cur.size() >= kChunkRows) {
            push(out, std::move(cur));
            cur = Chunk{};
          }
        },
        counts[out], table);
    if (cur.size() > 0) push(out, std::move(cur));
  };
  auto alerts_body = [&](pqxx::transaction_base& tx) {
    chunked(kAlerts, tx, queries[2], parse_alert, &Chunk::alerts, counts[kAlerts].alerts, "alerts");
  };
  auto orders_body = [&](pqxx::transaction_base& tx) {
    chunked(kOrders, tx, queries[3], parse_balance, &Chunk::balances, counts[kOrders].balances,
            "wallet_balances");
    // The users' settings before any order: an order is armed against its user's own limits.
    chunked(kOrders, tx, queries[5], parse_setting, &Chunk::settings, counts[kOrders].settings,
            "user_settings");
    Chunk balances_end;
    balances_end.first_part_end = true;
    push(kOrders, std::move(balances_end));
    chunked(kOrders, tx, queries[4], parse_order, &Chunk::orders, counts[kOrders].orders, "orders");
  };

  std::thread main_parser([&] {
    bool exported = false;
    std::unique_ptr<pqxx::connection> c;
    std::unique_ptr<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>> tx;
    const bool read = run(kMain, [&] {
      c = std::make_unique<pqxx::connection>(conninfo_);
      tx = std::make_unique<pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>>(*c, "load");
      if (parallel_) {
        snapshot.publish(tx->exec1("SELECT pg_export_snapshot()")[0].as<std::string>());
        exported = true;
      }
      if (want_reserve) {
        const pqxx::row r = tx->exec1(
            "SELECT (SELECT count(*) FROM markets), (SELECT count(*) FROM positions WHERE status = "
            "'open'), (SELECT count(*) FROM alerts WHERE " +
            std::string(kArmable) + ")");
        Chunk reserve;
        reserve.reserve = {r[0].as<std::size_t>(), r[1].as<std::size_t>(), r[2].as<std::size_t>()};
        push(kMain, std::move(reserve));
      }
      chunked(kMain, *tx, queries[0], parse_market, &Chunk::markets, counts[kMain].markets,
              "markets");
      Chunk markets_end;
      markets_end.first_part_end = true;
      push(kMain, std::move(markets_end));
      chunked(kMain, *tx, queries[1], parse_position, &Chunk::positions, counts[kMain].positions,
              "positions");
    });
    if (parallel_ && !exported) snapshot.fail();
    if (!parallel_ && read && run(kAlerts, [&] { alerts_body(*tx); }) && want_orders)
      run(kOrders, [&] { orders_body(*tx); });
    // The exported snapshot lives as long as this transaction: never end it while another stream
    // may still import it. Then end it (read only: a failure to commit loses nothing).
    snapshot.await_imports();
    try {
      if (tx) tx->commit();
    } catch (const std::exception&) {
    }
  });
  // A stream of its own connection, in the exported snapshot.
  auto imported_stream = [&](Stream out, auto&& body) {
    return std::thread([&, out, body] {
      bool told = false;
      const auto tell = [&] {
        if (!told) snapshot.imported();
        told = true;
      };
      run(out, [&] {
        pqxx::connection c(conninfo_);
        const std::optional<std::string> id = snapshot.await_id();
        if (!id) throw std::runtime_error("loader: the snapshot was not exported");
        if (!snapshot_id_ok(*id)) throw std::runtime_error("loader: unexpected snapshot id");
        pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c, "load");
        // Checked above to be hex digits and dashes: a literal needs no escaping.
        tx.exec0(std::string("SET TRANSACTION SNAPSHOT '").append(*id).append("'"));
        tell();
        body(tx);
        tx.commit();
      });
      tell();
    });
  };
  std::thread alerts_parser, orders_parser;
  if (parallel_) alerts_parser = imported_stream(kAlerts, alerts_body);
  if (parallel_ && want_orders) orders_parser = imported_stream(kOrders, orders_body);
  auto join_all = [&] {
    main_parser.join();
    if (alerts_parser.joinable()) alerts_parser.join();
    if (orders_parser.joinable()) orders_parser.join();
  };

  try {
    bool markets_done = false, positions_done = false, alerts_done = false;
    bool balances_done = !want_orders, orders_done = !want_orders;
    while (!positions_done || !alerts_done || !orders_done) {
      unsigned mask = 0;
      if (!positions_done) mask |= 1U << kMain;
      if (markets_done && positions_done && !alerts_done) mask |= 1U << kAlerts;
      if (markets_done && !orders_done && (!balances_done || positions_done)) mask |= 1U << kOrders;
      if (!parallel_) mask = 1U << kMain;  // one stream after another, in that order
      std::size_t queue = kMain;
      Chunk c = hub.pop_any(mask, queue);
      if (c.error) std::rethrow_exception(c.error);
      if (c.reserve && sink.reserve)
        sink.reserve((*c.reserve)[0], (*c.reserve)[1], (*c.reserve)[2]);
      for (MarketRow& m : c.markets) sink.market(std::move(m));
      for (PositionSpec& p : c.positions) sink.position(std::move(p));
      for (AlertSpec& a : c.alerts) sink.alert(std::move(a));
      for (BalanceSpec& b : c.balances) sink.balance(std::move(b));
      for (UserSettingRow& s : c.settings)
        if (sink.setting) sink.setting(std::move(s));
      for (OrderSpec& o : c.orders) sink.order(std::move(o));
      if (c.origin == kMain) {
        markets_done = markets_done || c.first_part_end;
        positions_done = c.end;
      } else if (c.origin == kAlerts) {
        alerts_done = c.end;
      } else {
        balances_done = balances_done || c.first_part_end;
        orders_done = c.end;
      }
    }
  } catch (...) {
    hub.close();
    join_all();
    throw;
  }
  join_all();
  if (sink.done) sink.done();
  LoadCounts n;
  for (const LoadCounts& k : counts) {
    n.markets += k.markets;
    n.positions += k.positions;
    n.alerts += k.alerts;
    n.orders += k.orders;
    n.balances += k.balances;
    n.settings += k.settings;
    n.bad_rows += k.bad_rows;
    n.rejected_rows += k.rejected_rows;
  }
  return n;
}

LoadSink matcher_sink(Matcher& matcher, InstrumentTable& instruments, std::vector<Event>& events,
                      bool orders, bool bulk) {
  LoadSink sink{[&matcher, &instruments](MarketRow&& m) {
                  const PriceFeed f = price_feed(m);
                  m.spec.instrument = instruments.intern(f.venue, f.symbol);
                  matcher.upsert_market(m.spec);
                },
                [&matcher, &events](PositionSpec&& p) { matcher.upsert_position(p, events); },
                [&matcher, &events](AlertSpec&& a) { matcher.upsert_alert(a, events); },
                [&matcher, bulk](std::size_t, std::size_t positions, std::size_t alerts) {
                  matcher.reserve(alerts, positions);
                  if (bulk) matcher.begin_load();
                }};
  if (bulk) sink.done = [&matcher] { matcher.end_load(); };
  if (orders) {
    sink.balance = [&matcher](BalanceSpec&& b) { matcher.upsert_balance(b); };
    sink.order = [&matcher, &events](OrderSpec&& o) { matcher.upsert_order(o, events); };
    sink.setting = [&matcher, &events](UserSettingRow&& s) { matcher.upsert_setting(s, events); };
  }
  return sink;
}

struct Loader::Reader {
  explicit Reader(const std::string& conninfo) : conn(conninfo) {}
  pqxx::connection conn;
};

Loader::Loader(std::string conninfo, bool parallel)
    : conninfo_(std::move(conninfo)), parallel_(parallel) {}
Loader::~Loader() = default;

Loader::ById Loader::load_by_id(const std::vector<Uuid>& markets,
                                const std::vector<Uuid>& positions, const std::vector<Uuid>& alerts,
                                const std::vector<Uuid>& orders, const std::vector<Uuid>& balances,
                                const std::vector<Uuid>& settings) {
  if (!reader_) reader_ = std::make_unique<Reader>(conninfo_);
  ById out;
  try {
    pqxx::read_transaction tx(reader_->conn);
    load_by_id_in(tx, markets, positions, alerts, orders, balances, settings, out);
    tx.commit();
  } catch (const pqxx::broken_connection&) {
    reader_.reset();
    throw;
  }
  return out;
}

void Loader::load_by_id_in(pqxx::transaction_base& tx, const std::vector<Uuid>& markets,
                           const std::vector<Uuid>& positions, const std::vector<Uuid>& alerts,
                           const std::vector<Uuid>& orders, const std::vector<Uuid>& balances,
                           const std::vector<Uuid>& settings, ById& out) {
  fetch(tx, std::string("SELECT ") + kMarketCols + " FROM markets WHERE id = ANY($1::uuid[])",
        markets, parse_market, out.markets, nullptr, "markets", out.counts);
  fetch(tx,
        std::string("SELECT ") + kPositionCols + kPositionsFrom + " WHERE p.id = ANY($1::uuid[])",
        positions, parse_position, out.positions, &out.missing_positions, "positions", out.counts);
  fetch(tx, std::string("SELECT ") + kAlertCols + " FROM alerts WHERE id = ANY($1::uuid[])", alerts,
        parse_alert, out.alerts, &out.missing_alerts, "alerts", out.counts);
  fetch(tx, std::string("SELECT ") + kOrderCols + kOrdersFrom + " WHERE o.id = ANY($1::uuid[])",
        orders, parse_order, out.orders, &out.missing_orders, "orders", out.counts);
  fetch(tx,
        std::string("SELECT ") + kBalanceCols + " FROM wallet_balances WHERE id = ANY($1::uuid[])",
        balances, parse_balance, out.balances, &out.missing_balances, "wallet_balances",
        out.counts);
  fetch(tx, std::string("SELECT ") + kSettingCols + kSettingsFrom + " WHERE id = ANY($1::uuid[])",
        settings, parse_setting, out.settings, &out.missing_settings, "user_settings", out.counts);
}

}  // namespace lam::db
