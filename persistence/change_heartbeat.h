#pragma once
/// The listener's proof that the bot's changes reach it (docs/operations.md, "The change path").
/// Pure: the listener thread sends the notifications this asks for, reports what came back, and
/// reconnects when it says the path is dead. Unit-tested (tests/persistence/loader_listener_test).
///
/// A LISTEN session can look alive and never receive a notification: through a transaction-mode
/// pooler (PgBouncer: the LISTEN stays on a server connection the pooler hands to someone else), or
/// a server that lost the session's registration. Only a notification's round trip proves it: the
/// listener sends `{"t":"heartbeat","op":"PING","id":<nonce>}` on the change channel from a second
/// connection every `interval`, and a nonce not heard back within `timeout` means the path is dead.
/// The first one after each (re)connect is the probe: the session is not used until it returns.

#include <chrono>
#include <cstdint>
#include <optional>

namespace lam::db {

class ChangeHeartbeat {
 public:
  using Clock = std::chrono::steady_clock;
  struct Config {
    std::chrono::milliseconds interval{5'000};  ///< between heartbeats
    std::chrono::milliseconds timeout{5'000};   ///< a heartbeat not back by then: the path is dead
  };

  explicit ChangeHeartbeat(Config c, std::uint64_t seed = 0x9e3779b97f4a7c15ULL)
      : cfg_(c), next_nonce_(seed | 1) {}

  /// A new session: nothing is outstanding, the next heartbeat (the probe) is due now.
  void reconnected(Clock::time_point now) {
    outstanding_ = false;
    next_at_ = now;
    proven_ = false;
  }

  /// The nonce to send now, if one is due (none while one is outstanding).
  [[nodiscard]] std::optional<std::uint64_t> due(Clock::time_point now) {
    if (outstanding_ || now < next_at_) return std::nullopt;
    next_nonce_ = next_nonce_ * 6364136223846793005ULL + 1442695040888963407ULL;
    outstanding_ = true;
    out_nonce_ = next_nonce_;
    out_sent_ = now;
    return next_nonce_;
  }

  /// A heartbeat came back. False for someone else's (another daemon or shard on the database
  /// sends its own on the same channel) or a late one.
  bool heard(std::uint64_t nonce, Clock::time_point now) {
    if (!outstanding_ || out_nonce_ != nonce) return false;
    last_rtt_ = now - out_sent_;
    outstanding_ = false;
    next_at_ = now + cfg_.interval;
    proven_ = true;
    return true;
  }

  /// The outstanding heartbeat is overdue: the path is dead (count it, reconnect).
  [[nodiscard]] bool dead(Clock::time_point now) const {
    return outstanding_ && now - out_sent_ >= cfg_.timeout;
  }
  /// A heartbeat came back since the last reconnect (the session was probed).
  [[nodiscard]] bool proven() const noexcept { return proven_; }
  /// How long the last heartbeat took to come back.
  [[nodiscard]] Clock::duration last_rtt() const noexcept { return last_rtt_; }
  /// When to wake up next for this (a heartbeat due, or the outstanding one's deadline).
  [[nodiscard]] Clock::time_point wake_at() const noexcept {
    return outstanding_ ? out_sent_ + cfg_.timeout : next_at_;
  }

 private:
  Config cfg_;
  std::uint64_t next_nonce_;
  bool outstanding_ = false;  ///< a heartbeat is on its way (out_nonce_, sent at out_sent_)
  std::uint64_t out_nonce_ = 0;
  Clock::time_point out_sent_{};
  Clock::time_point next_at_{};
  Clock::duration last_rtt_{};
  bool proven_ = false;
};

}  // namespace lam::db
