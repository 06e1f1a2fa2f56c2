#pragma once
/// One subscriber's position in the stream: where it resumes, where its next events come from
/// (the in-memory ring, a journal page, live), what is queued for its socket, and when it must be
/// closed. Pure: the WebSocket session feeds it calls and carries out what it answers, so every
/// resume, hand-off, slow-consumer and gap decision is unit-tested without a socket.
///
/// Catch-up is paced by the socket: events are pulled from the ring or a journal page only while
/// the queue has room, and pulling resumes as writes complete (on_written), so a reader of any
/// speed resumes from any point the journal holds. Only a live subscriber whose queue is full is
/// slow (1008). The cursor is the highest seq considered (queued or filtered out); every event up
/// to it was queued or did not match, and no seq is ever queued twice.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "stream/event_ring.h"
#include "stream/journal_reader.h"
#include "stream/stream_filter.h"

namespace lam::daemon {

class Subscription {
 public:
  enum class Phase : std::uint8_t { handshake, catch_up, live, closed };
  /// Why a subscriber is closed (for metrics; the reason text goes to the client).
  enum class CloseKind : std::uint8_t {
    slow,
    gap,
    ahead,
    no_journal,
    journal_error,
    not_journaled,
    server
  };
  struct CloseOrder {
    std::uint16_t code = 1000;
    CloseKind kind = CloseKind::server;
    std::string reason;
    bool with_since = false;  ///< append "; resume with since=N" (N taken when the frame is sent)
  };
  struct JournalRequest {
    std::uint64_t after = 0;       ///< rows with seq > after
    std::size_t limit = 0;         ///< at most this many rows
    std::uint64_t generation = 0;  ///< hand back with the page; a stale page is ignored
    std::vector<Uuid> users;       ///< the filter's users (empty: all)
  };

  /// `queue_cap`: events queued before a live subscriber is slow; also the journal page size.
  /// `known_head`: the highest seq that exists anywhere, when the journal may be ahead of the
  /// ring (the gateway's: JetStream holds what it has not served yet after a restart). A `since`
  /// up to it is not "ahead": the subscriber waits live for the ring to pass it. 0: the ring's
  /// head is the limit.
  /// `committed_only` (the `committed=1` mode): an event is sent only once its seq is at or below
  /// the committed head (on_committed); until then it waits in the queue, counting towards
  /// `queue_cap` like any other.
  Subscription(const EventRing& ring, StreamFilter filter, std::optional<std::uint64_t> since,
               std::size_t queue_cap, bool have_journal, std::uint64_t known_head = 0,
               bool committed_only = false, std::uint64_t committed_head = 0);

  /// The WebSocket handshake completed: start live at the head, or catch up from `since`.
  void on_accepted();
  /// The server pushed `e` to the ring (in seq order).
  void on_live(const Entry& e);
  /// The page asked for by take_journal_request() arrived.
  void on_journal(JournalPage page, std::uint64_t generation);
  /// Composes the next message from the queue (one event JSON per line, up to `max_bytes` unless
  /// one event is larger) into `out`; returns how many events it holds (0: nothing to write).
  std::size_t compose(std::string& out, std::size_t max_bytes);
  /// The composed message was written.
  void on_written();
  /// Everything up to `head` is journaled (committed_only: those events may be sent now).
  void on_committed(std::uint64_t head) noexcept {
    if (head > committed_) committed_ = head;
  }
  [[nodiscard]] bool committed_only() const noexcept { return committed_only_; }
  /// The client replaced its filter (scope already checked).
  void set_filter(StreamFilter f);
  /// Orders a close (first order wins); queued events not yet in flight are dropped.
  void close(std::uint16_t code, CloseKind kind, std::string reason, bool with_since = false);
  /// The close frame's reason text, as of now (call it when the frame is sent).
  [[nodiscard]] std::string close_text() const;

  /// A journal read to start, at most one outstanding.
  [[nodiscard]] std::optional<JournalRequest> take_journal_request();
  /// Set once a close was ordered.
  [[nodiscard]] const std::optional<CloseOrder>& close_order() const noexcept { return close_; }
  [[nodiscard]] Phase phase() const noexcept { return phase_; }
  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
  [[nodiscard]] bool in_flight() const noexcept { return in_flight_ > 0; }
  [[nodiscard]] std::uint64_t cursor() const noexcept { return cursor_; }
  /// Every event up to this seq was written to the socket or did not match: resume from here.
  [[nodiscard]] std::uint64_t written() const noexcept {
    return queue_.empty() ? cursor_ : queue_.front().meta.seq - 1;
  }
  [[nodiscard]] bool resumed() const noexcept { return resumed_; }

 private:
  void pump();
  void consider(const Entry& e);  ///< advances the cursor; queues `e` when it matches
  void fail(std::uint16_t code, CloseKind kind, const std::string& what);

  const EventRing& ring_;
  StreamFilter filter_;
  std::optional<std::uint64_t> since_;
  std::size_t cap_;
  bool have_journal_;
  std::uint64_t known_head_;
  bool committed_only_ = false;
  std::uint64_t committed_ = 0;
  Phase phase_ = Phase::handshake;
  std::optional<CloseOrder> close_;

  std::deque<Entry> queue_;  ///< the first in_flight_ are being written
  std::size_t in_flight_ = 0;
  std::uint64_t cursor_ = 0;
  bool resumed_ = false;

  // Journal catch-up.
  std::deque<JournalRow> backlog_;    ///< the current page's rows not yet queued
  std::uint64_t backlog_covers_ = 0;  ///< a complete page covered every seq up to this
  bool page_was_complete_ = false;    ///< the last page reached the journal's end
  bool awaiting_page_ = false;
  std::optional<JournalRequest> request_;
  std::uint64_t generation_ = 0;
};

}  // namespace lam::daemon
