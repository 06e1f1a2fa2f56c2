#pragma once
/// The shard publisher's decisions (scaleout/jetstream_publisher.cpp does the nats.c and libpqxx
/// calls and what this says). Pure, with unit tests (tests/scaleout/scaleout_unit_test.cpp).
///
/// - judge_tail(): whether the stream's last message on the shard's subject is one this shard
///   wrote, so that publishing may resume after it. A stranger's message, or a journal restored
///   below what the stream holds, must never make the shard skip journaled events.
/// - PublishCursor: which seq goes next and where it comes from: the live events the matcher
///   publishes (bounded; an overflow is read back from the journal), the journal's backlog, or
///   neither (seqs that are not coming: a jump, declared by a restore or counted as lost). It owns
///   the PublishWindow (in flight, acknowledged, rewind).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "scaleout/gateway_event.h"
#include "scaleout/publish_window.h"
#include "stream/event_ring.h"

namespace lam::daemon {

/// The stream's last message on the shard's subject, as read at (re)connection.
struct StreamTail {
  std::string msg_id;  ///< its Nats-Msg-Id ("" when it has none)
  std::string body;
};

struct TailVerdict {
  enum class Kind : std::uint8_t {
    resume,        ///< the shard's own: publishing resumes after `stored`
    foreign_id,    ///< its id is not "<this shard>:<seq>"
    beyond_head,   ///< a seq beyond anything this shard journaled
    not_journaled  ///< the journal's event of that seq has another body: not the shard's message
  };
  Kind kind = Kind::resume;
  std::uint64_t stored = 0;  ///< the tail's seq (0: the stream holds nothing of the shard)
  [[nodiscard]] bool trusted() const noexcept { return kind == Kind::resume; }
};

/// `tail`: none when the stream holds nothing on the subject. `head`: the shard's last journaled
/// seq. `journal_body`: the journal's body of the tail's seq when the journal still holds it (the
/// body as first published; a recovered row's too). A tail the shard cannot check against its
/// journal (retention removed the row) is trusted by its seq alone.
[[nodiscard]] inline TailVerdict judge_tail(std::string_view shard,
                                            const std::optional<StreamTail>& tail,
                                            std::uint64_t head,
                                            const std::optional<std::string>& journal_body) {
  TailVerdict v;
  if (!tail) return v;
  const auto ss = parse_msg_id(tail->msg_id);
  if (!ss || ss->shard != shard) {
    v.kind = TailVerdict::Kind::foreign_id;
    return v;
  }
  v.stored = ss->seq;
  if (ss->seq > head)
    v.kind = TailVerdict::Kind::beyond_head;
  else if (journal_body && *journal_body != tail->body)
    v.kind = TailVerdict::Kind::not_journaled;
  return v;
}

class PublishCursor {
 public:
  using Gap = std::pair<std::uint64_t, std::uint64_t>;  ///< seqs [first, last]

  struct Step {
    enum class Kind : std::uint8_t {
      wait,          ///< nothing to do now: the window is full, or every journaled seq is sent
      send,          ///< publish `entry` (seq `seq`), then sent()
      read_journal,  ///< neither live nor backlog holds `seq`: read the journal from it (backlog())
      jump           ///< seqs [seq, to) are not coming: check a declared gap, then jumped()
    };
    Kind kind = Kind::wait;
    std::uint64_t seq = 0;
    std::uint64_t to = 0;          ///< jump: the first seq after it
    const Entry* entry = nullptr;  ///< send
    bool from_live = false;        ///< send
    std::optional<Gap> gap;        ///< send: a declared gap right before it (Laminator-Gap)
  };

  explicit PublishCursor(std::size_t live_capacity)
      : live_capacity_(std::max<std::size_t>(live_capacity, 1)) {}

  /// (Re)connected: the stream holds everything up to `stored`.
  void reset(std::uint64_t stored) { window_.reset(stored); }

  /// A live event from the matcher. Events already published are dropped; beyond the capacity the
  /// oldest is dropped (it is read back from the journal): true then, to be counted.
  bool offer_live(Entry e) {
    if (e.meta.seq < window_.next()) return false;
    bool overflow = false;
    if (live_.size() >= live_capacity_) {
      live_.pop_front();
      overflow = true;
    }
    live_.push_back(std::move(e));
    return overflow;
  }
  [[nodiscard]] bool live_empty() const noexcept { return live_.empty(); }

  /// The journal's rows from a read_journal step's seq on, ascending (replaces the backlog).
  std::deque<Entry>& backlog() { return backlog_; }

  /// What to do next, with `head` the last journaled seq and at most `max_pending` in flight.
  [[nodiscard]] Step next(std::uint64_t head, std::size_t max_pending) {
    Step st;
    if (window_.in_flight() >= max_pending || window_.next() > head) return st;
    const std::uint64_t s = window_.next();
    st.seq = s;
    while (!live_.empty() && live_.front().meta.seq < s) live_.pop_front();
    if (!live_.empty() && live_.front().meta.seq == s) {
      st.kind = Step::Kind::send;
      st.entry = &live_.front();
      st.from_live = true;
    } else {
      while (!backlog_.empty() && backlog_.front().meta.seq < s) backlog_.pop_front();
      if (backlog_.empty()) {
        st.kind = Step::Kind::read_journal;
        return st;
      }
      if (backlog_.front().meta.seq > s) {
        // The journal holds later events but not these: they are not coming. Jumped over once
        // what is in flight is acknowledged (the window's rule), rather than stalling the shard.
        if (window_.in_flight() > 0) return Step{};
        st.kind = Step::Kind::jump;
        st.to = std::min(backlog_.front().meta.seq,
                         live_.empty() ? UINT64_MAX : live_.front().meta.seq);
        return st;
      }
      st.kind = Step::Kind::send;
      st.entry = &backlog_.front();
    }
    if (gap_before_ && gap_before_->second + 1 == s) st.gap = gap_before_;
    return st;
  }

  /// The send step `st` was handed to the client library.
  void sent(const Step& st) {
    window_.sent();
    if (st.from_live)
      live_.pop_front();
    else
      backlog_.pop_front();
  }

  /// The jump step `st` was taken; `declared`: a restore declared those seqs skipped (named on the
  /// next event). Returns how many seqs were lost (0 when declared).
  std::uint64_t jumped(const Step& st, bool declared) {
    window_.jump(st.to);
    if (declared) {
      gap_before_ = Gap{st.seq, st.to - 1};
      return 0;
    }
    return st.to - st.seq;
  }

  [[nodiscard]] PublishWindow& window() noexcept { return window_; }
  [[nodiscard]] const PublishWindow& window() const noexcept { return window_; }

 private:
  std::size_t live_capacity_;
  PublishWindow window_;
  std::deque<Entry> live_, backlog_;
  /// The last restore's declared gap jumped over: named on the event right after it.
  std::optional<Gap> gap_before_;
};

}  // namespace lam::daemon
