#include "daemon/event_bus.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/tsan_sync.h"

namespace lam::daemon {

EventBus::EventBus(std::size_t capacity) : q_(capacity, 1, 0), token_(q_) {
  fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

EventBus::~EventBus() {
  if (fd_ >= 0) ::close(fd_);
}

bool EventBus::try_publish(const Published& p) {
  tsan_acquire(&q_);
  if (q_.try_enqueue(token_, p)) {
    tsan_release(&q_);
    return true;
  }
  overflows_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void EventBus::ring_doorbell() {
  // The fence pairs with prepare_sleep()'s: the enqueues above cannot pass the load of sleeping_,
  // so either the consumer sees our events, or we see it asleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd_, &one, sizeof one);
  }
}

std::size_t EventBus::drain(Published* out, std::size_t max) {
  tsan_acquire(&q_);
  const std::size_t n = q_.try_dequeue_bulk(out, max);
  tsan_release(&q_);
  return n;
}

bool EventBus::prepare_sleep() {
  sleeping_.store(true, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (q_.size_approx() > 0) {
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

}  // namespace lam::daemon
