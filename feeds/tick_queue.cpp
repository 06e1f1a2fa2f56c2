#include "feeds/tick_queue.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace lam::feeds {
namespace {

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t val, const timespec* timeout) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, val, timeout, nullptr, 0);
}

}  // namespace

void TickQueue::wait(std::int64_t max_wait_ns) {
  sleeping_.store(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the one in try_push
  if (q_.size_approx() == 0) {
    const timespec ts{static_cast<time_t>(max_wait_ns / 1'000'000'000),
                      static_cast<long>(max_wait_ns % 1'000'000'000)};
    // Returns at once if a producer already cleared the word (EAGAIN), on a wake, or on timeout.
    futex(&sleeping_, FUTEX_WAIT_PRIVATE, 1, &ts);
  }
  sleeping_.store(0, std::memory_order_relaxed);
}

void TickQueue::wake() {
  // Only the producer that clears the word makes the syscall.
  if (sleeping_.exchange(0, std::memory_order_relaxed) != 0)
    futex(&sleeping_, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

}  // namespace lam::feeds
