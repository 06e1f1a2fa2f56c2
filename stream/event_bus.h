#pragma once
/// The queues into the stream server thread: bounded (moodycamel, preallocated, try_enqueue only),
/// single producer, single consumer, with an eventfd doorbell that is rung only when the consumer
/// has said it is going to sleep, so a busy consumer costs the producer no syscall.
///
/// `EventBus` carries the matcher's events (`laminator run`); `EntryBus` carries events that are
/// already JSON (`laminator gateway`, fed from JetStream; the shard's JetStream publisher).
///
/// Overflow policy: a full bus refuses the item (counted). The server sees the hole in `seq`,
/// drops its in-memory ring and cuts its subscribers with 1008; they resume with `since` from the
/// journal, which the writer fills independently. The producer never waits for the consumer.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/event.h"
#include "engine/tsan_sync.h"
#include "stream/event_ring.h"

namespace lam::daemon {

/// An event as published: with the local receive time of the tick that caused it (0: none), for
/// the tick-to-event latency histogram, and when the matcher dequeued that tick and made the event
/// (wall ns; 0: not taken), for the histogram by stage (stream/stage_latency.h).
struct Published {
  Event event;
  TimeNs recv_ts = 0;
  TimeNs dequeued_ts = 0;
  TimeNs made_ts = 0;
};

/// An event already rendered (the gateway's input): `recv_ts` is when its source produced it.
struct Rendered {
  Entry entry;
  TimeNs recv_ts = 0;
};

/// The eventfd and the sleep handshake, shared by every bus.
class Doorbell {
 public:
  Doorbell();
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  /// Producer, after a burst: wakes the consumer if it announced sleep.
  void ring();
  /// Consumer: announce sleep; `empty` re-checks the queue after the announcement.
  template <class Empty>
  bool prepare_sleep(Empty empty) {
    sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!empty()) {
      sleeping_.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
  std::atomic<bool> sleeping_{false};
};

template <class T>
class BoundedBus {
 public:
  explicit BoundedBus(std::size_t capacity) : q_(capacity, 1, 0), token_(q_) {}
  BoundedBus(const BoundedBus&) = delete;
  BoundedBus& operator=(const BoundedBus&) = delete;

  /// Producer. False (counted in overflows()) when full.
  bool try_publish(const T& p) {
    tsan_acquire(&q_);
    if (q_.try_enqueue(token_, p)) {
      tsan_release(&q_);
      return true;
    }
    overflows_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  /// Producer, after a burst: wakes the consumer if it announced sleep.
  void ring_doorbell() { bell_.ring(); }

  /// Consumer: up to `max` items.
  std::size_t drain(T* out, std::size_t max) {
    tsan_acquire(&q_);
    const std::size_t n = q_.try_dequeue_bulk(out, max);
    tsan_release(&q_);
    return n;
  }
  /// Consumer: announce sleep; returns false if items arrived meanwhile (drain again instead).
  bool prepare_sleep() {
    return bell_.prepare_sleep([this] { return q_.size_approx() == 0; });
  }
  /// Consumer: the eventfd to wait on (readable after ring_doorbell()); read it to reset.
  [[nodiscard]] int fd() const noexcept { return bell_.fd(); }

  [[nodiscard]] std::uint64_t overflows() const noexcept {
    return overflows_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t size_approx() const { return q_.size_approx(); }

 private:
  moodycamel::ConcurrentQueue<T> q_;
  moodycamel::ProducerToken token_;
  Doorbell bell_;
  std::atomic<std::uint64_t> overflows_{0};
};

using EventBus = BoundedBus<Published>;
using EntryBus = BoundedBus<Rendered>;

}  // namespace lam::daemon
