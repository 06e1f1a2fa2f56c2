#pragma once
// Helpers shared by the writer's test files.

#include <chrono>
#include <thread>

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

}  // namespace lam::db
