#pragma once
/// A shard's JetStream publishing window: which seqs are in flight, which are acknowledged, where
/// publishing resumes. Pure: the publisher thread (scaleout/jetstream_publisher.cpp) feeds it what
/// it sent and what the server answered, and does what it says.
///
/// Publishing is asynchronous, so many seqs are in flight at once; acknowledgements may arrive out
/// of order; the acknowledged prefix (acked_through) only moves over a contiguous run. A failed or
/// timed-out publish asks for a rewind: the publisher drops its connection, reconnects, reads the
/// last seq the stream holds for the shard (authoritative: a lost ack is not a lost message) and
/// reset()s here to continue after it. What was already stored and is sent again is dropped by the
/// server's de-duplication (Nats-Msg-Id = <shard>:<seq>).

#include <cstddef>
#include <cstdint>
#include <deque>

namespace lam::daemon {

class PublishWindow {
 public:
  /// The stream holds every seq up to `last_stored`: publishing continues at last_stored + 1.
  void reset(std::uint64_t last_stored) {
    acked_through_ = last_stored;
    next_ = last_stored + 1;
    acked_.clear();
    rewind_ = false;
  }
  /// The seq to publish next.
  [[nodiscard]] std::uint64_t next() const noexcept { return next_; }
  /// `next()` was handed to the client library.
  void sent() {
    acked_.push_back(false);
    ++next_;
  }
  /// Seqs next() .. to - 1 will never be sent (a hole in the journal, or a restore's declared
  /// gap): they count as stored. Only with nothing in flight (the caller waits for its acks).
  bool jump(std::uint64_t to) {
    if (!acked_.empty() || to <= next_) return false;
    acked_through_ = to - 1;
    next_ = to;
    return true;
  }
  /// The server stored `seq` (or already had it: a duplicate). Stale acks are ignored.
  void acked(std::uint64_t seq) {
    if (seq <= acked_through_ || seq >= next_) return;
    acked_[static_cast<std::size_t>(seq - acked_through_ - 1)] = true;
    advance();
  }
  /// Publishing `seq` failed (error or no answer within the wait): rewind.
  void failed(std::uint64_t seq) {
    if (seq > acked_through_ && seq < next_) rewind_ = true;
  }
  [[nodiscard]] bool needs_rewind() const noexcept { return rewind_; }
  /// Every seq up to this one is stored.
  [[nodiscard]] std::uint64_t acked_through() const noexcept { return acked_through_; }
  /// Sent and not yet acknowledged (acknowledged ones above a gap included).
  [[nodiscard]] std::size_t in_flight() const noexcept { return acked_.size(); }

 private:
  void advance() {
    while (!acked_.empty() && acked_.front()) {
      acked_.pop_front();
      ++acked_through_;
    }
  }

  std::uint64_t acked_through_ = 0;
  std::uint64_t next_ = 1;
  std::deque<bool> acked_;  ///< seqs acked_through_+1 .. next_-1
  bool rewind_ = false;
};

}  // namespace lam::daemon
