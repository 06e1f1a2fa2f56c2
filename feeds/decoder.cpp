#include "feeds/decoder.h"

#include <limits>

#include "feeds/venues/venues.h"

namespace lam::feeds {

DecodeResult Decoder::decode(const char* data, std::size_t len, std::size_t capacity,
                             TimeNs recv_ts, std::vector<FeedEvent>& out) {
  ++stats_.frames;
  if (len == 0 || len > kMaxFrameBytes || capacity < len + kFramePadding) {
    ++stats_.malformed;
    return {FrameClass::malformed, 0};
  }
  const std::size_t before = out.size();
  const DecoderStats counted = stats_;
  DecodeResult r = do_decode(data, len, capacity, recv_ts, out);
  if (r.cls == FrameClass::malformed) {
    // A frame is all or nothing: never act on half of a broken frame, nor remember any of it (a
    // trade id it advanced past would hide the lost trade from the gap check).
    out.resize(before);
    r.ticks = 0;
    seq_.rollback();
    stats_ = counted;
    ++stats_.malformed;
  } else {
    seq_.commit();
    if (r.cls == FrameClass::rejected) ++stats_.rejected;
    if (r.cls == FrameClass::unexpected) ++stats_.unexpected;
  }
  stats_.ticks += r.ticks;
  return r;
}

void Decoder::emit_gap(std::vector<FeedEvent>& out, InstrumentId id, TimeNs recv_ts,
                       std::uint64_t missing) {
  ++stats_.gaps;
  FeedEvent e;
  e.kind = FeedEventKind::gap;
  e.venue = venue();
  e.reason = FeedReason::sequence_gap;
  e.tick.instrument = id;
  e.tick.recv_ts = recv_ts;
  e.tick.exch_ts = recv_ts;
  e.count = missing > std::numeric_limits<std::uint32_t>::max()
                ? std::numeric_limits<std::uint32_t>::max()
                : static_cast<std::uint32_t>(missing);
  out.push_back(e);
}

std::unique_ptr<Decoder> make_decoder(Venue venue, SymbolMap symbols) {
  return descriptor(venue).make_decoder(std::move(symbols));
}

}  // namespace lam::feeds
