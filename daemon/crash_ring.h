#pragma once
/// The crash ring: the last N published events and their transitions, in a memory-mapped file.
///
/// The matcher thread writes every event here (a memcpy into a MAP_SHARED page, no syscall) before
/// anyone else sees it. The pages belong to the kernel's page cache, so they survive the process
/// being killed (SIGKILL, OOM, a crash), though not a power loss. At start-up `recover()` returns
/// the events newer than the last journaled seq, so `laminator run` can journal them and apply
/// their transitions before loading state: no published alert fires again, and seq is never reused.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/event.h"
#include "persistence/write_op.h"

namespace lam::daemon {

/// One published event with the transition the writer was asked to apply for it.
struct RingRecord {
  Event event;
  db::WriteOp op;
  bool has_op = false;
};
static_assert(std::is_trivially_copyable_v<RingRecord>);

class CrashRing {
 public:
  /// Opens (creating or resizing) `path` with room for `slots` records. A ring written with another
  /// slot count is read and its records carried over (recover() returns them all); a ring of an
  /// unknown layout that holds data is refused (std::runtime_error), never thrown away.
  /// `journaled_through`: the journal's highest seq; a ring of another record layout (another
  /// build) whose events all lie at or below it is replaced (they are journaled), one that may hold
  /// later events is refused.
  CrashRing(const std::string& path, std::size_t slots, std::uint64_t journaled_through = 0);
  /// The size of a ring file of `slots` slots (reserved on disk when the ring is opened: a file
  /// system without that room is a std::runtime_error, never a SIGBUS later).
  [[nodiscard]] static std::size_t file_bytes(std::size_t slots) noexcept;
  ~CrashRing();
  CrashRing(const CrashRing&) = delete;
  CrashRing& operator=(const CrashRing&) = delete;

  /// Binds the ring to a database identity (engine_instance.instance_id, migration 0004). A ring
  /// written for another database is wiped: its events are not ours to recover. A ring bound with
  /// `legacy_owner` (the name-based binding of earlier versions) is rebound. Returns false when
  /// records were wiped.
  bool adopt(std::uint64_t owner, std::uint64_t legacy_owner = 0);

  /// Records written by an earlier process with seq > `after`, in seq order. Call before the first
  /// append(). Torn or foreign slots are skipped.
  [[nodiscard]] std::vector<RingRecord> recover(std::uint64_t after) const;
  /// Highest seq found in the file (0: empty); like recover(), before the first append().
  [[nodiscard]] std::uint64_t max_seq() const;

  /// Stores a record in slot seq % slots (after adopt()). Matcher thread only; no allocation, no
  /// syscall.
  void append(const RingRecord& r) noexcept;

 private:
  struct Slot;
  std::string path_;
  std::size_t slots_ = 0;
  std::size_t bytes_ = 0;
  void* map_ = nullptr;
  Slot* slot_ = nullptr;
  std::vector<RingRecord> carried_;  ///< read from a ring of another slot count
};

/// What start-up recovery journals: the ring's records newer than the journal's head, and those
/// that fill a hole in it (lost rows below the head). Pure: the caller reads the ring and the
/// journal.
struct RecoveryPlan {
  std::vector<RingRecord> records;    ///< to journal (as recovered) with their transitions, by seq
  std::uint64_t hole_seqs = 0;        ///< seqs missing below the journal's head
  std::uint64_t holes_filled = 0;     ///< of those, found in the ring
  std::uint64_t lost_above_head = 0;  ///< seqs above the head the ring no longer holds
  std::uint64_t last_seq = 0;         ///< the highest seq ever issued (journal or ring)
};
/// `ring`: CrashRing::recover(after) with `after` below the first hole; ascending seq.
/// `holes`: [first, last] runs missing from the journal, ascending (journal_holes()).
[[nodiscard]] RecoveryPlan plan_recovery(
    const std::vector<RingRecord>& ring, std::uint64_t journal_max,
    const std::vector<std::pair<std::uint64_t, std::uint64_t>>& holes);

}  // namespace lam::daemon
