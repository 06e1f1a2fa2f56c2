#pragma once
/// The bounded queue from feed threads to the matcher thread (moodycamel::ConcurrentQueue).
///
/// Bounded: the capacity is preallocated and producers only `try_enqueue`, which never allocates;
/// a full queue makes `try_push` return false at once (the feed counts the drop and later tells
/// the engine with a `queue_overflow` gap event). A socket thread never blocks on it.
/// One `Producer` per feed thread (it holds the moodycamel producer token); one consumer.
///
/// Doorbell: an idle consumer can sleep in `wait()` (a futex) instead of polling. It first says so
/// in `sleeping_`; a producer that pushes while that flag is set wakes it with one syscall. While
/// the consumer is busy a push costs one fence and one load of a cache line nobody writes.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/tsan_sync.h"
#include "feeds/feed_event.h"

namespace lam::feeds {

class TickQueue {
 public:
  /// Holds at least `capacity` events (moodycamel rounds up to whole blocks per producer); at most
  /// `max_producers` producer threads.
  explicit TickQueue(std::size_t capacity, std::size_t max_producers = 8)
      : q_(capacity, max_producers, 0), capacity_(capacity) {}

  /// A feed thread's handle. Not thread-safe: one per producing thread.
  class Producer {
   public:
    explicit Producer(TickQueue& q) : q_(q), token_(q.q_) {}
    /// False (and counted) when the queue is full.
    bool try_push(const FeedEvent& e) {
      tsan_acquire(&q_.q_);
      if (q_.q_.try_enqueue(token_, e)) {
        tsan_release(&q_.q_);
        // Pairs with the fence in wait(): either the consumer sees this event before it sleeps,
        // or this thread sees it sleeping and wakes it.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (q_.sleeping_.load(std::memory_order_relaxed) != 0) q_.wake();
        return true;
      }
      q_.overflows_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }

   private:
    TickQueue& q_;
    moodycamel::ProducerToken token_;
  };

  /// Consumer side: up to `max` events into `out`; returns how many.
  std::size_t pop_bulk(FeedEvent* out, std::size_t max) {
    tsan_acquire(&q_);
    const std::size_t n = q_.try_dequeue_bulk(out, max);
    tsan_release(&q_);
    return n;
  }
  /// Consumer side: sleeps until a producer pushes or `max_wait` passes (or spuriously); returns
  /// at once if something is queued. The consumer must poll its other inputs after it returns.
  void wait(std::int64_t max_wait_ns);
  [[nodiscard]] std::size_t size_approx() const { return q_.size_approx(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// Events refused because the queue was full, over all producers.
  [[nodiscard]] std::uint64_t overflows() const noexcept {
    return overflows_.load(std::memory_order_relaxed);
  }

 private:
  void wake();

  moodycamel::ConcurrentQueue<FeedEvent> q_;
  std::size_t capacity_;
  alignas(64) std::atomic<std::uint32_t> sleeping_{
      0};  // the futex word: 1 while the consumer waits
  std::atomic<std::uint64_t> overflows_{0};
};

}  // namespace lam::feeds
