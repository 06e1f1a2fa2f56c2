#pragma once
/// The matcher: marks positions, liquidates them and fires alerts, one call per input.
///
/// Pure and single-threaded: it owns no socket, thread, clock or database handle. Results are
/// appended to the caller's `std::vector<Event>`; the caller drains it. Per tick the work is
/// O(1) when nothing is crossed and O(log n + fired) otherwise (volume alerts: + the windows of the
/// market). Per-position values (current price, uPnL) are computed on demand by `position()`.

#include <array>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <memory_resource>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/domain.h"
#include "engine/event.h"
#include "engine/flat_map.h"
#include "engine/id_table.h"
#include "engine/ladder.h"
#include "engine/orders.h"
#include "engine/pool.h"
#include "engine/thresholds.h"
#include "engine/tick.h"
#include "engine/trail_book.h"
#include "engine/volume_book.h"

namespace lam {

struct MatcherConfig {
  std::uint64_t first_seq = 1;  ///< seq of the first event (the daemon resumes from its journal)
  /// Keep the ids of limit orders that start resting for drain_rested() (the daemon persists the
  /// transition; replay and benchmarks do not, and must not accumulate them).
  bool report_rested = false;
  /// Keep trailing stops' activations and their groups' moves for drain_trails() (the daemon
  /// persists them; replay and benchmarks do not).
  bool report_trails = false;
  /// Basis points a paper taker fill moves against the trader (docs/semantics.md); at most 1000.
  std::uint32_t slippage_bps = 0;
};

/// What the matcher holds beyond one fixed-size record per alert, position and order
/// (docs/performance.md, "Memory per armed object").
struct MatcherFootprint {
  std::size_t alert_extras = 0;     ///< expiries, anchors, targets, volume windows, fire times
  std::size_t position_extras = 0;  ///< wide PnL or leverage, closes, loaded prices
  std::size_t order_extras = 0;     ///< times, fills
  std::size_t interned_ids = 0;     ///< distinct users and wallets
  std::size_t groups = 0;           ///< (user, market) pairs a position_pnl alert watches
  std::size_t loaded_notes = 0;     ///< notes of positions showing a loaded price, by market
};

struct MatcherStats {
  std::uint64_t ticks = 0;
  std::uint64_t ticks_unknown_instrument = 0;
  std::uint64_t ticks_slow_path =
      0;  ///< ticks that crossed, expired, anchored or traded into volume
  std::uint64_t liquidations = 0;
  std::uint64_t alerts_triggered = 0;
  std::uint64_t alerts_expired = 0;
  std::uint64_t alerts_rejected = 0;
  std::uint64_t alerts_anchored = 0;
  std::uint64_t positions_unarmed = 0;   ///< open positions on an unknown market
  std::uint64_t positions_rejected = 0;  ///< open positions with values the engine cannot hold
  std::uint64_t orders_triggered = 0;
  std::uint64_t orders_filled = 0;
  std::uint64_t orders_cancelled = 0;  ///< by the engine (no_position, position_closed)
  std::uint64_t orders_expired = 0;
  std::uint64_t orders_rejected = 0;
  std::uint64_t orders_revivals_refused = 0;  ///< finished orders set back to pending / open
  std::uint64_t orders_fills_voided = 0;      ///< fills the bot's change to the order beat
  std::uint64_t orders_placed = 0;            ///< protective stops of users' stop_loss_percentage
  std::uint64_t funding_ticks = 0;            ///< funding announcements taken (never a price)
};

/// A market's latest funding announcement: the rate its venue names for the next settlement.
struct FundingNotice {
  std::int64_t rate = 0;       ///< 1e-18 units (kRateScale); positive: longs pay shorts
  TimeNs at = 0;               ///< the settlement it is for; 0: none received
  std::int64_t pay_price = 0;  ///< raw; 0 = the mark (Hyperliquid: its oracle price)
  TimeNs received = 0;         ///< exch_ts of the tick that brought it
  friend bool operator==(const FundingNotice&, const FundingNotice&) = default;
};

/// A position as it stands now (materialized on demand).
struct PositionView {
  Uuid id;
  PositionStatus status = PositionStatus::open;
  std::optional<std::int64_t> current_price;  ///< raw
  Wide unrealized_pnl = 0;                    ///< 1e-18 units (exact)
  Wide realized_pnl = 0;                      ///< raw (1e-9)
  std::optional<TimeNs> closed_at;
  // As held now (engine-opened positions and fills change them):
  Uuid user_id, wallet_id, market_id;
  Side side = Side::long_side;
  std::int64_t size = 0, entry_price = 0, margin = 0, leverage = 0;
};

struct AlertView {
  Uuid id;
  AlertStatus status = AlertStatus::active;
  std::optional<TimeNs> triggered_at;
  std::optional<std::int64_t> anchor_price;  ///< raw
  bool armed = false;                        ///< active and watched (not rejected, market known)
};

inline constexpr int kPnlDigits = 18;  ///< digits of PositionView::unrealized_pnl

/// Process-wide malloc setting for the matcher's large tables (slot arrays, id indexes): blocks of
/// 8 MiB and more are mapped on their own at any time. By default glibc raises that threshold as
/// large blocks are freed, so that a table which grows by doubling ends up in the heap, and the
/// block it outgrew stays resident as a hole. Mapped, a table's outgrown block goes back to the
/// system, and capacity it has not used yet is never touched. Call once at start-up, before any
/// thread allocates (`laminator` does; the memory benchmark too, to measure the same thing).
void map_large_tables() noexcept;

/// ROE% (docs/semantics.md): unrealized_pnl x 100 / margin, truncated toward zero to 1e-9 (raw);
/// nullopt without margin or when |ROE%| >= 1e29. The positions_live view computes the same value.
[[nodiscard]] std::optional<Wide> roe_percent(Wide unrealized_pnl, std::int64_t margin) noexcept;

/// A trailing stop started to trail: its row's activated_at and trail_group_id.
struct TrailActivation {
  Uuid order;
  TimeNs at = 0;
  Uuid group;
};

/// A market's reference price as the matcher holds it (for the marks the writer publishes).
struct MarketPrice {
  Uuid market_id;
  std::int64_t price = 0;  ///< raw
};

class Matcher {
 public:
  explicit Matcher(MatcherConfig cfg = {});
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;
  ~Matcher();

  /// Pre-sizes the id indexes and slot arrays for a bulk load (optional; avoids rehashing).
  void reserve(std::size_t alerts, std::size_t positions);
  /// A bulk load (the cold start): between begin_load() and end_load(), what upserts file in the
  /// ladders is staged and each ladder is sorted once at end_load(), built from its sorted run
  /// instead of one insert at a time. Anything else in between stays right (a staged ladder is
  /// sorted before it is searched), only slower.
  void begin_load() noexcept { loading_ = true; }
  void end_load();
  /// Adds or updates a market. A changed maintenance margin rate re-keys its positions.
  void upsert_market(const MarketSpec& m);
  /// Adds or replaces a position (by id). Open ones are armed for liquidation and feed the owner's
  /// position_pnl alerts. An open position whose values the row reader refused (`p.invalid`) is not
  /// armed: it is forgotten, and position.rejected is emitted.
  void upsert_position(const PositionSpec& p, std::vector<Event>& out);
  /// Emits market.unserved for a market no feed serves (the caller knows the feeds; the matcher
  /// numbers the event in the one sequence).
  void report_unserved_market(const Uuid& market, std::vector<Event>& out);
  /// The writer found that the transition `voided` (alert.triggered / alert.expired,
  /// position.liquidated, order.triggered / cancelled / expired / rejected) of `subject` was not
  /// stored: the bot changed the row first. Emits transition.voided (its user and market from the
  /// record held, if any); the row as the bot left it reaches the engine through the listener.
  void report_voided(EventType voided, const Uuid& subject, std::vector<Event>& out);
  /// Forgets a position (deleted by the bot).
  void remove_position(const Uuid& id);
  /// Adds or replaces an alert (by id). An active alert that cannot be armed yields alert.rejected.
  void upsert_alert(const AlertSpec& a, std::vector<Event>& out);
  /// Marks an alert cancelled and disarms it; no event.
  void cancel_alert(const Uuid& id);
  /// Releases a finished alert (triggered, expired, cancelled, or rejected) once it has been
  /// persisted; its memory is reused. Returns false (and keeps it) if it is armed or unknown.
  bool forget_alert(const Uuid& id);

  /// Adds or replaces an order (by id). A paper order is validated against its market, then filled,
  /// rested or armed on its trigger (docs/semantics.md, "Orders"); a live stop / stop_limit is
  /// armed on its trigger only. Any other status disarms it (the bot cancelled it); no event.
  void upsert_order(const OrderSpec& o, std::vector<Event>& out);
  /// The order's row as the writer asked it re-read (a fill of ours lost to the bot: op RECONCILE).
  /// A row still pending / open while the order is held filled here means the fill was never
  /// stored (the position it moved was closed first): order.fill_voided (reason position_closed),
  /// then the order is armed again from the row. Any other row: as upsert_order.
  void reconcile_order(const OrderSpec& o, std::vector<Event>& out);
  /// Forgets an order (deleted by the bot).
  void remove_order(const Uuid& id);
  /// A user's own settings (loaded or changed by the bot; all unset: forgotten). An order armed
  /// from now on above the user's maximum leverage is rejected (above_user_leverage); a paper
  /// taker fill from now on slips by the user's slippage instead of MatcherConfig's.
  void set_user_settings(const Uuid& user, const UserSettings& s);
  [[nodiscard]] UserSettings user_settings(const Uuid& user) const;
  /// The ids of the user_settings rows followed now.
  void for_each_setting_row(const std::function<void(const Uuid&)>& f) const;
  /// One user_settings row (loaded or changed by the bot): its key's part of the user's settings.
  /// A rejected row (`invalid`) counts as unset and emits settings.rejected; a row of another key
  /// (or moved to one) counts for nothing.
  void upsert_setting(const UserSettingRow& row, std::vector<Event>& out);
  /// The bot deleted a user_settings row (by its id): its part is unset.
  void remove_setting(const Uuid& row_id);
  /// Sets a wallet's balance in one asset (loaded or changed by the bot).
  void upsert_balance(const BalanceSpec& b);
  /// The bot deleted a wallet_balances row (by its row id): that wallet has none of the asset.
  void remove_balance(const Uuid& row_id);
  /// The clock: expires alerts and orders whose `expires_at` <= now on markets with no tick since.
  void on_clock(TimeNs now, std::vector<Event>& out);

  /// The feed of `instrument` stopped being live for trades and/or BBO: the quotes it gave are not
  /// tradeable any more (docs/semantics.md, "Integrity"). Orders of its market that arm or
  /// decide from now on wait for the next BBO or trade tick the caller passes, which it does only
  /// once the feed is live again. Unknown instruments are ignored.
  void lapse_quotes(InstrumentId instrument, bool trades, bool bbo) noexcept;

  /// Processes one tick; appends the events it causes to `out`.
  void on_tick(const Tick& t, std::vector<Event>& out);
  /// The latest funding announcement of the market `id` (none received: `at` = 0); nullopt for
  /// an unknown market.
  [[nodiscard]] std::optional<FundingNotice> funding(const Uuid& market) const;

  [[nodiscard]] std::optional<PositionView> position(const Uuid& id) const;
  [[nodiscard]] std::optional<AlertView> alert(const Uuid& id) const;
  [[nodiscard]] std::optional<OrderView> order(const Uuid& id) const;
  /// The row an order was last upserted with.
  [[nodiscard]] std::optional<OrderSpec> order_spec(const Uuid& id) const;
  [[nodiscard]] BalanceView balance(const Uuid& wallet, const Asset& token) const;
  void for_each_order(const std::function<void(const OrderView&)>& f) const;
  void for_each_balance(const std::function<void(const BalanceView&)>& f) const;
  /// The id of the position an order opens (derived from the order's id, so a replay or a crash
  /// recovery makes the same one).
  [[nodiscard]] static Uuid position_id_for(const Uuid& order_id) noexcept;
  /// The id of the trade row of an order's (whole) fill, derived the same way.
  [[nodiscard]] static Uuid trade_id_for(const Uuid& order_id) noexcept;
  /// The id of the protective stop placed on the position an order's fill opened (a user's
  /// risk_management.stop_loss_percentage), derived the same way.
  [[nodiscard]] static Uuid protective_id_for(const Uuid& order_id) noexcept;
  /// The protective stop of a user's stop_loss_percentage for the position `opener` (a paper order
  /// of `size`) opened at `entry`, or none (no setting, or no positive trigger on the tick).
  [[nodiscard]] static std::optional<OrderSpec> protective_stop(const OrderSpec& opener,
                                                                std::int64_t size,
                                                                std::int64_t entry,
                                                                const UserSettings& s,
                                                                const TradingRules& rules) noexcept;
  /// Moves out the ids of the limit orders that started resting (status pending -> open) since the
  /// last call: a transition with no event, which the writer persists.
  void drain_rested(std::vector<Uuid>& out);
  [[nodiscard]] bool has_rested() const noexcept { return !rested_.empty(); }
  /// Moves out the trailing stops activated and the trailing groups made, moved or melded since
  /// the last call (MatcherConfig::report_trails), in the order they happened: the writer keeps
  /// each order's activation and each group's best price and root (docs/design/trailing-stops.md).
  void drain_trails(std::vector<TrailActivation>& activations,
                    std::vector<TrailGroupChange>& groups);
  [[nodiscard]] bool has_trails() const noexcept { return trails_changed_; }
  /// Releases a finished order (filled, cancelled, expired, failed) once it has been persisted.
  /// Returns false (and keeps it) if it is still watched or unknown.
  bool forget_order(const Uuid& id);
  /// Visits every held position / alert in slot order (snapshots; not for the hot path).
  void for_each_position(const std::function<void(const PositionView&)>& f) const;
  void for_each_alert(const std::function<void(const AlertView&)>& f) const;
  /// Visits the positions held in slots [begin, min(end, position_slots())): an incremental sweep
  /// (the daemon's periodic marks) that never holds the thread for long.
  void for_each_position_in(std::size_t begin, std::size_t end,
                            const std::function<void(const PositionView&)>& f) const;
  [[nodiscard]] std::size_t position_slots() const noexcept;
  /// Order records held, live or free for reuse: bounded by the most orders ever held at once.
  [[nodiscard]] std::size_t order_slots() const noexcept;
  /// Whether `spec` is what its alert was last upserted with (false if the alert is unknown): lets
  /// a caller skip an upsert that changes nothing (a resync re-reading unchanged rows). Compared by
  /// the alert's identity, type and status and a 64-bit fingerprint of the rest: the matcher keeps
  /// what it needs to arm an alert, not the whole row.
  [[nodiscard]] bool alert_unchanged(const AlertSpec& spec) const;
  /// Reference price of a market, if a source tick has set it.
  [[nodiscard]] std::optional<std::int64_t> reference_price(const Uuid& market_id) const;
  /// Markets are held in slots [0, market_slots()); the reference price of the one in `slot`, if
  /// a source tick has set it (a sweep over markets; not for the hot path).
  [[nodiscard]] std::size_t market_slots() const noexcept { return quotes_.size(); }
  [[nodiscard]] std::optional<MarketPrice> market_price(std::size_t slot) const;

  [[nodiscard]] const MatcherStats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::uint64_t next_seq() const noexcept { return next_seq_; }
  /// Alerts / positions currently held (armed or not, not yet forgotten / removed).
  [[nodiscard]] std::size_t alert_count() const noexcept { return alert_index_.size(); }
  [[nodiscard]] MatcherFootprint footprint() const noexcept;
  [[nodiscard]] std::size_t position_count() const noexcept { return position_index_.size(); }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  static constexpr std::int64_t kUpEmpty = Ladder<Direction::up>::kEmpty;
  static constexpr std::int64_t kDownEmpty = Ladder<Direction::down>::kEmpty;
  /// What a tick reads to learn that it crosses nothing: one cache line per market, written only
  /// when a ladder's front changes (`refresh`). The fences are by tick kind (mark, trade, BBO mid):
  /// a tick of kind k with price x is quiet when lo[k] < x < hi[k]; each fence folds every ladder
  /// that kind can cross (alerts and liquidations on the market's source kind, order triggers by
  /// their source, a trade printing through a resting limit) and the flags that make every tick
  /// of a kind slow (alerts waiting for an anchor, volume alerts, orders waiting for a price).
  struct alignas(64) MarketHot {
    std::array<std::int64_t, 3> hi{kUpEmpty, kUpEmpty, kUpEmpty};
    std::array<std::int64_t, 3> lo{kDownEmpty, kDownEmpty, kDownEmpty};
    TimeNs expiry_min = std::numeric_limits<TimeNs>::max();
    PriceSource source = PriceSource::mark;
    bool has_pending = false;
    bool has_volume = false;
    bool has_orders = false;   // any order armed, resting or waiting here
    bool has_waiting = false;  // orders waiting for a tradeable price
  };
  /// What every tick writes (one cache line per market): the reference price, the tradeable
  /// prices (trades and BBOs; a mark is never a fill price), and the fronts of the resting limits
  /// a BBO is checked against (beside the bid and ask they are compared with). An array, so that a
  /// tick stores at indexes chosen by its kind instead of branching on it; slot 0 takes the
  /// stores a kind does not keep.
  struct alignas(64) Quotes {
    enum Slot : std::size_t { kDump, kLastPx, kBid, kAsk, kRef, kLimBuy, kLimSell, kSeen };
    /// kSeen: bit k for a tick of kind k seen, kRefBit for a reference price
    static constexpr std::int64_t kRefBit = 8;
    static constexpr std::int64_t kLastBit = 2, kBboBit = 4;  ///< the tradeable quotes' bits
    std::array<std::int64_t, 8> s{0, 0, 0, 0, 0, kDownEmpty, kUpEmpty, 0};
    [[nodiscard]] bool has_p() const noexcept { return (s[kSeen] & kRefBit) != 0; }
    [[nodiscard]] std::int64_t p() const noexcept { return s[kRef]; }
    [[nodiscard]] bool has_last() const noexcept { return (s[kSeen] & kLastBit) != 0; }
    [[nodiscard]] bool has_bbo() const noexcept { return (s[kSeen] & kBboBit) != 0; }
    /// Forgets the trade and/or BBO quotes: nothing fills at them until a fresh tick.
    void lapse(bool trades, bool bbo) noexcept {
      s[kSeen] &= ~((trades ? kLastBit : 0) | (bbo ? kBboBit : 0));
    }
  };
  struct ExpiryEntry {
    TimeNs at;
    Uuid id;
    std::uint32_t slot;
    bool order = false;  // an order's expiry (else an alert's)
    bool operator<(const ExpiryEntry& o) const noexcept {
      return at != o.at ? at < o.at : id < o.id;
    }
  };
  struct MarketCold;
  struct PositionState;
  struct PositionExtra;
  struct OpenKeys;
  struct AlertState;
  struct AlertExtra;
  struct OrderState;
  struct OrderExtra;
  struct Group;
  /// (user, market, side), the user by its ids_ handle.
  struct SideKey {
    std::uint32_t user;
    std::uint32_t market;
    Side side;
    bool operator==(const SideKey&) const = default;
  };
  struct SideKeyHash {
    std::size_t operator()(const SideKey& k) const noexcept {
      const std::uint64_t x = (static_cast<std::uint64_t>(k.user) << 32 | k.market) ^
                              (static_cast<std::uint64_t>(k.side) << 63);
      return static_cast<std::size_t>((x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL);
    }
  };
  struct BalanceKey {
    Uuid wallet;
    Asset token;
    bool operator==(const BalanceKey&) const = default;
  };
  struct BalanceKeyHash {
    std::size_t operator()(const BalanceKey& k) const noexcept {
      return UuidHash{}(k.wallet) ^ std::hash<std::string_view>{}(k.token.view());
    }
  };
  struct Due;
  /// (user, market), the user by its ids_ handle.
  struct GroupKey {
    std::uint32_t user;
    std::uint32_t market;
    bool operator==(const GroupKey&) const = default;
  };
  struct GroupKeyHash {
    std::size_t operator()(const GroupKey& k) const noexcept {
      const std::uint64_t x = static_cast<std::uint64_t>(k.user) << 32 | k.market;
      return static_cast<std::size_t>((x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL);
    }
  };

  void refresh(std::uint32_t mi);
  /// Files a ladder entry: inserted, or staged during a bulk load.
  template <class L, class IdOf>
  void file(L& ladder, std::int64_t key, const Uuid& id, std::uint32_t slot, const IdOf& id_of) {
    if (loading_) {
      ladder.stage(key, id, slot);
    } else {
      ladder.insert(key, id, slot, id_of);
    }
  }
  // What each kind of ladder calls to read its owners' ids (engine/matcher_state.h).
  struct AlertIds;
  struct PositionIds;
  struct OrderIds;
  void on_funding(std::uint32_t mi, const Tick& t) noexcept;
  void slow_path(std::uint32_t mi, const Tick& t, bool set_p, std::vector<Event>& out);
  void liquidate(std::uint32_t mi, const Tick& t, std::vector<Event>& out);
  void expire(std::uint32_t mi, const Tick& t, std::vector<Event>& out);
  void anchor_pending(std::uint32_t mi, const Tick& t, std::vector<Event>& out);
  void fire(std::uint32_t mi, const Tick& t, bool set_p, std::vector<Event>& out);
  // orders (matcher_orders.cpp)
  void run_orders(std::uint32_t mi, const Tick& t, std::vector<Event>& out);
  /// The price x of source s through the market's trailing books: the members it triggers are due.
  void take_trailing(MarketCold& c, std::size_t s, std::int64_t x, std::vector<Due>& due);
  void arm_order(std::uint32_t slot, TimeNs ts, std::vector<Event>& out);
  /// order.fill_voided for the fill held of `o` (it will never be stored), with `why`.
  void void_fill(const OrderSpec& o, RejectReason why, std::vector<Event>& out);
  /// Stores `o` in `slot` (kNone: a new record) and arms it (upsert_order's checks done).
  void place_order(std::uint32_t slot, const OrderSpec& o, std::vector<Event>& out);
  [[nodiscard]] OrderSpec spec_of(std::uint32_t slot) const;
  OrderExtra& order_extra_of(std::uint32_t slot);  ///< allocated on first use
  [[nodiscard]] const OrderExtra* order_extra_if(std::uint32_t slot) const noexcept;
  void clear_order(std::uint32_t slot);  ///< back to a free record, its ids and extra released
  void disarm_order(std::uint32_t slot);
  void end_order(std::uint32_t slot, OrderStatus status, EventType type, RejectReason why,
                 TimeNs ts, std::vector<Event>& out);
  void expire_order(std::uint32_t slot, TimeNs ts, std::vector<Event>& out);
  void cancel_order(std::uint32_t slot, RejectReason why, TimeNs ts, std::vector<Event>& out);
  void reject_order(std::uint32_t slot, RejectReason why, TimeNs ts, std::vector<Event>& out);
  /// Fills now, rests, or waits for a price (a paper order past its trigger, or a market/limit).
  void execute(std::uint32_t slot, TimeNs ts, std::vector<Event>& out);
  void fill(std::uint32_t slot, std::int64_t px, bool taker, TimeNs ts, std::vector<Event>& out);
  void cancel_reduce_orders(const SideKey& k, TimeNs ts, std::vector<Event>& out);
  [[nodiscard]] std::optional<std::int64_t> tradeable(std::uint32_t mi, bool buy) const noexcept;
  [[nodiscard]] std::size_t source_index(std::uint32_t mi, TriggerSource s) const noexcept;
  /// The price of a source index (kMark, kLast, kMid) now, if the market has one.
  [[nodiscard]] std::optional<std::int64_t> source_price(std::uint32_t mi,
                                                         std::size_t src) const noexcept;
  /// A pending trailing stop: trailing as before the bot's edit, or from its row's best price, or
  /// activated now at the source's price, or filed to wait for its activation price or the
  /// source's next price. `restart` (the market's reference source changed): only the last.
  void arm_trailing(std::uint32_t slot, std::size_t src, TimeNs ts, bool restart = false);
  /// Takes an order off its trigger ladder or out of its trailing book (a known market's).
  void unfile_trigger(std::uint32_t slot);
  /// Starts it trailing from `extreme` in its market's book of its source and side: a fresh
  /// activation (at the price now, founding group `group` if it joins none), or `restored` with
  /// the best price and group it had.
  void activate_trailing(std::uint32_t slot, std::int64_t extreme, TimeNs ts, const Uuid& group,
                         bool restored);
  void on_position_gone(std::uint32_t slot, TimeNs ts, std::vector<Event>& out);
  void trigger(std::uint32_t slot, const Tick& t, std::int64_t price, std::vector<Event>& out);

  void arm_alert(std::uint32_t slot, const AlertSpec& s, std::vector<Event>& out);
  AlertExtra& extra_of(std::uint32_t slot);  ///< allocated on first use
  [[nodiscard]] const AlertExtra* extra_if(const AlertState& a) const noexcept;
  void clear_alert(std::uint32_t slot);  ///< back to a free record, its user and extra released
  void arm_keys(std::uint32_t slot, const Keys& k);
  void disarm_alert(std::uint32_t slot);
  void attach_position(std::uint32_t slot);
  void detach_position(std::uint32_t slot);
  void rekey_group(std::uint32_t group);
  /// The (user, market) group, created with what its open positions add up to.
  std::uint32_t group_for(std::uint32_t user, std::uint32_t market);
  // positions' records (matcher.cpp)
  PositionExtra& position_extra_of(std::uint32_t slot);  ///< allocated on first use
  [[nodiscard]] const PositionExtra* position_extra_if(std::uint32_t slot) const;
  void trim_position_extra(std::uint32_t slot);  ///< released when it holds nothing
  [[nodiscard]] Wide realized_of(std::uint32_t slot) const;
  void set_realized(std::uint32_t slot, Wide realized);
  [[nodiscard]] std::int64_t leverage_of(std::uint32_t slot) const;
  void set_leverage(std::uint32_t slot, std::int64_t leverage);
  void clear_position(std::uint32_t slot);  ///< back to a free record, its ids and extra released
  void note_loaded(std::uint32_t mi, std::uint32_t slot);  ///< shows a loaded price until mi's
  void release_loaded(std::uint32_t mi);  ///< its positions' loaded prices, once it has its own
  /// Next event in sequence, with the fields every event shares.
  Event make_event(EventType type, TimeNs ts, const Uuid& subject, const Uuid& user,
                   const std::optional<Uuid>& market,
                   std::optional<std::int64_t> price = std::nullopt) noexcept;

  [[nodiscard]] PositionView view(std::uint32_t slot) const;
  [[nodiscard]] AlertView view_alert(std::uint32_t slot) const;
  [[nodiscard]] OrderView view_order(std::uint32_t slot) const;

  MatcherConfig cfg_;
  std::uint64_t next_seq_;
  TimeNs last_ts_ = 0;
  std::uint32_t refreshing_ = kNone;  ///< the market a tick's slow path refreshes when it ends
  bool loading_ = false;              ///< between begin_load() and end_load()
  MatcherStats stats_;
  std::unique_ptr<std::pmr::unsynchronized_pool_resource> pool_;

  std::vector<MarketHot> hot_;
  std::vector<MarketCold> cold_;
  std::vector<std::uint32_t> instrument_to_market_;
  std::unordered_map<Uuid, std::uint32_t, UuidHash> market_index_;

  // Id indexes: 8 bytes a slot, the ids themselves read from the records (AlertIds, ...).
  std::vector<PositionState> positions_;
  SlotIndex<Uuid, UuidHash> position_index_;
  Pool<PositionExtra> position_extra_;
  FlatMap<std::uint32_t, std::uint32_t, std::hash<std::uint32_t>> position_extra_at_;  // slot ->
  std::vector<AlertState> alerts_;
  SlotIndex<Uuid, UuidHash> alert_index_;
  std::vector<std::uint32_t> free_alerts_;  // forgotten slots, reused first
  Pool<AlertExtra> alert_extra_;
  IdTable ids_;  // users and wallets, interned: records hold 4-byte handles
  std::vector<std::uint32_t> free_positions_;  // removed slots, reused first
  std::vector<std::uint32_t> free_orders_;     // removed slots, reused first
  std::vector<Group> groups_;
  std::vector<Quotes> quotes_;  // per market
  std::vector<OrderState> orders_;
  SlotIndex<Uuid, UuidHash> order_index_;
  Pool<OrderExtra> order_extra_;
  [[nodiscard]] std::uint32_t alert_slot(const Uuid& id) const;  ///< kNone when not held
  [[nodiscard]] std::uint32_t position_slot(const Uuid& id) const;
  [[nodiscard]] std::uint32_t order_slot(const Uuid& id) const;
  /// The open position per (user, market, side) that orders act on (hedge mode): the one listed
  /// last. The database's unique index on open positions (0005) keeps it to one; rows from before
  /// it may hold more, and those listed earlier wait in open_stacks_, in listing order.
  SlotIndex<SideKey, SideKeyHash> open_positions_;
  std::unordered_map<SideKey, std::vector<std::uint32_t>, SideKeyHash> open_stacks_;
  [[nodiscard]] std::optional<std::uint32_t> open_slot(const SideKey& k) const;
  /// Every listed open position of the side: the one orders act on, then those before it.
  template <class F>
  void for_each_listed(const SideKey& k, F&& f) const;
  void list_open(const SideKey& k, std::uint32_t slot);
  void unlist_open(const SideKey& k, std::uint32_t slot);
  std::unordered_map<SideKey, std::vector<std::uint32_t>, SideKeyHash> reduce_orders_;
  std::unordered_map<BalanceKey, BalanceView, BalanceKeyHash> balances_;
  std::unordered_map<Uuid, UserSettings, UuidHash> user_settings_;
  /// user_settings rows by id: their user, key and values (the parts user_settings_ merges).
  std::unordered_map<Uuid, UserSettingRow, UuidHash> setting_rows_;
  /// Per user, its rows by key (risk_management, trading): what merge_settings() reads.
  std::unordered_map<Uuid, std::array<Uuid, 2>, UuidHash> user_setting_rows_;
  void merge_settings(const Uuid& user);
  std::unordered_map<Uuid, BalanceKey, UuidHash> balance_rows_;  // wallet_balances.id -> key
  FlatMap<GroupKey, std::uint32_t, GroupKeyHash> group_index_;
  std::vector<Uuid> rested_;  // limit orders that started resting, until drain_rested()
  std::vector<TrailActivation> trail_activations_;  // until drain_trails()
  bool trails_changed_ = false;
  /// A trailing stop's state across the bot's edit of its row (place_order to arm_trailing).
  struct TrailCarry {
    std::int64_t extreme = 0;
    TimeNs activated_at = 0;
    Uuid group;
    std::uint32_t market = kNone;
    std::size_t src = 0;
    bool buy = false;
  };
  std::optional<TrailCarry> carry_;
  /// Protective stops asked for by fills (a fill never moves orders_): placed once the step that
  /// filled is over (place_protective).
  struct Protective {
    OrderSpec spec;
    Uuid opened_by;
    Uuid position;
    TimeNs ts = 0;
  };
  std::vector<Protective> protect_;
  void place_protective(std::vector<Event>& out);

  // Scratch buffers reused by every tick (no allocation once warm).
  std::vector<Crossed> scratch_up_, scratch_down_, scratch_merged_;
  std::vector<Due> scratch_due_;
  std::vector<TrailFired> scratch_fired_;
  std::vector<std::uint32_t> scratch_activate_;
};

}  // namespace lam
