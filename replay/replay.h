#pragma once
/// `laminator replay`: runs the matcher over a state file and a file of ticks.

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/event.h"

namespace lam::app {

struct ReplayOptions {
  std::string state_path;
  std::string ticks_path;
  /// Raw captures (feeds/capture.h) instead of `ticks_path`: every frame goes through the venue
  /// parsers, files merged in receive-time order, deterministically.
  std::vector<std::string> raw_paths;
  std::string events_out;  ///< empty: stdout
  std::string state_out;   ///< empty: not written
  bool strict = false;     ///< exit non-zero when any input was bad
  /// A progress line (bytes, ticks/s, ETA) redrawn in place on the diagnostics stream when it is a
  /// terminal; nothing when it is not (a log, a pipe, a test)
  bool progress = true;
  bool write_events = true;
  bool validate_only = false;        ///< parse and check every line, but do not run the matcher
  std::size_t max_error_lines = 50;  ///< diagnostics printed per kind before they are only counted
  std::uint32_t slippage_bps = 0;    ///< [paper] slippage_bps of the daemon being replayed
  /// --contract-size VENUE:SYMBOL=SIZE: contract sizes (raw fixed-point) for captures recorded
  /// before they carried them; they win over the capture's own `S` records.
  std::map<std::string, std::int64_t> contract_sizes;
};

struct ReplaySummary {
  std::uint64_t lines = 0;  ///< lines, or frames for raw captures
  std::uint64_t ticks = 0;
  std::uint64_t bad_lines = 0;
  std::uint64_t bad_state_rows = 0;
  std::array<std::uint64_t, kEventTypeCount> events_by_type{};  ///< indexed by EventType
  std::uint64_t events = 0;
  // Raw captures (--raw) only:
  std::uint64_t unknown_symbol_ticks = 0;  ///< ticks of symbols no market in the state trades on
  std::uint64_t unknown_symbols = 0;       ///< distinct such symbols (each reported once)
  std::uint64_t gaps = 0;                  ///< venue sequence gaps the parsers reported
  std::uint64_t gap_ids = 0;               ///< ids those gaps missed
  std::uint64_t unsized_trades = 0;    ///< trades replayed without a size (contract size unknown)
  std::uint64_t inverse_ticks = 0;     ///< ticks of inverse contracts: not served, as live
  std::uint64_t oracle_stale = 0;      ///< oracle updates held as too old (max_age_ms)
  std::uint64_t oracle_uncertain = 0;  ///< oracle updates held as too uncertain (max_conf_bps)
  double seconds = 0;                  ///< the whole run
  double state_seconds = 0;            ///< of which reading the state and arming the matcher
  /// Ticks per second of the tick phase (after the state is armed); 0 when there was none.
  [[nodiscard]] double tick_rate() const {
    return seconds > state_seconds ? static_cast<double>(ticks) / (seconds - state_seconds) : 0;
  }
};

/// Runs a replay; diagnostics and the summary go to `diag`. Throws std::runtime_error when an input
/// cannot be read or an output cannot be written.
/// Parses "VENUE:SYMBOL=SIZE" (e.g. okx:BTC-USDT-SWAP=0.01) into contract_sizes' key and raw
/// size; nullopt (and why, when `why` is set) when it is not that shape, SIZE is not a positive
/// decimal, or SYMBOL is an inverse contract (refused as the daemon refuses it).
[[nodiscard]] std::optional<std::pair<std::string, std::int64_t>> parse_contract_size(
    std::string_view spec, std::string* why = nullptr);

ReplaySummary run_replay(const ReplayOptions& opt, std::FILE* diag);

/// The summary as the lines printed at the end of a replay.
std::string format_summary(const ReplaySummary& s);

}  // namespace lam::app
