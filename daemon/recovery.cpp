#include "daemon/recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>

#include "persistence/batch.h"
#include "persistence/journal.h"

namespace lam::daemon {
namespace {

/// How far below the journal's head start-up looks for holes (an index-only walk: ~0.3 s per
/// million rows here).
constexpr std::uint64_t kHoleScanSeqs = 1'000'000;

/// Ring records applied per statement and transaction during crash recovery.
constexpr std::size_t kRecoveryPage = 2'000;

}  // namespace

/// Journals what the previous process published but the writer had not stored yet, and applies
/// those events' transitions, before anything is loaded; checks the journal for holes below its
/// head and fills them from the ring where it still holds them. Returns the next seq to use.
Recovered recover(const std::string& url, const EngineConfig& ec, const std::string& shard,
                  std::unique_ptr<CrashRing>& ring_owner, spdlog::logger& log) {
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec("SET LOCAL app.origin = 'engine'");
  const std::uint64_t journal_max = db::journal_max_seq(tx);
  // Seq gaps a restore declared (migration 0009): the new history starts above the last one, and
  // a gap is not a hole.
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps = db::declared_seq_gaps(tx);
  const std::uint64_t seq_floor = gaps.empty() ? 0 : gaps.back().second;
  // Opened knowing the journal's head: a ring written by another build (another record layout)
  // is replaced when all its events are journaled, refused otherwise.
  if (!ec.crash_ring.empty())
    ring_owner = std::make_unique<CrashRing>(ec.crash_ring, ec.crash_ring_slots, journal_max);
  CrashRing* ring = ring_owner.get();
  auto holes =
      db::journal_holes(tx, journal_max > kHoleScanSeqs ? journal_max - kHoleScanSeqs : 0, 10'000);
  std::erase_if(holes, [&](const std::pair<std::uint64_t, std::uint64_t>& h) {
    return std::any_of(gaps.begin(), gaps.end(),
                       [&](const auto& g) { return h.first > g.first && h.second <= g.second; });
  });
  std::vector<RingRecord> recs;
  if (ring != nullptr) {
    // The ring's events belong to one database: its random instance id (migration 0004), not its
    // name, so a database dropped and recreated under the same name never adopts them; and its
    // cluster's system identifier with its oid, which a copy made with CREATE DATABASE ... TEMPLATE
    // (or a dump restored elsewhere) does not share although it copies the instance id (issue 32:
    // such a clone journaled the original's later events as "recovered"). A point-in-time restore
    // keeps both and gets a new instance id (engine_mark_restored).
    const db::DatabaseIdentity id = db::database_identity(tx);
    if (id.instance_id.empty())
      throw std::runtime_error("engine_instance is empty: run laminator migrate");
    // A shard's ring belongs to its journal (its seqs): the shard id is part of the owner.
    const std::uint64_t owner =
        std::hash<std::string>{}("instance/" + id.instance_id + "/cluster/" + id.system_identifier +
                                 "/oid/" + id.database_oid +
                                 (shard.empty() ? std::string() : "/shard/" + shard)) |
        1;
    const std::uint64_t legacy =
        std::hash<std::string>{}(id.system_identifier + "/" + id.database) | 1;
    if (!ring->adopt(owner, legacy)) {
      log.warn(
          "crash ring held events of another database (or of this one before a restore): "
          "discarded, not replayed");
    }
    recs = ring->recover(holes.empty() ? journal_max : holes.front().first - 1);
  }
  const RecoveryPlan plan = plan_recovery(recs, journal_max, holes);
  Recovered out;
  out.next_seq = std::max({plan.last_seq, ring != nullptr ? ring->max_seq() : 0, seq_floor}) + 1;
  if (seq_floor >= journal_max && seq_floor > 0 && plan.records.empty()) {
    log.info(
        "restored database: events continue from seq {} (seqs {}..{} belong to the history "
        "the restore went back from)",
        seq_floor + 1, gaps.back().first + 1, seq_floor);
  }
  out.holes_unfilled = plan.hole_seqs - plan.holes_filled;
  std::string hole_ranges;
  for (std::size_t i = 0; i < holes.size() && i < 10; ++i)
    hole_ranges += fmt::format("{}{}..{}", i ? ", " : "", holes[i].first, holes[i].second);
  tx.commit();  // read only so far; the records are applied in pages below
  if (!plan.records.empty()) {
    // Paged: each page of records (in seq order, transitions with their events) is one statement
    // in its own transaction, so recovery after a burst is bounded per step, shows its progress,
    // and a process killed during it resumes from the last committed page (the journal's head).
    db::prepare_batch(c);
    std::size_t conflicts = 0;
    const std::size_t pages = (plan.records.size() + kRecoveryPage - 1) / kRecoveryPage;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t page = 0; page < pages; ++page) {
      const std::size_t from = page * kRecoveryPage;
      const std::size_t to = std::min(plan.records.size(), from + kRecoveryPage);
      db::Batch b;
      for (std::size_t i = from; i < to; ++i) {
        const RingRecord& r = plan.records[i];
        if (r.has_op) b.add(r.op);
        b.add_event(r.event, true);
      }
      pqxx::work w(c);
      w.exec("SET LOCAL app.origin = 'engine'");
      conflicts += db::apply_batch(w, b).conflicts.size();
      w.commit();
      if (pages > 1) {
        log.info("crash recovery: page {}/{} (seq {}..{}) journaled, {:.1f} s", page + 1, pages,
                 plan.records[from].event.seq, plan.records[to - 1].event.seq,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    log.warn(
        "crash recovery: journaled {} events the previous run published but had not stored (seq "
        "{}..{}; {} of them filling holes below the journal's head), {} transitions conflicted{}",
        plan.records.size(), plan.records.front().event.seq, plan.records.back().event.seq,
        plan.holes_filled, conflicts,
        plan.lost_above_head > 0
            ? fmt::format("; {} seqs were overwritten in the ring and are lost",
                          plan.lost_above_head)
            : std::string());
  }
  if (out.holes_unfilled > 0) {
    log.error(
        "journal check: {} seq(s) below the journal's head are missing and not in the crash ring "
        "({}{}): those events are lost to resuming subscribers and their transitions may not be "
        "applied (a server crash with synchronous_commit off?)",
        out.holes_unfilled, hole_ranges, holes.size() > 10 ? ", ..." : "");
  }
  return out;
}

}  // namespace lam::daemon
