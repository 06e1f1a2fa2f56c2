#pragma once
/// How the gateway pulls from its durable consumer without reaching the heap overflow of Debian
/// 12's libnats 3.4.1 (`_fetch` in src/js.c; fixed upstream in nats.c PR #749, "Fix heap buffer
/// overflow in _fetch", not in Debian's package). Pure: the source thread
/// (scaleout/gateway_source.cpp) asks next() what to fetch, does it, and tells done() what came
/// back.
///
/// The defect. `_fetch` allocates room for `Batch` messages, first takes the `c` messages already
/// queued on the subscription, then sends a pull request for `Batch - c` and stores what arrives
/// until its count equals the *new* `req->Batch` (= Batch - c). When c >= Batch / 2 the count is
/// already past that bound and never meets it: every message that arrives is stored, one past the
/// array once more than Batch - c arrive. Messages are queued before a fetch only when an earlier
/// pull request outlived the client's wait (the client gave up at its deadline; the server expires
/// the request a network latency later and delivers what it had meanwhile, up to its batch): under
/// a burst of three shards at once those stragglers number hundreds, and the next fetch of 512
/// overflows (the gateway aborted in malloc).
///
/// The plan. A fetch of batch 1 can never overflow (c is 0 or 1 = Batch; with 0 it stops at 1),
/// and a request of batch 1 left open leaves at most one straggler. So:
///  * idle: fetch 1, waiting up to `idle_wait` (a long poll: the first message returns at once);
///  * once a message came, bursting: fetch `batch` with no_wait and `burst_wait` as the client's
///    wait (the server answers at once with what it has, or, with nothing, waits for the first
///    message; nats-server 2.9 ends the request after a partial batch, so nothing is left open);
///  * a partial batch means the stream is drained: back to idle;
///  * a burst fetch the client gave up on (its status was a timeout, or it waited its whole wait)
///    may leave up to `batch` stragglers: batch 1 until `settle` has passed since (every straggler
///    has arrived and is taken one at a time, from the queue, with no request) and the queue is
///    short again; counted as a hazard.
/// A burst fetch therefore starts only with at most a few single stragglers queued (fewer than
/// batch / 4 by the queue check), far below batch / 2. tests/scaleout/fetch_plan_test.cpp runs
/// this plan and the old one (always 512, 100 ms) against a model of 3.4.1's `_fetch` and a server
/// that delivers late: the old one overflows, this one never does.

#include <chrono>
#include <cstdint>

namespace lam::daemon {

class FetchPlan {
 public:
  using Clock = std::chrono::steady_clock;
  struct Config {
    int batch = 512;                             ///< a burst fetch's batch (>= 8)
    std::chrono::milliseconds idle_wait{100};    ///< a single fetch's wait
    std::chrono::milliseconds burst_wait{1000};  ///< a burst fetch's wait
    std::chrono::milliseconds settle{1000};      ///< single fetches after a burst fetch gave up
  };
  struct Request {
    int batch = 1;  ///< 1: natsSubscription_Fetch(1, wait); else FetchRequest, no_wait
    std::chrono::milliseconds wait{0};
  };

  explicit FetchPlan(Config c) : cfg_(c) {
    if (cfg_.batch < 8) cfg_.batch = 8;
  }

  /// What to fetch now; `queued`: messages waiting on the subscription
  /// (natsSubscription_GetPending).
  [[nodiscard]] Request next(Clock::time_point now, std::int64_t queued) const {
    const bool settled = !gave_up_ || now - gave_up_at_ >= cfg_.settle;
    if (bursting_ && settled && queued < cfg_.batch / 4) return {cfg_.batch, cfg_.burst_wait};
    return {1, cfg_.idle_wait};
  }

  /// `r` returned `got` messages; `gave_up`: the client stopped waiting (a timeout status, or the
  /// whole wait elapsed), so the request may still deliver.
  void done(const Request& r, int got, bool gave_up, Clock::time_point now) {
    if (r.batch == 1) {
      if (got > 0) bursting_ = true;  // data flows: take it in batches
      return;
    }
    if (gave_up) {
      gave_up_ = true;
      gave_up_at_ = now;
      bursting_ = false;
      ++hazards_;
      return;
    }
    if (got < r.batch) bursting_ = false;  // drained
  }

  [[nodiscard]] bool bursting() const noexcept { return bursting_; }
  /// Burst fetches the client gave up on (each followed by `settle` of single fetches).
  [[nodiscard]] std::uint64_t hazards() const noexcept { return hazards_; }
  [[nodiscard]] const Config& config() const noexcept { return cfg_; }

 private:
  Config cfg_;
  bool bursting_ = false;
  bool gave_up_ = false;  ///< a burst fetch was given up on, at gave_up_at_
  Clock::time_point gave_up_at_{};
  std::uint64_t hazards_ = 0;
};

}  // namespace lam::daemon
