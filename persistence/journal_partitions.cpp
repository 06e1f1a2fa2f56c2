#include "persistence/journal_partitions.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <pqxx/pqxx>

#include "persistence/partition_steps.h"

namespace lam::db {
namespace {

std::optional<std::int64_t> number_after(std::string_view s, std::string_view key,
                                         std::size_t& pos) {
  const std::size_t at = s.find(key, pos);
  if (at == std::string_view::npos) return {};
  std::size_t i = at + key.size();
  if (i < s.size() && s[i] == '\'') ++i;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v);
  if (ec != std::errc{}) return {};
  pos = static_cast<std::size_t>(end - s.data());
  return v;
}

bool step(pqxx::connection& c, const JournalPolicy& p, JournalReport& r, const std::string& what,
          const std::function<void(pqxx::work&)>& body) {
  return detail::partition_step(c, p.lock_timeout_ms, r.errors, what, body);
}

std::vector<SeqRange> read_ranges(pqxx::work& w) {
  std::vector<SeqRange> out;
  for (const auto& row : w.exec(
           "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
           "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'alert_events'::regclass")) {
    if (const auto b = parse_seq_bound(row[1].c_str()))
      out.push_back({row[0].as<std::string>(), b->first, b->second});
  }
  return out;
}

/// The end of the run of ranges holding `from` contiguously (`from` itself when none holds it).
std::int64_t cover_top(const std::vector<std::pair<std::int64_t, std::int64_t>>& have,
                       std::int64_t from) {
  for (bool moved = true; moved;) {
    moved = false;
    for (const auto& [lo, hi] : have) {
      if (lo <= from && from < hi) {
        from = hi;
        moved = true;
      }
    }
  }
  return from;
}

std::vector<std::pair<std::int64_t, std::int64_t>> bounds_of(const std::vector<SeqRange>& ranges) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const SeqRange& r : ranges) out.emplace_back(r.lo, r.hi);
  return out;
}

}  // namespace

std::optional<std::pair<std::int64_t, std::int64_t>> parse_seq_bound(std::string_view expr) {
  std::size_t pos = 0;
  const auto lo = number_after(expr, "FROM (", pos);
  if (!lo) return {};
  const auto hi = number_after(expr, "TO (", pos);
  if (!hi || *hi <= *lo) return {};
  return std::make_pair(*lo, *hi);
}

JournalPlan plan_journal_partitions(
    const JournalPolicy& policy, std::int64_t head, const std::vector<SeqRange>& existing,
    const std::vector<std::pair<std::int64_t, std::int64_t>>& strays) {
  JournalPlan plan;
  const std::int64_t size = std::max<std::int64_t>(policy.partition_seqs, 2);
  std::vector<std::pair<std::int64_t, std::int64_t>> have = bounds_of(existing);  // and planned
  const auto covering = [&](std::int64_t s) -> std::int64_t {  // hi of the range holding s, or 0
    for (const auto& [lo, hi] : have)
      if (lo <= s && s < hi) return hi;
    return 0;
  };
  // A range for seq s: on the grid of `size`, but starting where the range below it ends when that
  // is inside s's grid cell, and ending where the range above begins.
  const auto add_for = [&](std::int64_t s) {
    std::int64_t lo = (s - 1) / size * size + 1;
    std::int64_t hi = lo + size;
    for (const auto& [l, h] : have) {
      if (h <= s) lo = std::max(lo, h);
      if (l > s) hi = std::min(hi, l);
    }
    have.emplace_back(lo, hi);
    plan.create.emplace_back(lo, hi);
    return hi;
  };
  // Every seq in [from, to] held by some range (a bounded number of steps: ranges are cells).
  const auto cover = [&](std::int64_t from, std::int64_t to) {
    for (std::int64_t s = from, guard = 0; s <= to && guard < 4096; ++guard) {
      const std::int64_t hi = covering(s);
      s = hi != 0 ? hi : add_for(s);
    }
  };
  for (const auto& [lo, hi] : strays) cover(lo, hi);
  const std::int64_t next = head + 1;
  cover(next, next + size / 2);
  std::sort(plan.create.begin(), plan.create.end());
  std::vector<SeqRange> oldest_first = existing;
  std::sort(oldest_first.begin(), oldest_first.end(),
            [](const SeqRange& a, const SeqRange& b) { return a.lo < b.lo; });
  for (const SeqRange& r : oldest_first)
    if (r.hi <= next) plan.candidates.push_back(r.name);
  plan.seqs_ahead = cover_top(have, next) - next;
  return plan;
}

JournalReport keep_journal_partitions(pqxx::connection& c, const JournalPolicy& policy) {
  JournalReport r;
  std::vector<SeqRange> ranges;
  std::vector<std::pair<std::int64_t, std::int64_t>> strays;
  if (!step(c, policy, r, "read the journal's partitions", [&](pqxx::work& w) {
        ranges = read_ranges(w);
        r.head = w.exec("SELECT COALESCE(max(seq), 0) FROM alert_events")[0][0].as<std::int64_t>();
        // The default partition's rows, per cell of the grid: creating their ranges moves them out.
        for (const auto& row : w.exec_params(
                 "SELECT min(seq), max(seq) FROM alert_events_default GROUP BY (seq - 1) / $1",
                 std::max<std::int64_t>(policy.partition_seqs, 2)))
          strays.emplace_back(row[0].as<std::int64_t>(), row[1].as<std::int64_t>());
      }))
    return r;
  const JournalPlan plan = plan_journal_partitions(policy, r.head, ranges, strays);
  for (const auto& [lo, hi] : plan.create) {
    const std::string name = "alert_events_s" + std::to_string(lo);
    if (step(c, policy, r, "create " + name, [&](pqxx::work& w) {
          w.exec_params("SELECT create_journal_partition($1, $2)", lo, hi);
        }))
      r.created.push_back(name);
  }
  for (const std::string& name : plan.candidates) {
    bool expired = false;
    const bool ok = step(c, policy, r, "expire " + name, [&](pqxx::work& w) {
      const std::string part = w.quote_name(name);
      // Its newest row; an empty closed range is expired too.
      const bool old = w.exec_params(
                            "SELECT COALESCE(max(created_at) < now() - make_interval(hours => $1), "
                            "true) FROM " +
                                part,
                            static_cast<int>(policy.retain_hours))[0][0]
                           .as<bool>();
      if (!old) return;
      detail::expire_partition(w, "alert_events", name, policy.expiry, policy.archive_schema);
      expired = true;
    });
    if (!ok || !expired) break;  // ranges expire oldest first: a newer one is not older
    r.expired.push_back(name);
  }
  step(c, policy, r, "count", [&](pqxx::work& w) {
    ranges = read_ranges(w);
    r.seqs_ahead = cover_top(bounds_of(ranges), r.head + 1) - (r.head + 1);
    r.default_rows = w.exec("SELECT count(*) FROM alert_events_default")[0][0].as<std::int64_t>();
  });
  return r;
}

}  // namespace lam::db
