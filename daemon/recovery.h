#pragma once
/// Crash recovery at start-up (docs/operations.md, "Shutdown and restarts"): what the previous
/// process published but had not stored is journaled from the crash ring, with its transitions
/// applied, before anything is loaded; holes below the journal's head are filled from the ring
/// where it still holds them. The pure part (which records, in which order) is plan_recovery
/// (daemon/crash_ring.h).

#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <string>

#include "daemon/config.h"
#include "daemon/crash_ring.h"

namespace lam::daemon {

/// What recovery found.
struct Recovered {
  std::uint64_t next_seq = 1;
  std::uint64_t holes_unfilled = 0;  ///< seqs missing from the journal that the ring did not hold
};

/// Opens the crash ring (`ec.crash_ring`, into `ring_owner`), journals and applies what it holds
/// beyond the journal, and returns the next seq to use. `shard`: this daemon's shard id, or "".
[[nodiscard]] Recovered recover(const std::string& url, const EngineConfig& ec,
                                const std::string& shard, std::unique_ptr<CrashRing>& ring_owner,
                                spdlog::logger& log);

}  // namespace lam::daemon
