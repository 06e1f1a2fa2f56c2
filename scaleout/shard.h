#pragma once
/// Which markets a shard owns (docs/operations.md, "Scale out"). Pure: the daemon asks it about
/// every market row it loads or hears of, and about the market every position, alert and order
/// names; what another shard owns is dropped before the matcher sees it (counted).
///
/// A market is owned when any rule holds: its price feed's venue is in `venues`, its id is in
/// `markets`, or (with `hash_count` > 0) fnv1a(id) % hash_count == hash_index. A row naming a
/// market no shard has loaded (unknown, or none at all: an alert without market) belongs to the
/// shard that hashes it when hashing is configured, else to the one shard with `orphans = true`,
/// which rejects it as the single daemon would. Without [shard] a daemon owns everything.

#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/uuid.h"

namespace lam::daemon {

struct ShardConfig {
  std::string id;                   ///< [a-z0-9_]{1,32}; names the journal schema and the subject
  std::vector<std::string> venues;  ///< feed venues (binance, bybit, okx, hyperliquid, ...)
  std::vector<Uuid> markets;        ///< explicit market ids
  std::uint32_t hash_count = 0;     ///< 0: no hash rule
  std::uint32_t hash_index = 0;
  bool orphans = false;  ///< rows naming no loaded market are this shard's to reject
};

/// The PostgreSQL schema holding a shard's journal (alert_events, engine_seq_gaps).
[[nodiscard]] inline std::string shard_schema(std::string_view id) {
  return std::string("laminator_shard_").append(id);
}

/// True for ids usable as a shard id (schema suffix, NATS subject token).
[[nodiscard]] inline bool valid_shard_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 32) return false;
  for (const char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

/// FNV-1a over the 16 bytes of the id, big-endian: stable across builds and hosts.
[[nodiscard]] inline std::uint64_t market_hash(const Uuid& id) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (int i = 56; i >= 0; i -= 8) h = (h ^ ((id.hi >> i) & 0xff)) * 1099511628211ULL;
  for (int i = 56; i >= 0; i -= 8) h = (h ^ ((id.lo >> i) & 0xff)) * 1099511628211ULL;
  return h;
}

/// The markets known to be other shards', shared with the listener thread (which drops changes to
/// their rows unread: ListenerConfig::foreign). Written at start-up and by the matcher thread as
/// market rows arrive; read per notification under a shared lock.
class ForeignMarkets {
 public:
  void set(const Uuid& market, bool foreign) {
    std::unique_lock lock(mu_);
    if (foreign)
      ids_.insert(market);
    else
      ids_.erase(market);
  }
  [[nodiscard]] bool contains(const Uuid& market) const {
    std::shared_lock lock(mu_);
    return ids_.count(market) != 0;
  }

 private:
  mutable std::shared_mutex mu_;
  std::unordered_set<Uuid, UuidHash> ids_;
};

class ShardMap {
 public:
  /// Owns everything (no [shard]).
  ShardMap() = default;
  explicit ShardMap(ShardConfig c) : cfg_(std::move(c)), sharded_(true) {}

  /// A market row (loaded or changed): remembers whether it is ours. Returns that.
  bool market(const Uuid& id, std::string_view venue) {
    const bool ours = rules(id, venue);
    known_[id] = ours;
    return ours;
  }
  /// A row naming `market` (a position, an order, an alert with a market).
  [[nodiscard]] bool owns(const Uuid& market) const {
    if (!sharded_) return true;
    const auto it = known_.find(market);
    if (it != known_.end()) return it->second;
    return cfg_.hash_count > 0 ? market_hash(market) % cfg_.hash_count == cfg_.hash_index
                               : cfg_.orphans;
  }
  /// A row naming no market (an alert without one).
  [[nodiscard]] bool owns_marketless() const noexcept { return !sharded_ || cfg_.orphans; }
  /// An alert: by its market, or as a row naming none.
  [[nodiscard]] bool owns_alert(const std::optional<Uuid>& market) const {
    return market ? owns(*market) : owns_marketless();
  }
  [[nodiscard]] bool sharded() const noexcept { return sharded_; }
  [[nodiscard]] const ShardConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] std::size_t owned_markets() const {
    std::size_t n = 0;
    for (const auto& [id, ours] : known_) n += ours ? 1 : 0;
    return n;
  }

 private:
  [[nodiscard]] bool rules(const Uuid& id, std::string_view venue) const {
    if (!sharded_) return true;
    for (const std::string& v : cfg_.venues)
      if (v == venue) return true;
    for (const Uuid& m : cfg_.markets)
      if (m == id) return true;
    return cfg_.hash_count > 0 && market_hash(id) % cfg_.hash_count == cfg_.hash_index;
  }

  ShardConfig cfg_;
  bool sharded_ = false;
  std::unordered_map<Uuid, bool, UuidHash> known_;
};

}  // namespace lam::daemon
