#pragma once
/// The queue from the matcher thread to the stream server thread: bounded (moodycamel,
/// preallocated, try_enqueue only), single producer, single consumer, with an eventfd doorbell that
/// is rung only when the consumer has said it is going to sleep, so a busy server costs the matcher
/// no syscall.
///
/// Overflow policy: a full bus refuses the event (counted). The server sees the hole in `seq`,
/// drops its in-memory ring and cuts its subscribers with 1008; they resume with `since` from the
/// journal, which the writer fills independently. The matcher never waits for the server.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/event.h"

namespace lam::daemon {

/// An event as published: with the local receive time of the tick that caused it (0: none), for
/// the tick-to-event latency histogram.
struct Published {
  Event event;
  TimeNs recv_ts = 0;
};

class EventBus {
 public:
  explicit EventBus(std::size_t capacity);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  /// Matcher thread. False (counted in overflows()) when full.
  bool try_publish(const Published& p);
  /// Matcher thread, after a burst: wakes the consumer if it announced sleep.
  void ring_doorbell();

  /// Consumer: up to `max` events.
  std::size_t drain(Published* out, std::size_t max);
  /// Consumer: announce sleep; returns false if events arrived meanwhile (drain again instead).
  bool prepare_sleep();
  /// Consumer: the eventfd to wait on (readable after ring_doorbell()); read it to reset.
  [[nodiscard]] int fd() const noexcept { return fd_; }

  [[nodiscard]] std::uint64_t overflows() const noexcept {
    return overflows_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t size_approx() const { return q_.size_approx(); }

 private:
  moodycamel::ConcurrentQueue<Published> q_;
  moodycamel::ProducerToken token_;
  int fd_ = -1;
  std::atomic<bool> sleeping_{false};
  std::atomic<std::uint64_t> overflows_{0};
};

}  // namespace lam::daemon
