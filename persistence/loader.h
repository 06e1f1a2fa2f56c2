#pragma once
/// Start-up (and resync) loading: markets, open positions and active alerts (and balances and
/// orders), streamed with COPY ... TO STDOUT over up to three connections that share one exported
/// snapshot, and parsed straight into engine specs.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/domain.h"
#include "engine/instruments.h"
#include "engine/matcher.h"
#include "engine/orders.h"

namespace pqxx {
class transaction_base;
}

namespace lam::db {

struct LoadCounts {
  std::size_t markets = 0;
  std::size_t positions = 0;
  std::size_t alerts = 0;
  std::size_t orders = 0;
  std::size_t balances = 0;
  std::size_t settings = 0;       ///< user_settings rows (with orders)
  std::size_t bad_rows = 0;       ///< rows that cannot even be named (logged, skipped)
  std::size_t rejected_rows = 0;  ///< rows with a value the engine refuses (passed on: rejected)
};

struct LoadSink {
  std::function<void(MarketRow&&)> market;
  std::function<void(PositionSpec&&)> position;  ///< `invalid` set: rejected by the matcher
  std::function<void(AlertSpec&&)> alert;
  /// Optional: called first with the row counts of the snapshot (markets, positions, alerts).
  std::function<void(std::size_t, std::size_t, std::size_t)> reserve;
  /// Optional (orders): every wallet balance (among the positions), then every pending or open
  /// order (after the last position, among the alerts).
  std::function<void(BalanceSpec&&)> balance = nullptr;
  std::function<void(OrderSpec&&)> order = nullptr;
  /// Optional: called once after the last row (not when the load fails).
  std::function<void()> done = nullptr;
  /// Optional (orders): every user_settings row, after the balances and before any order.
  std::function<void(UserSettingRow&&)> setting = nullptr;
};

/// A sink that loads straight into a matcher: interns (dex_name, symbol) into `instruments`,
/// reserves from the snapshot's counts, and collects the matcher's events (rejections) into
/// `events`. All three must outlive the load.
/// With `orders`, balances and orders are loaded into the matcher too (the daemon, replay, tests).
/// With `bulk` (the default), the load is one Matcher::begin_load() / end_load(): ladders are built
/// from sorted runs; without it every row is filed one insert at a time (the old path, measured
/// against in the loader benchmark).
[[nodiscard]] LoadSink matcher_sink(Matcher& matcher, InstrumentTable& instruments,
                                    std::vector<Event>& events, bool orders = false,
                                    bool bulk = true);

/// Not thread-safe: one Loader per thread (it keeps a reader connection for load_by_id).
class Loader {
 public:
  /// `parallel`: load_all() reads its three streams on three connections at once (one exported
  /// snapshot); without it, on one connection in turn.
  explicit Loader(std::string conninfo, bool parallel = true);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Every market, open position and active alert (and with the sink's `order`, every balance and
  /// watched order) of one REPEATABLE READ snapshot, exported by the first of up to three
  /// connections and imported by the others, each parsing its tables on a thread of its own. The
  /// sink is called on this thread alone, in an order the rows allow: every market first; then the
  /// positions and the balances, interleaved as they arrive; then, after the last position, the
  /// alerts and the orders, interleaved (a balance always before any order). Throws pqxx
  /// exceptions when the database cannot be read.
  LoadCounts load_all(const LoadSink& sink) const;

  /// The SELECTs load_all() streams with COPY, in order: markets, positions, alerts, then with
  /// `orders` balances and orders (what the database serves at a cold start; the loader benchmark
  /// times them alone, unparsed, as the floor a load cannot go under).
  [[nodiscard]] static std::vector<std::string> snapshot_queries(bool orders);

  /// The current rows with these ids, whatever their status (for change notifications). Ids that no
  /// longer exist are returned in `missing`.
  struct ById {
    std::vector<MarketRow> markets;
    std::vector<PositionSpec> positions;
    std::vector<AlertSpec> alerts;
    std::vector<OrderSpec> orders;
    std::vector<BalanceSpec> balances;
    std::vector<UserSettingRow> settings;
    std::vector<Uuid> missing_positions;
    std::vector<Uuid> missing_alerts;
    std::vector<Uuid> missing_orders;
    std::vector<Uuid> missing_balances;  ///< wallet_balances row ids
    std::vector<Uuid> missing_settings;  ///< user_settings row ids
    LoadCounts counts;                   ///< bad and rejected rows of this fetch
  };
  ById load_by_id(const std::vector<Uuid>& markets, const std::vector<Uuid>& positions,
                  const std::vector<Uuid>& alerts, const std::vector<Uuid>& orders = {},
                  const std::vector<Uuid>& balances = {}, const std::vector<Uuid>& settings = {});

 private:
  static void load_by_id_in(pqxx::transaction_base& tx, const std::vector<Uuid>& markets,
                            const std::vector<Uuid>& positions, const std::vector<Uuid>& alerts,
                            const std::vector<Uuid>& orders, const std::vector<Uuid>& balances,
                            const std::vector<Uuid>& settings, ById& out);

  std::string conninfo_;
  bool parallel_ = true;
  struct Reader;  // owns the pqxx::connection (its concrete type stays in loader.cpp)
  std::unique_ptr<Reader> reader_;  // reused by load_by_id; rebuilt after a failure
};

/// Splits one line of COPY text format into fields (unescaping \t, \n, \\ ...); a null field is
/// returned as nullopt. Fields view `line`, or `scratch` for the rare field that needed unescaping;
/// both must outlive `out`. Exposed for tests.
void split_copy_line(const std::string& line, std::vector<std::optional<std::string_view>>& out,
                     std::deque<std::string>& scratch);

}  // namespace lam::db
