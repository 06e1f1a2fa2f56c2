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

namespace lam::db {
namespace {

using Fields = std::vector<std::optional<std::string_view>>;

// Columns selected for each table; the parsers below read them by position.
constexpr const char* kMarketCols =
    "id, symbol, dex_name, market_type, price_source, maintenance_margin_rate";
constexpr const char* kPositionCols =
    "id, user_id, market_id, side, size, entry_price, margin, realized_pnl, status, current_price, "
    "unrealized_pnl, floor(extract(epoch FROM closed_at) * 1000000)::bigint";
constexpr const char* kAlertCols =
    "id, user_id, market_id, alert_type, condition_type, target_price, target_percentage, "
    "target_value, "
    "anchor_price, floor(extract(epoch FROM expires_at) * 1000000)::bigint, "
    "metadata->>'window_seconds', status, "
    "floor(extract(epoch FROM triggered_at) * 1000000)::bigint";

struct RowParser {
  const Fields& f;
  bool ok = true;
  const char* bad = nullptr;

  const std::string_view* at(std::size_t i) { return i < f.size() && f[i] ? &*f[i] : nullptr; }
  Uuid uuid(std::size_t i) {
    const std::string_view* s = at(i);
    auto u = s ? Uuid::parse(*s) : std::nullopt;
    if (!u) fail("uuid");
    return u.value_or(Uuid{});
  }
  std::optional<Decimal> opt_decimal(std::size_t i) {
    const std::string_view* s = at(i);
    if (!s) return std::nullopt;
    const DecimalParse p = parse_decimal(*s);
    if (!p.ok()) fail("decimal");
    return p.value;
  }
  std::optional<std::int64_t> opt_raw(std::size_t i) {
    auto d = opt_decimal(i);
    if (!d) return std::nullopt;
    auto r = to_raw(d->nearest());
    if (!r) fail("out of range");
    return r;
  }
  std::int64_t raw(std::size_t i) {
    auto r = opt_raw(i);
    if (!r) fail("null");
    return r.value_or(0);
  }
  std::optional<std::int64_t> opt_int(std::size_t i) {
    const std::string_view* s = at(i);
    if (!s) return std::nullopt;
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || p != s->data() + s->size()) {
      fail("integer");
      return std::nullopt;
    }
    return v;
  }
  std::optional<TimeNs> opt_time_us(std::size_t i) {
    auto us = opt_int(i);
    if (!us) return std::nullopt;
    return *us * 1000;
  }
  void fail(const char* what) {
    if (ok) bad = what;
    ok = false;
  }
};

bool parse_market(const Fields& f, MarketRow& m) {
  RowParser p{f};
  m.spec.id = p.uuid(0);
  m.symbol = p.at(1) ? std::string(*p.at(1)) : "";
  m.dex_name = p.at(2) ? std::string(*p.at(2)) : "";
  m.spec.type =
      p.at(3) ? parse_market_type(*p.at(3)).value_or(MarketType::perpetual) : MarketType::perpetual;
  m.spec.source = default_price_source(m.spec.type);
  if (p.at(4)) m.spec.source = parse_price_source(*p.at(4)).value_or(m.spec.source);
  m.spec.mmr = p.opt_raw(5).value_or(kDefaultMmrRaw);
  return p.ok;
}

bool parse_position(const Fields& f, PositionSpec& s) {
  RowParser p{f};
  s.id = p.uuid(0);
  s.user_id = p.uuid(1);
  s.market_id = p.uuid(2);
  s.side = p.at(3) && *p.at(3) == "short" ? Side::short_side : Side::long_side;
  s.size = p.raw(4);
  s.entry_price = p.raw(5);
  s.margin = p.raw(6);
  if (auto d = p.opt_decimal(7)) s.realized_pnl = d->nearest();
  s.status = p.at(8) ? parse_position_status(*p.at(8)).value_or(PositionStatus::open)
                     : PositionStatus::open;
  s.current_price = p.opt_raw(9);
  if (auto d = p.opt_decimal(10)) s.unrealized_pnl = d->nearest();
  s.closed_at = p.opt_time_us(11);
  return p.ok;
}

bool parse_alert(const Fields& f, AlertSpec& a) {
  RowParser p{f};
  a.id = p.uuid(0);
  a.user_id = p.uuid(1);
  if (p.at(2)) a.market_id = p.uuid(2);
  a.type = p.at(3) ? parse_alert_type(*p.at(3)) : AlertType::unknown;
  a.condition = p.at(4) ? parse_condition_type(*p.at(4)) : ConditionType::unknown;
  a.target_price = p.opt_decimal(5);
  a.target_percentage = p.opt_decimal(6);
  a.target_value = p.opt_decimal(7);
  a.anchor_price = p.opt_raw(8);
  a.expires_at = p.opt_time_us(9);
  if (p.at(10)) {
    // a window that is not a positive integer is rejected by the matcher, not here
    std::int64_t w = 0;
    const std::string_view s = *p.at(10);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), w);
    a.window_seconds = ec == std::errc() && end == s.data() + s.size() ? w : 0;
  }
  a.status =
      p.at(11) ? parse_alert_status(*p.at(11)).value_or(AlertStatus::active) : AlertStatus::active;
  a.triggered_at = p.opt_time_us(12);
  return p.ok;
}

template <class Row, class Parse, class Emit>
std::size_t stream(pqxx::transaction_base& tx, const std::string& query, Parse parse, Emit emit,
                   std::size_t& bad, const char* table) {
  pqxx::stream_from s(tx, "(" + query + ")");  // 6.4: COPY <this> TO STDOUT
  std::string line;
  Fields fields;
  std::deque<std::string> scratch;
  std::size_t n = 0;
  while (s.get_raw_line(line)) {
    split_copy_line(line, fields, scratch);
    Row row;
    if (!parse(fields, row)) {
      if (bad++ < 20)
        spdlog::warn("loader: skipping a {} row that cannot be represented: {}", table,
                     line.substr(0, 60));
      continue;
    }
    emit(std::move(row));
    ++n;
  }
  s.complete();
  return n;
}

// A uuid[] array literal, passed as a parameter (never spliced into SQL).
std::string uuid_array(const std::vector<Uuid>& ids) {
  std::string s = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) s.push_back(',');
    ids[i].append_to(s);
  }
  s.push_back('}');
  return s;
}

template <class Row, class Parse>
void fetch(pqxx::transaction_base& tx, const std::string& query, const std::vector<Uuid>& ids,
           Parse parse, std::vector<Row>& out, std::vector<Uuid>* missing, const char* table) {
  if (ids.empty()) return;
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
    if (parse(fields, parsed)) {
      out.push_back(std::move(parsed));
    } else {
      spdlog::warn("loader: skipping a {} row that cannot be represented", table);
    }
  }
  if (missing == nullptr) return;
  for (const Uuid& id : ids) {
    const bool found = std::any_of(out.begin(), out.end(), [&](const Row& x) {
      if constexpr (std::is_same_v<Row, MarketRow>) {
        return x.spec.id == id;
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

/// Parsed rows handed from the parser thread to the caller's thread, in order.
struct Chunk {
  std::vector<MarketRow> markets;
  std::vector<PositionSpec> positions;
  std::vector<AlertSpec> alerts;
  std::optional<std::array<std::size_t, 3>> reserve;
  std::exception_ptr error;
  bool end = false;
  [[nodiscard]] std::size_t size() const {
    return markets.size() + positions.size() + alerts.size();
  }
};

/// A bounded blocking hand-off (a few chunks in flight); close() makes further pushes throw.
class ChunkPipe {
 public:
  struct Closed {};
  void push(Chunk&& c) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || q_.size() < kCapacity; });
    if (closed_) throw Closed{};
    q_.push_back(std::move(c));
    not_empty_.notify_one();
  }
  Chunk pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty(); });
    Chunk c = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return c;
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
  std::deque<Chunk> q_;
  bool closed_ = false;
};

constexpr std::size_t kChunkRows = 4096;

}  // namespace

LoadCounts Loader::load_all(const LoadSink& sink) const {
  // Two stages on two cores: a parser thread owns the connection and turns COPY lines into specs;
  // this thread applies them to the sink (the matcher). One snapshot, rows delivered in order.
  LoadCounts n;
  ChunkPipe pipe;
  const bool want_reserve = static_cast<bool>(sink.reserve);
  std::thread parser([&] {
    try {
      pqxx::connection c(conninfo_);
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c, "load");
      if (want_reserve) {
        const pqxx::row r = tx.exec(
            "SELECT (SELECT count(*) FROM markets), (SELECT count(*) FROM positions WHERE status = "
            "'open'), (SELECT count(*) FROM alerts WHERE status = 'active')")[0];
        Chunk counts;
        counts.reserve = {r[0].as<std::size_t>(), r[1].as<std::size_t>(), r[2].as<std::size_t>()};
        pipe.push(std::move(counts));
      }
      Chunk cur;
      auto flush = [&] {
        if (cur.size() > 0) pipe.push(std::move(cur));
        cur = Chunk{};
      };
      n.markets = stream<MarketRow>(
          tx, std::string("SELECT ") + kMarketCols + " FROM markets", parse_market,
          [&](MarketRow&& m) { cur.markets.push_back(std::move(m)); }, n.bad_rows, "markets");
      flush();
      n.positions = stream<PositionSpec>(
          tx, std::string("SELECT ") + kPositionCols + " FROM positions WHERE status = 'open'",
          parse_position,
          [&](PositionSpec&& p) {
            cur.positions.push_back(p);
            if (cur.positions.size() >= kChunkRows) flush();
          },
          n.bad_rows, "positions");
      flush();
      n.alerts = stream<AlertSpec>(
          tx, std::string("SELECT ") + kAlertCols + " FROM alerts WHERE status = 'active'",
          parse_alert,
          [&](AlertSpec&& a) {
            cur.alerts.push_back(a);
            if (cur.alerts.size() >= kChunkRows) flush();
          },
          n.bad_rows, "alerts");
      flush();
      tx.commit();
    } catch (const ChunkPipe::Closed&) {
      return;  // the consumer gave up
    } catch (...) {
      Chunk failed;
      failed.error = std::current_exception();
      try {
        pipe.push(std::move(failed));
      } catch (const ChunkPipe::Closed&) {
      }
      return;
    }
    Chunk end;
    end.end = true;
    try {
      pipe.push(std::move(end));
    } catch (const ChunkPipe::Closed&) {
    }
  });
  try {
    for (;;) {
      Chunk c = pipe.pop();
      if (c.error) std::rethrow_exception(c.error);
      if (c.end) break;
      if (c.reserve && sink.reserve)
        sink.reserve((*c.reserve)[0], (*c.reserve)[1], (*c.reserve)[2]);
      for (MarketRow& m : c.markets) sink.market(std::move(m));
      for (PositionSpec& p : c.positions) sink.position(std::move(p));
      for (AlertSpec& a : c.alerts) sink.alert(std::move(a));
    }
  } catch (...) {
    pipe.close();
    parser.join();
    throw;
  }
  parser.join();
  return n;
}

LoadSink matcher_sink(Matcher& matcher, InstrumentTable& instruments, std::vector<Event>& events) {
  return LoadSink{[&matcher, &instruments](MarketRow&& m) {
                    m.spec.instrument = instruments.intern(m.dex_name, m.symbol);
                    matcher.upsert_market(m.spec);
                  },
                  [&matcher](PositionSpec&& p) { matcher.upsert_position(p); },
                  [&matcher, &events](AlertSpec&& a) { matcher.upsert_alert(a, events); },
                  [&matcher](std::size_t, std::size_t positions, std::size_t alerts) {
                    matcher.reserve(alerts, positions);
                  }};
}

struct Loader::Reader {
  explicit Reader(const std::string& conninfo) : conn(conninfo) {}
  pqxx::connection conn;
};

Loader::Loader(std::string conninfo) : conninfo_(std::move(conninfo)) {}
Loader::~Loader() = default;

Loader::ById Loader::load_by_id(const std::vector<Uuid>& markets,
                                const std::vector<Uuid>& positions,
                                const std::vector<Uuid>& alerts) {
  if (!reader_) reader_ = std::make_unique<Reader>(conninfo_);
  ById out;
  try {
    pqxx::read_transaction tx(reader_->conn);
    load_by_id_in(tx, markets, positions, alerts, out);
    tx.commit();
  } catch (const pqxx::broken_connection&) {
    reader_.reset();
    throw;
  }
  return out;
}

void Loader::load_by_id_in(pqxx::transaction_base& tx, const std::vector<Uuid>& markets,
                           const std::vector<Uuid>& positions, const std::vector<Uuid>& alerts,
                           ById& out) {
  fetch(tx, std::string("SELECT ") + kMarketCols + " FROM markets WHERE id = ANY($1::uuid[])",
        markets, parse_market, out.markets, nullptr, "markets");
  fetch(tx, std::string("SELECT ") + kPositionCols + " FROM positions WHERE id = ANY($1::uuid[])",
        positions, parse_position, out.positions, &out.missing_positions, "positions");
  fetch(tx, std::string("SELECT ") + kAlertCols + " FROM alerts WHERE id = ANY($1::uuid[])", alerts,
        parse_alert, out.alerts, &out.missing_alerts, "alerts");
}

}  // namespace lam::db
