#pragma once
/// The padding trick: simdjson reads up to kFramePadding bytes past the end of its input. Instead
/// of copying each frame into a padded buffer, reserve that many writable bytes right after the
/// message inside Beast's flat_buffer (which is contiguous) and parse in place.

#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>

#include "feeds/decoder.h"

namespace lam::feeds {

struct FrameView {
  const char* data = nullptr;
  std::size_t len = 0;
  std::size_t capacity = 0;  ///< readable bytes from `data`: len + kFramePadding
};

/// Makes the readable bytes of `b` parseable in place. May reallocate (so take the view after
/// it); the view is valid until `b` is modified. Throws std::length_error when `b`'s maximum size
/// leaves no room for the padding.
inline FrameView pad_frame(boost::beast::flat_buffer& b) {
  const std::size_t len = b.size();
  b.prepare(kFramePadding);  // writable region directly after the readable one
  return {static_cast<const char*>(b.data().data()), len, len + kFramePadding};
}

}  // namespace lam::feeds
