#pragma once
/// The replay workload shared by bench/replay_bench and `laminator bench replay`: a state file of
/// 1,000 Binance markets, 10,000 positions and 100,000 alerts, and a generated tick file (random
/// walks per market, a trade every tenth line) that fires some alerts and liquidates some
/// positions. Files are generated once per size and seed into a directory and reused (a `complete`
/// marker).

#include <cstdint>
#include <filesystem>
#include <string>

#include "replay/replay.h"

namespace lam::bench {

struct ReplayFiles {
  std::filesystem::path dir, state, ticks;
  std::uintmax_t tick_bytes = 0;
};

/// Generates (or reuses) the files for `ticks` lines under `root` (the system's temporary
/// directory when empty); throws std::runtime_error when they cannot be written.
ReplayFiles make_replay_files(std::size_t ticks, std::uint64_t seed,
                              const std::filesystem::path& root = {});

/// One timed `laminator replay` over the files (events to /dev/null, no progress line):
/// `validate_only` parses and checks every line without the matcher (the parsing share). Throws
/// std::runtime_error when a line was refused or a full run fired nothing (a broken workload).
app::ReplaySummary run_replay_once(const ReplayFiles& f, std::size_t ticks, bool validate_only);

}  // namespace lam::bench
