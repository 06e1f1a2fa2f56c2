#pragma once
/// Happens-before annotations for ThreadSanitizer around moodycamel::ConcurrentQueue.
///
/// The queue publishes an element with std::atomic_thread_fence and relaxed stores, which TSan does
/// not model, so every element read by the consumer looked like a race on the queue's block memory
/// (and a producer reusing a block the consumer emptied, the other way round).
/// Each such report was suppressed (tests/tsan.supp), but finding out that it is suppressed costs a
/// stack walk and a search through every racy address seen so far: a burst of 20,000 events took
/// the daemon under TSan 50 times longer than in Release (`Faults.ResumeFromTheJournalsFirstSeq...`
/// timed out). Both sides acquire the queue before an operation and release it after, so TSan sees
/// the order the queue really provides in both directions. Nothing in other builds.

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);  // NOLINT: TSan's interface
extern "C" void __tsan_release(void* addr);  // NOLINT
#endif

namespace lam {

/// After an operation on the queue at `q`.
inline void tsan_release(void* q) noexcept {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(q);
#else
  (void)q;
#endif
}

/// Before an operation on the queue at `q`.
inline void tsan_acquire(void* q) noexcept {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(q);
#else
  (void)q;
#endif
}

}  // namespace lam
