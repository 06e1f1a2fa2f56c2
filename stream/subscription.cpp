#include "stream/subscription.h"

#include <algorithm>
#include <utility>

namespace lam::daemon {

Subscription::Subscription(const EventRing& ring, StreamFilter filter,
                           std::optional<std::uint64_t> since, std::size_t queue_cap,
                           bool have_journal, std::uint64_t known_head, bool committed_only,
                           std::uint64_t committed_head)
    : ring_(ring),
      filter_(std::move(filter)),
      since_(since),
      cap_(queue_cap == 0 ? 1 : queue_cap),
      have_journal_(have_journal),
      known_head_(known_head),
      committed_only_(committed_only),
      committed_(committed_head) {}

void Subscription::on_accepted() {
  if (close_ || phase_ != Phase::handshake) return;  // closed while the handshake ran
  const std::uint64_t head = ring_.head();
  if (!since_ || *since_ == head) {
    cursor_ = head;
    phase_ = Phase::live;
    return;
  }
  if (*since_ > head && *since_ <= known_head_) {
    // Served before (by a previous run of the gateway) and not yet again: live from there; the
    // ring's events up to `since` are skipped as they arrive.
    resumed_ = true;
    cursor_ = *since_;
    phase_ = Phase::live;
    return;
  }
  if (*since_ > head) {
    // The client holds seqs this stream never published (another database, a restore, a typo).
    // Serving it live would hand it events under seqs it already has.
    cursor_ = head;
    return close(1008, CloseKind::ahead,
                 "since ahead: since=" + std::to_string(*since_) +
                     " is beyond this stream's head " + std::to_string(head));
  }
  resumed_ = true;
  cursor_ = *since_;
  phase_ = Phase::catch_up;
  pump();
}

void Subscription::on_live(const Entry& e) {
  if (phase_ != Phase::live || e.meta.seq <= cursor_) return;  // catch-up pulls from the ring
  if (e.meta.seq != cursor_ + 1) return fail(1008, CloseKind::gap, "server fell behind");
  if (!filter_.matches(e.meta)) {
    cursor_ = e.meta.seq;
    return;
  }
  if (queue_.size() >= cap_) return fail(1008, CloseKind::slow, "slow consumer");
  cursor_ = e.meta.seq;
  queue_.push_back(e);
}

void Subscription::on_journal(JournalPage page, std::uint64_t generation) {
  if (generation != generation_ || !awaiting_page_ || phase_ != Phase::catch_up) return;
  awaiting_page_ = false;
  if (!page.ok) return fail(1011, CloseKind::journal_error, "journal unavailable");
  backlog_.assign(std::make_move_iterator(page.rows.begin()),
                  std::make_move_iterator(page.rows.end()));
  page_was_complete_ = page.complete;
  // A complete page covers every matching row up to the journal's head; any page covers up to the
  // last row it read (rows skipped as unreadable included, so a page of them still advances).
  backlog_covers_ = page.complete ? std::max(page.max_journaled, page.last_seq) : page.last_seq;
  pump();
}

std::size_t Subscription::compose(std::string& out, std::size_t max_bytes) {
  out.clear();
  if (in_flight_ > 0 || queue_.empty()) return 0;
  while (in_flight_ < queue_.size() && (out.empty() || out.size() < max_bytes) &&
         (!committed_only_ || queue_[in_flight_].meta.seq <= committed_)) {
    if (!out.empty()) out.push_back('\n');
    out.append(*queue_[in_flight_].json);
    ++in_flight_;
  }
  return in_flight_;
}

void Subscription::on_written() {
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
  in_flight_ = 0;
  pump();
}

void Subscription::set_filter(StreamFilter f) {
  filter_ = std::move(f);
  if (phase_ != Phase::catch_up) return;
  // Journal pages were selected for the old filter's users: read again from the cursor.
  backlog_.clear();
  backlog_covers_ = 0;
  page_was_complete_ = false;
  if (awaiting_page_) {
    awaiting_page_ = false;
    ++generation_;
    request_.reset();
  }
  pump();
}

void Subscription::close(std::uint16_t code, CloseKind kind, std::string reason, bool with_since) {
  if (close_) return;
  close_ = CloseOrder{code, kind, std::move(reason), with_since};
  if (queue_.size() > in_flight_) {
    // Dropped events were never written: the resume point goes back to just before them.
    cursor_ = queue_[in_flight_].meta.seq - 1;
    queue_.resize(in_flight_);
  }
  phase_ = Phase::closed;
  backlog_.clear();
  request_.reset();
}

std::string Subscription::close_text() const {
  if (!close_) return {};
  if (!close_->with_since) return close_->reason;
  return close_->reason + "; resume with since=" + std::to_string(written());
}

std::optional<Subscription::JournalRequest> Subscription::take_journal_request() {
  return std::exchange(request_, std::nullopt);
}

void Subscription::pump() {
  while (phase_ == Phase::catch_up && queue_.size() < cap_) {
    if (!backlog_.empty()) {
      JournalRow r = std::move(backlog_.front());
      backlog_.pop_front();
      if (r.meta.seq > cursor_)
        consider(Entry{r.meta, std::make_shared<const std::string>(std::move(r.body))});
      continue;
    }
    if (awaiting_page_) return;
    if (backlog_covers_ > cursor_) cursor_ = backlog_covers_;
    if (cursor_ >= ring_.head()) {
      // Caught up. Go live only with room in the queue: handing over with a full queue would cut a
      // reader that is keeping pace as slow at the next live event. Until then later events are
      // pulled from the ring as writes complete, like the rest of the catch-up.
      if (queue_.size() <= cap_ / 2) phase_ = Phase::live;
      return;
    }
    if (const Entry* e = ring_.find(cursor_ + 1)) {
      page_was_complete_ = false;
      consider(*e);
      continue;
    }
    // cursor_ + 1 is older than the ring: the journal has it, or nobody does yet. Before giving up,
    // what is queued goes out, so the client resumes from as far as it can get now.
    if ((!have_journal_ || page_was_complete_) && !queue_.empty()) return;
    if (!have_journal_)
      return fail(1011, CloseKind::no_journal,
                  "resume point is older than the server's memory and there is no journal");
    if (page_was_complete_) return fail(1013, CloseKind::not_journaled, "events not journaled yet");
    awaiting_page_ = true;
    request_ = JournalRequest{cursor_, cap_, ++generation_, filter_.users};
    return;
  }
}

void Subscription::consider(const Entry& e) {
  cursor_ = e.meta.seq;
  if (filter_.matches(e.meta)) queue_.push_back(e);
}

void Subscription::fail(std::uint16_t code, CloseKind kind, const std::string& what) {
  close(code, kind, what, true);
}

}  // namespace lam::daemon
