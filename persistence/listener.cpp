#include "persistence/listener.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <pqxx/pqxx>
#include <unordered_set>
#include <vector>

#include "engine/tsan_sync.h"
#include "persistence/database_url.h"
#include "persistence/loader.h"

namespace lam::db {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* kChannel = "laminator_changes";

std::optional<std::string_view> json_string_field(std::string_view s, std::string_view key) {
  std::string quoted;  // built by append: GCC 12 -O3 warns falsely on operator+ here (-Wrestrict)
  quoted.reserve(key.size() + 2);
  quoted.push_back('"');
  quoted.append(key);
  quoted.push_back('"');
  std::size_t p = s.find(quoted);
  if (p == std::string_view::npos) return std::nullopt;
  p = s.find(':', p + quoted.size());
  if (p == std::string_view::npos) return std::nullopt;
  p = s.find('"', p + 1);
  if (p == std::string_view::npos) return std::nullopt;
  const std::size_t end = s.find('"', p + 1);
  if (end == std::string_view::npos) return std::nullopt;
  return s.substr(p + 1, end - p - 1);
}

/// The heartbeats heard since the listener last looked (ChangeHeartbeat): nonces.
using Heard = std::vector<std::uint64_t>;

/// `{"t":"heartbeat","op":"PING","n":"<nonce>"}` (n in decimal).
std::string heartbeat_payload(std::uint64_t nonce) {
  return R"({"t":"heartbeat","op":"PING","n":")" + std::to_string(nonce) + "\"}";
}

/// Sends `nonce` on the change channel through `c` (its own transaction: delivered at commit).
void send_heartbeat(pqxx::connection& c, std::uint64_t nonce) {
  pqxx::nontransaction n(c);
  n.exec_params("SELECT pg_notify($1, $2)", std::string(kChannel), heartbeat_payload(nonce));
}

struct Pending {
  std::unordered_set<Uuid, UuidHash> markets, positions, alerts, orders, balances, settings;
  std::unordered_set<Uuid, UuidHash> reconcile;  ///< ids named by the writer (op RECONCILE)
  Clock::time_point first = Clock::time_point::max();
  [[nodiscard]] std::size_t size() const {
    return markets.size() + positions.size() + alerts.size() + orders.size() + balances.size() +
           settings.size();
  }
  void clear() {
    markets.clear();
    positions.clear();
    alerts.clear();
    orders.clear();
    balances.clear();
    settings.clear();
    reconcile.clear();
    first = Clock::time_point::max();
  }
};

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, Pending& pending, Heard& heard, ListenerStats& stats,
           bool orders, const std::function<bool(const Uuid&)>& foreign)
      : notification_receiver(c, kChannel),
        pending_(pending),
        heard_(heard),
        stats_(stats),
        orders_(orders),
        foreign_(foreign) {}
  void operator()(const std::string& payload, int) override {
    if (json_string_field(payload, "t") == std::string_view("heartbeat")) {
      // Ours or another daemon's on the same database (ChangeHeartbeat tells them apart).
      if (const auto n = json_string_field(payload, "n")) {
        std::uint64_t v = 0;
        const auto [p, ec] = std::from_chars(n->data(), n->data() + n->size(), v);
        if (ec == std::errc() && p == n->data() + n->size()) heard_.push_back(v);
      }
      return;
    }
    stats_.notifications.fetch_add(1, std::memory_order_relaxed);
    const auto note = parse_change_payload(payload);
    if (!note) {
      stats_.bad_payloads.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Another shard's row (and, if it moved, another shard's before too): not read at all.
    if (foreign_ && note->market && foreign_(*note->market) &&
        (!note->old_market || foreign_(*note->old_market))) {
      stats_.foreign.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (note->op == "RECONCILE") pending_.reconcile.insert(note->id);
    if (note->table == "markets") {
      pending_.markets.insert(note->id);
    } else if (note->table == "positions") {
      pending_.positions.insert(note->id);
    } else if (note->table == "alerts") {
      pending_.alerts.insert(note->id);
    } else if (orders_ && note->table == "orders") {
      pending_.orders.insert(note->id);
    } else if (orders_ && note->table == "wallet_balances") {
      pending_.balances.insert(note->id);
    } else if (orders_ && note->table == "user_settings") {
      pending_.settings.insert(note->id);
    } else {
      stats_.ignored.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (pending_.first == Clock::time_point::max()) pending_.first = Clock::now();
  }

 private:
  Pending& pending_;
  Heard& heard_;
  ListenerStats& stats_;
  bool orders_;
  const std::function<bool(const Uuid&)>& foreign_;
};

std::uint64_t unix_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

enum class Probe : std::uint8_t { proven, dead, stopped };

/// A new LISTEN session's probe (ChangeHeartbeat): a heartbeat sent through `send` must come back
/// on `listen` within the timeout. `heard` is what `listen`'s receiver collects.
Probe probe_session(pqxx::connection& listen, pqxx::connection& send, Heard& heard,
                    ChangeHeartbeat& hb, const std::atomic<bool>& stop) {
  heard.clear();
  hb.reconnected(Clock::now());
  send_heartbeat(send, *hb.due(Clock::now()));
  while (true) {
    const auto now = Clock::now();
    bool back = false;
    for (const std::uint64_t n : heard) back = hb.heard(n, now) || back;
    heard.clear();
    if (back) return Probe::proven;
    if (hb.dead(now)) return Probe::dead;
    if (stop.load()) return Probe::stopped;
    listen.await_notification(0, 20'000);
    listen.get_notifs();
  }
}

std::string dead_path(std::chrono::milliseconds timeout) {
  return "change notifications sent through the database URL never reached a LISTEN session on "
         "it within " +
         std::to_string(timeout.count()) +
         " ms: the engine would never see the bot's changes. A transaction-mode pooler "
         "(PgBouncer) does not keep LISTEN: connect the daemon to PostgreSQL directly "
         "(docs/operations.md, \"The change path\")";
}

template <class Set>
EngineCommand command(EngineCommand::Kind kind, Clock::time_point noticed, Set&& set) {
  EngineCommand c;
  c.kind = kind;
  c.noticed = noticed;
  set(c);
  return c;
}

}  // namespace

std::optional<ChangeNote> parse_change_payload(std::string_view payload) {
  const auto t = json_string_field(payload, "t");
  const auto op = json_string_field(payload, "op");
  const auto id = json_string_field(payload, "id");
  if (!t || !op || !id) return std::nullopt;
  auto uuid = Uuid::parse(*id);
  if (!uuid) return std::nullopt;
  ChangeNote note{std::string(*t), std::string(*op), *uuid, std::nullopt, std::nullopt};
  if (const auto m = json_string_field(payload, "m")) {
    note.market = Uuid::parse(*m);
    if (!note.market) return std::nullopt;
  }
  if (const auto om = json_string_field(payload, "om")) {
    note.old_market = Uuid::parse(*om);
    if (!note.old_market) return std::nullopt;
  }
  return note;
}

std::optional<std::string> probe_change_path(const std::string& conninfo,
                                             std::chrono::milliseconds timeout) {
  try {
    pqxx::connection listen(conninfo), send(conninfo);
    Pending pending;
    Heard heard;
    ListenerStats stats;
    const std::function<bool(const Uuid&)> none;
    Receiver r(listen, pending, heard, stats, false, none);
    ChangeHeartbeat hb({timeout, timeout},
                       static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
    const std::atomic<bool> never{false};
    if (probe_session(listen, send, heard, hb, never) == Probe::proven) return std::nullopt;
    return dead_path(timeout);
  } catch (const std::exception& e) {
    return "cannot check the change path: " + redact_secrets(e.what(), conninfo);
  }
}

Listener::Listener(ListenerConfig cfg) : cfg_(std::move(cfg)), queue_(cfg_.queue_capacity) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lam-listener");
    run();
  });
}

Listener::~Listener() {
  stop();
}

void Listener::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Listener::run() {
  // Long: the listener thread's connect / resync / collect-and-read loop with its reconnect
  // handling; the steps share the connection, the pending set and the backoff, and the exception
  // path must see all of them.
  auto log = spdlog::default_logger()->clone("listener");
  Loader loader(cfg_.conninfo);
  Pending pending;
  Heard heard;
  ChangeHeartbeat hb(cfg_.heartbeat,
                     static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  auto backoff = cfg_.backoff_min;
  stats_.down_since_ms.store(unix_ms());
  const auto note_heartbeat = [&] {
    stats_.heartbeats.fetch_add(1, std::memory_order_relaxed);
    stats_.heartbeat_rtt_us.store(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(hb.last_rtt()).count()));
  };
  // Heartbeats heard, the next one sent when due; true when the outstanding one is overdue.
  const auto beat = [&](pqxx::connection& ping) {
    const auto now = Clock::now();
    for (const std::uint64_t n : heard)
      if (hb.heard(n, now)) note_heartbeat();
    heard.clear();
    if (const auto n = hb.due(now)) send_heartbeat(ping, *n);
    return hb.dead(now);
  };
  // Bounded queue: when the engine falls behind, the listener waits (and counts it) rather than
  // drop.
  auto push = [&](EngineCommand&& cmd) {
    tsan_acquire(&queue_);
    while (!queue_.try_enqueue(std::move(cmd))) {
      stats_.queue_waits.fetch_add(1, std::memory_order_relaxed);
      if (stopping_.load()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    tsan_release(&queue_);
    stats_.commands.fetch_add(1, std::memory_order_relaxed);
  };

  while (!stopping_.load()) {
    std::unique_ptr<pqxx::connection> conn, ping;
    std::unique_ptr<Receiver> receiver;
    ListenerDown why = ListenerDown::no_connection;
    try {
      conn = std::make_unique<pqxx::connection>(cfg_.conninfo);
      pqxx::nontransaction(*conn).exec("SET application_name = 'laminator-listener'");
      // LISTEN before the snapshot
      receiver =
          std::make_unique<Receiver>(*conn, pending, heard, stats_, cfg_.orders, cfg_.foreign);
      ping = std::make_unique<pqxx::connection>(cfg_.conninfo);
      backend_pid_.store(conn->backendpid());
      // The probe: the session is used once a notification's round trip proves it (through a
      // transaction-mode pooler none ever arrives: docs/operations.md, "The change path").
      why = ListenerDown::no_notifications;
      switch (probe_session(*conn, *ping, heard, hb, stopping_)) {
        case Probe::dead:
          throw std::runtime_error(dead_path(cfg_.heartbeat.timeout));
        case Probe::stopped:
          backend_pid_.store(0);
          return;
        case Probe::proven:
          note_heartbeat();
          break;
      }
      why = ListenerDown::lost;
      stats_.connected.store(1);
      stats_.down_since_ms.store(0);
      stats_.down_why.store(static_cast<std::uint8_t>(ListenerDown::none));
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      // Full resync: nothing that changed while we were away is missed.
      const auto t0 = Clock::now();
      using K = EngineCommand::Kind;
      auto none = [](EngineCommand&) {};
      push(command(K::resync_begin, t0, none));
      const LoadCounts n = loader.load_all(LoadSink{
          [&](MarketRow&& m) {
            push(command(K::upsert_market, t0, [&](EngineCommand& c) { c.market = std::move(m); }));
          },
          [&](PositionSpec&& p) {
            push(command(K::upsert_position, t0, [&](EngineCommand& c) { c.position = p; }));
          },
          [&](AlertSpec&& a) {
            push(command(K::upsert_alert, t0, [&](EngineCommand& c) { c.alert = a; }));
          },
          nullptr,
          cfg_.orders ? std::function<void(BalanceSpec &&)>([&](BalanceSpec&& b) {
            push(command(K::upsert_balance, t0, [&](EngineCommand& c) { c.balance = b; }));
          })
                      : nullptr,
          cfg_.orders ? std::function<void(OrderSpec &&)>([&](OrderSpec&& o) {
            push(command(K::upsert_order, t0, [&](EngineCommand& c) { c.order = o; }));
          })
                      : nullptr,
          nullptr,
          cfg_.orders ? std::function<void(UserSettingRow &&)>([&](UserSettingRow&& s) {
            push(command(K::upsert_setting, t0, [&](EngineCommand& c) { c.setting = s; }));
          })
                      : nullptr,
      });
      push(command(K::resync_end, Clock::now(), none));
      stats_.resyncs.fetch_add(1, std::memory_order_relaxed);
      log->info("listening; resynced {} markets, {} positions, {} alerts", n.markets, n.positions,
                n.alerts);
      backoff = cfg_.backoff_min;

      while (!stopping_.load()) {
        // Wait for notifications; short waits while a batch is forming, 100 ms otherwise (stop
        // checks).
        const bool forming = pending.size() > 0;
        const auto to_beat =
            std::chrono::duration_cast<std::chrono::microseconds>(hb.wake_at() - Clock::now())
                .count();
        conn->await_notification(
            0, static_cast<long>(std::clamp<std::int64_t>(to_beat, 0, forming ? 500 : 100'000)));
        conn->get_notifs();
        if (beat(*ping)) {
          stats_.heartbeats_lost.fetch_add(1, std::memory_order_relaxed);
          throw std::runtime_error("a heartbeat did not come back within " +
                                   std::to_string(cfg_.heartbeat.timeout.count()) +
                                   " ms: the session no longer receives notifications");
        }
        if (pending.size() == 0) continue;
        if (pending.size() < cfg_.max_batch && Clock::now() - pending.first < cfg_.batch_window)
          continue;
        const auto noticed = pending.first;
        const auto reconcile = std::move(pending.reconcile);
        std::vector<Uuid> m(pending.markets.begin(), pending.markets.end());
        std::vector<Uuid> p(pending.positions.begin(), pending.positions.end());
        std::vector<Uuid> a(pending.alerts.begin(), pending.alerts.end());
        std::vector<Uuid> o(pending.orders.begin(), pending.orders.end());
        std::vector<Uuid> b(pending.balances.begin(), pending.balances.end());
        std::vector<Uuid> s(pending.settings.begin(), pending.settings.end());
        pending.clear();
        Loader::ById rows = loader.load_by_id(m, p, a, o, b, s);
        for (auto& row : rows.markets) {
          push(command(K::upsert_market, noticed,
                       [&](EngineCommand& c) { c.market = std::move(row); }));
        }
        for (auto& row : rows.positions) {
          push(command(K::upsert_position, noticed, [&](EngineCommand& c) {
            c.position = row;
            c.reconcile = reconcile.contains(row.id);
          }));
        }
        for (auto& id : rows.missing_positions) {
          push(command(K::remove_position, noticed, [&](EngineCommand& c) { c.id = id; }));
        }
        for (auto& row : rows.alerts) {
          push(command(K::upsert_alert, noticed, [&](EngineCommand& c) { c.alert = row; }));
        }
        for (auto& id : rows.missing_alerts) {
          push(command(K::remove_alert, noticed, [&](EngineCommand& c) { c.id = id; }));
        }
        for (auto& row : rows.balances) {
          push(command(K::upsert_balance, noticed, [&](EngineCommand& c) { c.balance = row; }));
        }
        for (auto& id : rows.missing_balances) {
          push(command(K::remove_balance, noticed, [&](EngineCommand& c) { c.id = id; }));
        }
        for (auto& row : rows.orders) {
          push(command(K::upsert_order, noticed, [&](EngineCommand& c) {
            c.order = row;
            c.reconcile = reconcile.contains(row.id);
          }));
        }
        for (auto& id : rows.missing_orders) {
          push(command(K::remove_order, noticed, [&](EngineCommand& c) { c.id = id; }));
        }
        for (auto& row : rows.settings) {
          push(command(K::upsert_setting, noticed, [&](EngineCommand& c) { c.setting = row; }));
        }
        for (auto& id : rows.missing_settings) {
          push(command(K::remove_setting, noticed, [&](EngineCommand& c) { c.id = id; }));
        }
      }
    } catch (const std::exception& e) {
      // broken_connection and friends: 6.4 does not heal a connection; drop it (receiver first) and
      // start over with a full resync. Until then the bot's changes are not followed: said by
      // health and metrics (down_since_ms), with why.
      stats_.connected.store(0);
      std::uint64_t expected = 0;
      stats_.down_since_ms.compare_exchange_strong(expected, unix_ms());
      stats_.down_why.store(static_cast<std::uint8_t>(why));
      if (!stopping_.load())
        log->log(why == ListenerDown::no_notifications ? spdlog::level::err : spdlog::level::warn,
                 "listener connection lost ({}); reconnecting in {} ms",
                 redact_secrets(e.what(), cfg_.conninfo), backoff.count());
    }
    backend_pid_.store(0);
    receiver.reset();
    ping.reset();
    conn.reset();
    pending.clear();
    const auto until = Clock::now() + backoff;
    while (!stopping_.load() && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    backoff = std::min(backoff * 2, cfg_.backoff_max);
  }
}

}  // namespace lam::db
