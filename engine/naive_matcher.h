#pragma once
/// Reference matcher: same inputs and events as `Matcher`, but every tick scans every alert and
/// position and evaluates the conditions of docs/semantics.md directly, with exact rational
/// comparisons instead of compiled ladder keys. Used as the oracle in randomized tests and as the
/// baseline in benchmarks. O(alerts + positions) per tick.

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/fixed.h"
#include "engine/orders.h"
#include "engine/tick.h"

namespace lam {

class NaiveMatcher {
 public:
  explicit NaiveMatcher(std::uint32_t slippage_bps = 0) : slippage_bps_(slippage_bps) {}
  void upsert_market(const MarketSpec& m);
  void upsert_position(const PositionSpec& p, std::vector<Event>& out);
  void upsert_alert(const AlertSpec& a, std::vector<Event>& out);
  void cancel_alert(const Uuid& id);
  void on_tick(const Tick& t, std::vector<Event>& out);
  // orders (naive_matcher_orders.cpp): every due order found by a scan of all orders
  void upsert_order(const OrderSpec& o, std::vector<Event>& out);
  void upsert_balance(const BalanceSpec& b);
  void set_user_settings(const Uuid& user, const UserSettings& s) { settings_[user] = s; }
  void on_clock(TimeNs now, std::vector<Event>& out);
  [[nodiscard]] std::optional<OrderView> order(const Uuid& id) const;
  [[nodiscard]] BalanceView balance(const Uuid& wallet, const Asset& token) const;
  /// size, entry, margin, realized_pnl of a position as held now.
  [[nodiscard]] std::optional<PositionSpec> position_spec(const Uuid& id) const;

  [[nodiscard]] std::optional<AlertStatus> alert_status(const Uuid& id) const;
  [[nodiscard]] std::optional<PositionStatus> position_status(const Uuid& id) const;

 private:
  std::uint32_t slippage_bps_ = 0;
  struct Market {
    MarketSpec spec;
    std::int64_t p = 0;
    bool has_p = false;
    std::int64_t bid = 0, ask = 0, last = 0;
    bool has_bbo = false, has_last = false;
    std::vector<std::pair<TimeNs, std::int64_t>>
        trades;  // every trade since the first volume alert
    bool recording = false;
  };
  struct Position {
    PositionSpec spec;
    PositionStatus status = PositionStatus::open;
    std::uint64_t upserted = 0;  // the open position of a side is the last one upserted or opened
  };
  struct Alert {
    AlertSpec spec;
    AlertStatus status = AlertStatus::active;
    std::optional<std::int64_t> anchor;
    bool armed = false;
  };
  struct Order {
    OrderSpec spec;
    OrderView view;
    bool armed = false;                   // the engine watches it
    bool triggered = false;               // a conditional order past its trigger
    bool resting = false;                 // a limit on the book
    bool waiting = false;                 // waiting for a tradeable price
    std::uint64_t rested_at = 0;          // tick count when it started resting
    std::optional<std::int64_t> extreme;  // a trailing stop activated: its best price since
  };
  struct Fired {
    unsigned __int128 distance;
    Uuid id;
    std::size_t index;
  };

  [[nodiscard]] bool alert_holds(const Alert& a, const Market& m, TimeNs t) const;
  [[nodiscard]] std::optional<std::int64_t> ordering_key(const Alert& a, std::int64_t p) const;
  Event base_event(EventType type, TimeNs ts, const Alert& a, const Market& m);

  std::vector<Market> markets_;
  std::unordered_map<Uuid, std::size_t, UuidHash> market_index_;
  std::unordered_map<InstrumentId, std::size_t> instrument_index_;
  std::vector<Position> positions_;
  std::unordered_map<Uuid, std::size_t, UuidHash> position_index_;
  std::vector<Alert> alerts_;
  std::unordered_map<Uuid, std::size_t, UuidHash> alert_index_;
  std::uint64_t next_seq_ = 1;
  TimeNs last_ts_ = 0;
  std::uint64_t ticks_ = 0;
  std::vector<Order> orders_;
  std::unordered_map<Uuid, std::size_t, UuidHash> order_index_;
  std::vector<BalanceView> balances_;
  std::unordered_map<Uuid, UserSettings, UuidHash> settings_;
  std::uint64_t upserts_ = 0;

  Event order_event(EventType type, TimeNs ts, const Order& o);
  BalanceView& balance_ref(const Uuid& wallet, const Asset& token);
  [[nodiscard]] std::optional<std::size_t> open_position(const Uuid& user, const Uuid& market,
                                                         Side side) const;
  [[nodiscard]] std::optional<std::int64_t> tradeable(const Market& m, bool buy) const;
  /// A trailing stop's best price and activation, kept across the bot's edit of its row.
  struct Carry {
    std::int64_t extreme = 0;
    TimeNs at = 0;
    Uuid market;
    bool buy = false;
    PriceSource src = PriceSource::mark;
  };
  void arm(std::size_t i, std::vector<Event>& out, const std::optional<Carry>& carry = {});
  void execute(std::size_t i, TimeNs ts, std::vector<Event>& out);
  void fill(std::size_t i, std::int64_t px, bool taker, TimeNs ts, std::vector<Event>& out);
  void finish(std::size_t i, OrderStatus s, RejectReason why, EventType type, TimeNs ts,
              std::vector<Event>& out);
  void position_gone(std::size_t pos, TimeNs ts, std::vector<Event>& out);
  /// Protective stops asked for by fills (docs/semantics.md, "The users' own settings").
  struct Protective {
    OrderSpec spec;
    Uuid position;
    TimeNs ts = 0;
  };
  std::vector<Protective> protect_;
  void place_protective(std::vector<Event>& out);
  void run_orders(Market& m, const Tick& t, std::vector<Event>& out);
  void expire(Market& m, TimeNs now, std::vector<Event>& out);
};

}  // namespace lam
