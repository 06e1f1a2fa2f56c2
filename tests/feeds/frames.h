#pragma once
// Test helpers: fixture frames from tests/data/feeds and padded decoding.

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "feeds/decoder.h"

namespace lam::feeds::test {

inline std::vector<std::string> load_frames(const std::string& venue) {
  const std::string path =
      std::string(LAMINATOR_SOURCE_DIR) + "/tests/data/feeds/" + venue + ".frames";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> frames;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) frames.push_back(line);
  }
  return frames;
}

/// Decodes `frame` from a buffer padded the way the WebSocket session pads it.
inline DecodeResult decode(Decoder& d, std::string_view frame, TimeNs recv_ts,
                           std::vector<FeedEvent>& out) {
  std::string buf(frame);
  buf.append(kFramePadding, '\0');
  return d.decode(buf.data(), frame.size(), buf.size(), recv_ts, out);
}

inline std::vector<Tick> ticks_of(const std::vector<FeedEvent>& evs) {
  std::vector<Tick> ticks;
  for (const FeedEvent& e : evs) {
    if (e.kind == FeedEventKind::tick) ticks.push_back(e.tick);
  }
  return ticks;
}

/// The price ticks (mark, trade, BBO) of `evs`: funding announcements left out.
inline std::vector<Tick> price_ticks_of(const std::vector<FeedEvent>& evs) {
  std::vector<Tick> out;
  for (const Tick& t : ticks_of(evs))
    if (t.kind != TickKind::funding) out.push_back(t);
  return out;
}

/// The funding announcements of `evs`.
inline std::vector<Tick> funding_ticks_of(const std::vector<FeedEvent>& evs) {
  std::vector<Tick> out;
  for (const Tick& t : ticks_of(evs))
    if (t.kind == TickKind::funding) out.push_back(t);
  return out;
}

}  // namespace lam::feeds::test
