#include "feeds/feed_event.h"

namespace lam::feeds {

std::string_view state_name(FeedState s) noexcept {
  switch (s) {
    case FeedState::connecting:
      return "connecting";
    case FeedState::resyncing:
      return "resyncing";
    case FeedState::live:
      return "live";
    case FeedState::stale:
      return "stale";
  }
  return "?";
}

std::string_view reason_name(FeedReason r) noexcept {
  switch (r) {
    case FeedReason::none:
      return "none";
    case FeedReason::connect:
      return "connect";
    case FeedReason::subscribed:
      return "subscribed";
    case FeedReason::first_data:
      return "first_data";
    case FeedReason::data_resumed:
      return "data_resumed";
    case FeedReason::no_data:
      return "no_data";
    case FeedReason::disconnected:
      return "disconnected";
    case FeedReason::idle_timeout:
      return "idle_timeout";
    case FeedReason::venue_notice:
      return "venue_notice";
    case FeedReason::sequence_gap:
      return "sequence_gap";
    case FeedReason::queue_overflow:
      return "queue_overflow";
    case FeedReason::lifetime:
      return "lifetime";
    case FeedReason::oracle_stale:
      return "oracle_stale";
    case FeedReason::oracle_uncertain:
      return "oracle_uncertain";
  }
  return "?";
}

}  // namespace lam::feeds
