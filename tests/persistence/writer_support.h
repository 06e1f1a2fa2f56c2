#pragma once
// Helpers shared by the writer's test files.

#include <chrono>
#include <thread>

#include "engine/fixed.h"
#include "persistence/writer.h"

namespace lam::db {

/// Waits until everything submitted to `w` has been written (or `limit` passes).
inline bool wait_idle(const Writer& w, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!w.idle()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// A fill of order `order` (seq id of kind 0xF) as the engine loop builds it from the matcher's
/// order view; decimals as text.
inline WriteOp fill_op(const Uuid& order, const Uuid& position, const char* price, const char* size,
                       const char* fee, const char* realized, const char* locked, const char* entry,
                       std::uint8_t flags, TimeNs ts) {
  WriteOp op;
  op.kind = WriteKind::order_filled;
  op.id = order;
  op.ref = position;
  op.price = *parse_raw(price);
  op.size = *parse_raw(size);
  op.amount = *parse_raw(fee);
  op.realized = *parse_raw(realized);
  op.locked = *parse_raw(locked);
  op.entry = *parse_raw(entry);
  op.flags = flags;
  op.ts = ts;
  return op;
}

}  // namespace lam::db
