#include "app/bench_scenarios.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>

#include "engine/matcher.h"
#include "persistence/local_cluster.h"
#include "persistence/migrator.h"
#include "persistence/seed_rows.h"
#include "workloads/fanin_workload.h"
#include "workloads/matcher_workload.h"
#include "workloads/pipeline_workload.h"
#include "workloads/replay_workload.h"
#include "workloads/writer_workload.h"

namespace lam::app {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// ns per quiet tick over `seconds`, in chunks of the ring; throws if a quiet tick fired.
template <class M>
double time_quiet(bench::World<M>& w, double seconds, std::size_t& cursor) {
  std::vector<Event> events;
  // Chunks grow while they take under 1 ms: a clock read per 4,096 ladder ticks, but a scan at 1M
  // (~0.2 ms a tick) is not overshot by seconds.
  std::size_t chunk = 1;
  std::size_t ticks = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  auto now = start;
  do {
    const auto before = now;
    bench::run_quiet(w, cursor, chunk, events);
    cursor += chunk;
    ticks += chunk;
    now = Clock::now();
    if (chunk < 4096 && now - before < std::chrono::milliseconds(1)) chunk *= 2;
  } while (now < end);
  if (!events.empty()) throw std::runtime_error("bench matcher: a quiet tick fired events");
  return std::chrono::duration<double, std::nano>(now - start).count() / static_cast<double>(ticks);
}

/// ns per tick of a batch workload (FiringBatch, OrderFillBatch) over `seconds` of timed batches
/// (arming between batches is not timed).
template <class Batch>
double time_batches(bench::World<Matcher>& w, Batch& batch, double seconds, const char* what) {
  std::vector<Event> events;
  double timed = 0;
  std::size_t ticks = 0;
  while (timed < seconds || ticks == 0) {
    const double s = batch.run(w, events);
    if (s < 0) throw std::runtime_error(std::string("bench matcher: ").append(what));
    timed += s;
    ticks += batch.batch.size();
  }
  return timed * 1e9 / static_cast<double>(ticks);
}

/// One point per repetition at the time it ended, as a rate (ns/tick samples become ticks/s).
BenchCurve per_repetition_curve(const BenchMeasurement& m, const std::vector<double>& at) {
  const bool per_tick = m.unit == "ns/tick";
  BenchCurve c{m.name, m.label, per_tick ? "ticks/s" : m.unit, {}};
  for (std::size_t i = 0; i < m.samples.size() && i < at.size(); ++i) {
    c.points.emplace_back(at[i], per_tick ? 1e9 / m.samples[i] : m.samples[i]);
  }
  return c;
}

/// The quantiles the latency charts draw, from sorted samples (1 = the maximum).
BenchCurve percentile_curve(std::string name, std::string label,
                            const std::vector<double>& sorted) {
  BenchCurve c{std::move(name), std::move(label), "us", {}};
  if (sorted.empty()) return c;
  for (const double q : {0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999}) {
    // A quantile with fewer than two samples beyond it is the maximum's: not drawn twice.
    if ((1 - q) * static_cast<double>(sorted.size()) < 2) break;
    c.points.emplace_back(q, bench::sorted_quantile(sorted, q));
  }
  c.points.emplace_back(1.0, sorted.back());
  return c;
}

int reps_or(const BenchOptions& opt, int fallback) {
  return opt.repetitions > 0 ? opt.repetitions : fallback;
}

}  // namespace

BenchProgress::BenchProgress(std::FILE* out, bool wanted, std::string scenario)
    : out_(out),
      on_(wanted && out != nullptr && ::isatty(::fileno(out)) == 1),
      scenario_(std::move(scenario)) {}

void BenchProgress::show(const std::string& what, int rep, int reps) {
  if (!on_) return;
  if (reps > 0) {
    std::fprintf(out_, "\rbench %s: %s %d/%d\x1b[K", scenario_.c_str(), what.c_str(), rep, reps);
  } else {
    std::fprintf(out_, "\rbench %s: %s\x1b[K", scenario_.c_str(), what.c_str());
  }
  std::fflush(out_);
}

void BenchProgress::done() {
  if (!on_) return;
  std::fprintf(out_, "\r\x1b[K");
  std::fflush(out_);
}

std::string group_digits(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

std::string human_figure(double v, bool compact) {
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 1e7 || (compact && a >= 1e6)) {
    std::snprintf(buf, sizeof buf, compact ? "%.3gM" : "%.2fM", v / 1e6);
  } else if (a >= 1e4) {
    if (!compact) return group_digits(static_cast<std::uint64_t>(std::llround(v)));
    std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  } else if (a >= 100 || (compact && v == std::floor(v))) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (a >= 1 || !compact) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2g", v);
  }
  return buf;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// ---- matcher ---------------------------------------------------------------------------------

BenchResult bench_matcher(const BenchOptions& opt, BenchProgress& progress) {
  if (opt.objects < 1'000 || opt.objects > 10'000'000)
    throw std::invalid_argument("--objects must be in [1000, 10000000]");
  map_large_tables();  // as `laminator run` does
  const int reps = reps_or(opt, 5);
  const double seconds = opt.seconds > 0 ? opt.seconds : 15;
  BenchResult r;
  std::string orders;
  if (opt.orders) orders.append(" + ").append(group_digits(opt.objects)).append(" resting orders");
  r.title = std::string("laminator bench matcher: ")
                .append(group_digits(opt.objects))
                .append(" alerts + ")
                .append(group_digits(opt.objects))
                .append(" positions")
                .append(orders)
                .append(" over ")
                .append(group_digits(bench::kMarkets))
                .append(" markets");
  r.config = {{"objects", std::to_string(opt.objects)},
              {"orders", opt.orders ? "true" : "false"},
              {"markets", std::to_string(bench::kMarkets)},
              {"repetitions", std::to_string(reps)},
              {"seconds", json_number(seconds)}};
  const double each = seconds / ((opt.orders ? 4.0 : 3.0) * reps);
  BenchMeasurement quiet{"quiet_tick", "quiet tick (ladders)", "ns/tick", false, false, {}};
  BenchMeasurement flat{
      "quiet_tick_flat_scan", "quiet tick (flat scan baseline)", "ns/tick", false, true, {}};
  BenchMeasurement firing{
      "firing_tick", "firing tick (one alert each)", "ns/tick", false, false, {}};
  BenchMeasurement fill{
      "order_fill_tick", "order tick (triggers, fills, opens one)", "ns/tick", false, false, {}};
  std::vector<double> at_quiet, at_flat, at_firing, at_fill;
  {
    progress.show(std::string("arming ").append(group_digits(opt.objects)).append(" of each"));
    auto ladder = std::make_unique<bench::World<Matcher>>(opt.objects, opt.orders);
    auto scan = std::make_unique<bench::World<bench::FlatScan>>(opt.objects, opt.orders);
    bench::FiringBatch batch;
    bench::OrderFillBatch fills;
    std::size_t cursor = 0, scan_cursor = 0;
    const auto t0 = Clock::now();
    // Interleaved repetitions: a noisy neighbour slows all three alike, not one of them.
    for (int rep = 1; rep <= reps; ++rep) {
      progress.show(quiet.label, rep, reps);
      quiet.samples.push_back(time_quiet(*ladder, each, cursor));
      at_quiet.push_back(since(t0));
      progress.show(flat.label, rep, reps);
      flat.samples.push_back(time_quiet(*scan, each, scan_cursor));
      at_flat.push_back(since(t0));
      progress.show(firing.label, rep, reps);
      firing.samples.push_back(
          time_batches(*ladder, batch, each, "a firing tick did not fire exactly once"));
      at_firing.push_back(since(t0));
      if (opt.orders) {
        progress.show(fill.label, rep, reps);
        fill.samples.push_back(time_batches(
            *ladder, fills, each, "an order tick did not trigger, fill and open exactly once"));
        at_fill.push_back(since(t0));
      }
    }
  }
  r.measurements = {quiet, flat, firing};
  if (opt.orders) r.measurements.push_back(fill);
  r.ratios.push_back({"quiet_tick_flat_scan/quiet_tick", "flat scan / ladders, quiet tick",
                      quiet.median() > 0 ? flat.median() / quiet.median() : 0});
  r.throughput = {per_repetition_curve(quiet, at_quiet), per_repetition_curve(flat, at_flat),
                  per_repetition_curve(firing, at_firing)};
  if (opt.orders) r.throughput.push_back(per_repetition_curve(fill, at_fill));
  return r;
}

// ---- replay ----------------------------------------------------------------------------------

BenchResult bench_replay(const BenchOptions& opt, BenchProgress& progress) {
  if (opt.ticks < 10'000 || opt.ticks > 1'000'000'000)
    throw std::invalid_argument("--ticks must be in [10000, 1000000000]");
  const int reps = reps_or(opt, 5);
  progress.show(std::string("generating ").append(group_digits(opt.ticks)).append(" ticks"));
  const bench::ReplayFiles files = bench::make_replay_files(opt.ticks, opt.seed);
  BenchResult r;
  r.title = std::string("laminator bench replay: ")
                .append(group_digits(opt.ticks))
                .append(" ticks (")
                .append(group_digits(files.tick_bytes / 1'000'000))
                .append(" MB) over 1,000 markets, 100,000 alerts + 10,000 positions");
  BenchMeasurement full{
      "replay_full", "replay (parse + match + events)", "ticks/s", true, false, {}};
  BenchMeasurement parse{
      "replay_parse_only", "parse and check only (baseline)", "ticks/s", true, true, {}};
  std::vector<double> at_full, at_parse;
  std::uint64_t events = 0;
  const auto t0 = Clock::now();
  for (int rep = 1; rep <= reps; ++rep) {
    progress.show(parse.label, rep, reps);
    auto s = bench::run_replay_once(files, opt.ticks, true);
    parse.samples.push_back(s.tick_rate());
    at_parse.push_back(since(t0));
    progress.show(full.label, rep, reps);
    s = bench::run_replay_once(files, opt.ticks, false);
    full.samples.push_back(s.tick_rate());
    at_full.push_back(since(t0));
    events = s.events;
  }
  r.config = {{"ticks", std::to_string(opt.ticks)},
              {"tick_file_bytes", std::to_string(files.tick_bytes)},
              {"markets", "1000"},
              {"alerts", "100000"},
              {"positions", "10000"},
              {"seed", std::to_string(opt.seed)},
              {"repetitions", std::to_string(reps)},
              {"events_per_replay", std::to_string(events)}};
  r.measurements = {full, parse};
  // Time of a full replay over time of parsing alone: what matching and events add.
  const double ratio = full.median() > 0 ? parse.median() / full.median() : 0;
  r.ratios.push_back({"replay_full/replay_parse_only", "full replay time / parsing time", ratio});
  char note[160];
  std::snprintf(note, sizeof note,
                "parsing is %.0f %% of a full replay's time; matching, events and the rest %.0f %%",
                ratio > 0 ? 100 / ratio : 0.0, ratio > 0 ? 100 - 100 / ratio : 0.0);
  r.notes.emplace_back(note);
  r.notes.emplace_back(
      "rates are of the tick phase: reading the state file and arming the matcher are not counted");
  r.throughput = {per_repetition_curve(full, at_full), per_repetition_curve(parse, at_parse)};
  return r;
}

// ---- pipeline --------------------------------------------------------------------------------

namespace {

/// Samples for the noise estimate of a latency run: its probes (in probe order) in `reps`
/// consecutive groups, each group's p50 and p99 (a group is a stretch of the run, so the spread is
/// the run's own).
void group_quantiles(const std::vector<double>& probes, int reps, BenchMeasurement& p50,
                     BenchMeasurement& p99) {
  const std::size_t per_group = probes.size() / static_cast<std::size_t>(reps);
  for (int g = 0; g < reps && per_group > 0; ++g) {
    const auto first = probes.begin() + static_cast<std::ptrdiff_t>(per_group * g);
    std::vector<double> group(first, first + static_cast<std::ptrdiff_t>(per_group));
    std::sort(group.begin(), group.end());
    p50.samples.push_back(bench::sorted_quantile(group, 0.5));
    p99.samples.push_back(bench::sorted_quantile(group, 0.99));
  }
}

/// The stall table of one latency run: the events slower than 1 ms (receive -> publish) by the
/// stage that took most of their time, each stage's share of their time, and each stage's p99.
std::string stall_note(const bench::LatencyRun& lat, const std::string& label) {
  const daemon::StatusLine& a = lat.after;
  const daemon::StatusLine& b = lat.before;
  std::uint64_t slow = 0;
  double time = 0;
  for (std::size_t i = 0; i < daemon::kStages; ++i) {
    slow += a.slow_events[i] - b.slow_events[i];
    time += a.slow_stage_us[i] - b.slow_stage_us[i];
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%sstalls: %llu of %llu events above 1 ms (receive -> publish)",
                label.c_str(), static_cast<unsigned long long>(slow),
                static_cast<unsigned long long>(a.latency_count - b.latency_count));
  std::string out(buf);
  for (std::size_t i = 0; i < daemon::kStages; ++i) {
    const std::uint64_t n = a.slow_events[i] - b.slow_events[i];
    const double t = a.slow_stage_us[i] - b.slow_stage_us[i];
    std::snprintf(
        buf, sizeof buf, "; %s: %llu led (%.0f %% of their time), p50 %.0f us, p99 %.0f us",
        daemon::stage_name(static_cast<daemon::Stage>(i)), static_cast<unsigned long long>(n),
        time > 0 ? 100 * t / time : 0.0, a.stage_p50_us[i], a.stage_p99_us[i]);
    out += buf;
  }
  return out;
}

/// The batched wire mode: up to this many frames of the same millisecond per socket write.
constexpr std::uint32_t kBatchedFramesPerWrite = 64;

/// One wire mode's latency run as measurements (ids prefixed by `id`, names by `label`), its
/// curves, and the stall table by stage as notes.
void add_latency_mode(BenchResult& r, const bench::LatencyRun& lat, const std::string& id,
                      const std::string& label, int reps) {
  if (lat.wire_us.empty())
    throw std::runtime_error("bench pipeline: no latency probe came back (" + label + ")");
  if (lat.lost > 0) {
    r.lossy = true;
    r.notes.push_back(label + std::to_string(lat.lost) +
                      " latency probe(s) never reached the subscriber");
  }
  BenchMeasurement p50{id + "wire_p50", label + "wire -> subscriber p50", "us", false, false, {}};
  BenchMeasurement p99{id + "wire_p99", label + "wire -> subscriber p99", "us", false, false, {}};
  group_quantiles(lat.wire_us, reps, p50, p99);
  std::vector<double> sorted = lat.wire_us;
  std::sort(sorted.begin(), sorted.end());
  BenchMeasurement p999{id + "wire_p999",
                        label + "wire -> subscriber p99.9",
                        "us",
                        false,
                        false,
                        {bench::sorted_quantile(sorted, 0.999)}};
  const daemon::StatusLine& a = lat.after;
  BenchMeasurement d50{
      id + "daemon_p50", label + "daemon receive -> publish p50 (baseline)", "us", false, true,
      {a.p50_us}};
  BenchMeasurement d99{
      id + "daemon_p99", label + "daemon receive -> publish p99 (baseline)", "us", false, true,
      {a.p99_us}};
  BenchMeasurement d999{
      id + "daemon_p999", label + "daemon receive -> publish p99.9", "us", false, false,
      {a.p999_us}};
  // Read-committed subscribers (committed=1) on the same probes: the cost of waiting for the
  // journal.
  std::vector<double> committed = lat.committed_us;
  std::sort(committed.begin(), committed.end());
  BenchMeasurement c50{id + "committed_p50",
                       label + "read-committed wire -> subscriber p50",
                       "us",
                       false,
                       false,
                       {bench::sorted_quantile(committed, 0.5)}};
  BenchMeasurement c99{id + "committed_p99",
                       label + "read-committed wire -> subscriber p99",
                       "us",
                       false,
                       false,
                       {bench::sorted_quantile(committed, 0.99)}};
  r.ratios.push_back(
      {id + "committed_p50/wire_p50",
       label + "read-committed p50 / default p50 (what waiting for the journal costs)",
       p50.median() > 0 ? c50.median() / p50.median() : 0});
  r.ratios.push_back({id + "wire_p99/daemon_p99",
                      label + "wire p99 / daemon p99 (what the sockets add)",
                      d99.median() > 0 ? p99.median() / d99.median() : 0});
  for (auto* m : {&p50, &p99, &p999, &d50, &d99, &d999, &c50, &c99}) r.measurements.push_back(*m);
  r.latency.push_back(percentile_curve(
      id + "wire", label + "wire -> subscriber, " + group_digits(sorted.size()) + " probes",
      sorted));
  if (!committed.empty()) {
    r.latency.push_back(percentile_curve(
        id + "committed",
        label + "read-committed (committed=1), " + group_digits(committed.size()) + " probes",
        committed));
  }
  r.latency.push_back(
      {id + "daemon",
       label + "daemon receive -> publish",
       "us",
       {{0.5, a.p50_us}, {0.9, a.p90_us}, {0.99, a.p99_us}, {0.999, a.p999_us}, {1.0, a.max_us}}});
  r.notes.push_back(stall_note(lat, label));
}

}  // namespace

BenchResult bench_pipeline(const BenchOptions& opt, BenchProgress& progress) {
  // Long: one benchmark scenario (set-up, baseline, measured run, report) kept whole so that what
  // is timed and what is not is visible at once.
  if (opt.probes < 20 || opt.probes > 50'000)
    throw std::invalid_argument("--probes must be in [20, 50000]");
  if (opt.rate < 0 || opt.rate > 10'000'000)
    throw std::invalid_argument("--rate must be in [0, 10000000]");
  if (opt.warmup_s < 0 || opt.warmup_s > 600)
    throw std::invalid_argument("--warmup must be in [0, 600] seconds");
  if (opt.frames < 10'000 || opt.frames > 100'000'000)
    throw std::invalid_argument("--frames must be in [10000, 100000000]");
  const int reps = reps_or(opt, 3);
  bench::PipelineOptions po;
  po.rate = opt.rate;
  po.probes = opt.probes;
  po.frames = opt.frames;
  po.warmup = std::chrono::milliseconds(static_cast<std::int64_t>(opt.warmup_s * 1000));
  po.progress = [&progress](const std::string& what) { progress.show(what); };
  progress.show("starting PostgreSQL");
  db::LocalCluster cluster;
  BenchResult r;
  r.title = std::string(
                "laminator bench pipeline: mock exchange -> daemon -> subscriber on "
                "loopback, 100,000 alerts + 100,000 positions over 50 markets, PostgreSQL ")
                .append(cluster.version());
  progress.show("loading the latency databases");
  const std::string lat_url =
      bench::make_pipeline_db(cluster, "bench_pipeline_latency", opt.probes);
  // The probes' alerts fire once: the batched run gets its own database.
  const std::string batched_url =
      bench::make_pipeline_db(cluster, "bench_pipeline_latency_batched", opt.probes);
  progress.show("loading the flat-out database");
  const std::string rate_url = bench::make_pipeline_db(cluster, "bench_pipeline_rate", 10);

  BenchMeasurement rate{"flat_out", "flat out (no loss allowed)", "ticks/s", true, false, {}};
  for (int rep = 1; rep <= reps; ++rep) {
    po.progress = [&progress, rep, reps](const std::string& what) {
      progress.show(what, rep, reps);
    };
    const bench::RateRun run = bench::run_max_rate(rate_url, po);
    rate.samples.push_back(run.ticks_per_s);
    BenchCurve c{
        "flat_out_" + std::to_string(rep), "flat out, run " + std::to_string(rep), "ticks/s", {}};
    // From the warm-up mark: what the counted rate is made of.
    for (const auto& [t, v] : run.series)
      if (t >= run.warm_at_s) c.points.emplace_back(t - run.warm_at_s, v);
    r.throughput.push_back(std::move(c));
    if (run.lost > 0) {
      r.lossy = true;
      r.notes.push_back(std::string("flat-out run ")
                            .append(std::to_string(rep))
                            .append(" lost ")
                            .append(group_digits(run.lost))
                            .append(" of ")
                            .append(group_digits(run.frames_sent))
                            .append(" frames"));
    }
  }
  // Both wire modes: one frame per socket write (what the load generator can pace exactly), and
  // the frames of each millisecond in one write (how a venue's TCP stream arrives).
  po.progress = [&progress](const std::string& what) {
    progress.show("one frame per write: " + what);
  };
  po.wire_frames_per_write = 1;
  const bench::LatencyRun lat = bench::run_wire_latency(lat_url, po);
  po.progress = [&progress](const std::string& what) { progress.show("batched per ms: " + what); };
  po.wire_frames_per_write = kBatchedFramesPerWrite;
  const bench::LatencyRun batched = bench::run_wire_latency(batched_url, po);
  r.measurements.push_back(rate);
  add_latency_mode(r, lat, "", "", reps);
  add_latency_mode(r, batched, "batched_", "batched per ms: ", reps);
  r.config = {{"rate", json_number(opt.rate)},
              {"probes", std::to_string(opt.probes)},
              {"frames_per_connection", std::to_string(opt.frames)},
              {"warmup_seconds", json_number(opt.warmup_s)},
              {"connections", "2"},
              {"markets", "50"},
              {"alerts", "100000"},
              {"positions", "100000"},
              {"repetitions", std::to_string(reps)},
              {"postgresql", std::string("\"").append(cluster.version()).append("\"")},
              {"background_ticks", std::to_string(lat.after.ticks - lat.before.ticks)},
              {"batched_frames_per_write", std::to_string(kBatchedFramesPerWrite)}};
  return r;
}

// ---- fanin -----------------------------------------------------------------------------------

BenchResult bench_fanin(const BenchOptions& opt, BenchProgress& progress) {
  if (opt.burst < 100 || opt.burst > 10'000'000)
    throw std::invalid_argument("--burst must be in [100, 10000000]");
  if (opt.probes < 20 || opt.probes > 50'000)
    throw std::invalid_argument("--probes must be in [20, 50000]");
  const int reps = reps_or(opt, 3);
  bench::FaninOptions fo;
  fo.burst = opt.burst;
  fo.repetitions = reps;
  fo.probes = opt.probes;
  fo.shards = opt.shards;
  fo.progress = [&progress](const std::string& what) { progress.show(what); };
  progress.show("starting PostgreSQL");
  db::LocalCluster cluster;
  const std::string url = bench::make_fanin_db(cluster, "bench_fanin");
  const bench::FaninRun run = bench::run_fanin(url, fo);
  BenchResult r;
  const std::string n = std::to_string(opt.shards);
  r.title = std::string("laminator bench fanin: ")
                .append(opt.shards == 1 ? "one shard" : n + " shards bursting together")
                .append(
                    " -> NATS JetStream (nats-server, file storage) -> laminator gateway -> "
                    "subscriber, against each shard's own stream; PostgreSQL ")
                .append(cluster.version());
  BenchMeasurement direct{
      "direct_events",
      opt.shards == 1 ? "daemon's own stream (baseline)" : "each shard's own stream (baseline)",
      "events/s",
      true,
      true,
      run.direct_eps};
  BenchMeasurement via{"gateway_events",
                       opt.shards == 1 ? "through JetStream + gateway"
                                       : "through JetStream + gateway (all " + n + " shards)",
                       "events/s",
                       true,
                       false,
                       run.gateway_eps};
  BenchMeasurement stored{"stored_events", "stored by JetStream (the publishing stage)",
                          "events/s",      true,
                          false,           run.stored_eps};
  if (run.added_us.empty()) throw std::runtime_error("bench fanin: no probe came back");
  BenchMeasurement a50{"added_p50", "latency added p50", "us", false, false, {}};
  BenchMeasurement a99{"added_p99", "latency added p99", "us", false, false, {}};
  group_quantiles(run.added_us, reps, a50, a99);
  r.measurements = {direct, via, stored, a50, a99};
  r.ratios.push_back({"gateway_events/direct_events",
                      opt.shards == 1
                          ? "through JetStream + gateway / daemon's own stream, events/s"
                          : "through JetStream + gateway (all shards) / one shard's own stream, "
                            "events/s",
                      direct.median() > 0 ? via.median() / direct.median() : 0});
  std::vector<double> added = run.added_us;
  std::sort(added.begin(), added.end());
  std::vector<double> base = run.direct_us;
  std::sort(base.begin(), base.end());
  r.latency.push_back(percentile_curve(
      "added", "added by JetStream + gateway, " + group_digits(added.size()) + " probes", added));
  r.latency.push_back(
      percentile_curve("direct", "price move -> own stream (incl. frame interval)", base));
  if (run.missing > 0) {
    r.lossy = true;
    r.notes.push_back(group_digits(run.missing) +
                      " event(s) reached one subscriber and not the other");
  }
  if (run.added_us.size() < static_cast<std::size_t>(opt.probes))
    r.notes.push_back(std::to_string(static_cast<std::size_t>(opt.probes) - run.added_us.size()) +
                      " probe(s) did not reach both subscribers within 5 s");
  r.config = {{"burst", std::to_string(opt.burst)},
              {"probes", std::to_string(opt.probes)},
              {"repetitions", std::to_string(reps)},
              {"shards", n},
              {"nats_storage", "\"file\""},
              {"events_per_subscriber", std::to_string(run.events)},
              {"postgresql", std::string("\"").append(cluster.version()).append("\"")}};
  return r;
}

// ---- writer ----------------------------------------------------------------------------------

namespace {

/// Fills per measured repetition: every batch size fills at least this many (whole batches), the
/// per-fill baseline exactly kBaselineFills.
constexpr std::size_t kMinFillsPerCell = 5'000, kBaselineFills = 500;

/// `laminator bench writer --fills`: paper fills through the writer's batch statement, each batch
/// size against a statement and transaction per fill, interleaved per repetition. Orders are
/// consumed (each is filled once), so the work is counted, not timed.
BenchResult bench_writer_fills(const BenchOptions& opt, BenchProgress& progress) {
  // Long: one benchmark scenario (set-up, baseline, measured run, report) kept whole so that what
  // is timed and what is not is visible at once.
  for (const std::size_t b : opt.batch_sizes) {
    if (b < 1 || b > 100'000) throw std::invalid_argument("each --batch must be in [1, 100000]");
  }
  const int reps = reps_or(opt, 5);
  std::vector<std::size_t> per_cell;  // fills per repetition of each size, then the baseline
  long long orders = 0;
  for (const std::size_t b : opt.batch_sizes) {
    per_cell.push_back(b * ((kMinFillsPerCell + b - 1) / b));
    orders += static_cast<long long>(per_cell.back()) * reps;
  }
  per_cell.push_back(kBaselineFills);
  orders += static_cast<long long>(kBaselineFills) * reps;
  // prepare_fills: order n is on market (u + 1 + n / 10,000) % markets.
  const int markets = static_cast<int>(std::max(1000LL, orders / bench::kFillUsers + 3));
  if (opt.rows < bench::kFillUsers)
    throw std::invalid_argument("--fills needs --rows >= 10000 (the fills' users)");
  progress.show("starting PostgreSQL");
  db::LocalCluster cluster;
  progress.show(std::string("seeding ")
                    .append(group_digits(opt.rows))
                    .append(" positions and ")
                    .append(group_digits(static_cast<std::uint64_t>(orders)))
                    .append(" orders"));
  const std::string url = cluster.create_database("bench_writer_fills");
  db::Migrator(url).migrate({});
  db::seed(url, markets, opt.rows);
  bench::prepare_fills(url, markets, orders);
  BenchResult r;
  r.title = std::string(
                "laminator bench writer --fills: paper fills (order, position, trade, "
                "balance, audit rows) beside ")
                .append(group_digits(opt.rows))
                .append(" open positions, PostgreSQL ")
                .append(cluster.version())
                .append(" (local, fsync off)");
  std::vector<BenchMeasurement> cells;
  for (const std::size_t b : opt.batch_sizes) {
    cells.push_back({"fills_batch_" + std::to_string(b),
                     "fills, " + group_digits(b) + " a batch statement",
                     "fills/s",
                     true,
                     false,
                     {}});
  }
  cells.push_back({"fills_per_transaction",
                   "fills, a statement and transaction each (baseline)",
                   "fills/s",
                   true,
                   true,
                   {}});
  bench::FillWriter writer(url);
  long long next = 1;
  std::vector<std::vector<double>> batch_ms(cells.size());
  // Interleaved: each repetition runs every cell in turn, so a busy neighbour or a checkpoint
  // slows all of them alike.
  for (int rep = 1; rep <= reps; ++rep) {
    for (std::size_t i = 0; i < cells.size(); ++i) {
      progress.show(cells[i].label, rep, reps);
      const std::size_t batch = i < opt.batch_sizes.size() ? opt.batch_sizes[i] : 1;
      double timed = 0;
      for (std::size_t done = 0; done < per_cell[i]; done += batch) {
        const auto start = Clock::now();
        const std::size_t applied = writer.fill(next, batch, batch);
        const double s = since(start);
        if (applied != batch) throw std::runtime_error("bench writer: a fill did not land");
        next += static_cast<long long>(batch);
        timed += s;
        if (batch > 1) batch_ms[i].push_back(s * 1e3);
      }
      cells[i].samples.push_back(static_cast<double>(per_cell[i]) / timed);
    }
  }
  writer.verify(next - 1);
  r.measurements = cells;
  const BenchMeasurement& base = cells.back();
  for (std::size_t i = 0; i + 1 < cells.size(); ++i) {
    r.ratios.push_back(
        {cells[i].name + "/" + base.name,
         "batches of " + group_digits(opt.batch_sizes[i]) + " / a transaction per fill",
         base.median() > 0 ? cells[i].median() / base.median() : 0});
    std::sort(batch_ms[i].begin(), batch_ms[i].end());
    BenchCurve curve = percentile_curve(
        cells[i].name, group_digits(opt.batch_sizes[i]) + " fills a batch", batch_ms[i]);
    curve.unit = "ms";
    r.latency.push_back(std::move(curve));
  }
  r.config = {{"rows", std::to_string(opt.rows)},
              {"markets", std::to_string(markets)},
              {"orders", std::to_string(orders)},
              {"repetitions", std::to_string(reps)},
              {"baseline_fills_per_repetition", std::to_string(kBaselineFills)},
              {"postgresql", std::string("\"").append(cluster.version()).append("\"")},
              {"fsync", "false"}};
  return r;
}

}  // namespace

BenchResult bench_writer(const BenchOptions& opt, BenchProgress& progress) {
  // Long: one benchmark scenario (set-up, baseline, measured run, report) kept whole so that what
  // is timed and what is not is visible at once.
  if (opt.batch_sizes.empty()) throw std::invalid_argument("--batch needs at least one size");
  if (opt.fills) return bench_writer_fills(opt, progress);
  if (opt.rows < 1'000 || opt.rows > 10'000'000)
    throw std::invalid_argument("--rows must be in [1000, 10000000]");
  for (const std::size_t b : opt.batch_sizes) {
    if (b < 1 || static_cast<long long>(b) > opt.rows / 2)
      throw std::invalid_argument("each --batch must be in [1, rows / 2]");
  }
  const int reps = reps_or(opt, 5);
  const double seconds = opt.seconds > 0 ? opt.seconds : 10;
  progress.show("starting PostgreSQL");
  db::LocalCluster cluster;
  progress.show(std::string("seeding ").append(group_digits(opt.rows)).append(" positions"));
  const std::string url = cluster.create_database("bench_writer");
  bench::prepare_writer_db(url, opt.rows);
  BenchResult r;
  r.title = std::string("laminator bench writer: marks on ")
                .append(group_digits(opt.rows))
                .append(" open positions, PostgreSQL ")
                .append(cluster.version())
                .append(" (local, fsync off)");
  std::string sizes = "[";
  for (const std::size_t b : opt.batch_sizes) {
    if (sizes.size() > 1) sizes.push_back(',');
    sizes.append(std::to_string(b));
  }
  sizes.push_back(']');
  r.config = {{"rows", std::to_string(opt.rows)},
              {"batch_sizes", sizes},
              {"repetitions", std::to_string(reps)},
              {"seconds", json_number(seconds)},
              {"seed", std::to_string(opt.seed)},
              {"postgresql", std::string("\"").append(cluster.version()).append("\"")},
              {"fsync", "false"}};

  struct Cell {
    bench::WriteMethod method;
    std::size_t batch;
    std::unique_ptr<bench::MarkWriter> writer;
    BenchMeasurement m;
    std::string short_label;       ///< for chart legends
    std::vector<double> batch_ms;  ///< every batch's apply time
    BenchCurve over_time;
  };
  std::vector<Cell> cells;
  for (const std::size_t b : opt.batch_sizes) {
    for (const bench::WriteMethod m : bench::kWriteMethods) {
      Cell c{m, b, std::make_unique<bench::MarkWriter>(url, m), {}, {}, {}, {}};
      const std::string size = group_digits(b);
      c.m = {std::string(bench::method_name(m)).append("_").append(std::to_string(b)),
             std::string(bench::method_label(m)).append(", ").append(size).append(" a batch"),
             "rows/s",
             true,
             m == bench::WriteMethod::update_per_row,
             {}};
      const char* shorter = m == bench::WriteMethod::unnest_batch       ? "UNNEST"
                            : m == bench::WriteMethod::copy_temp_update ? "COPY + UPDATE"
                                                                        : "per row";
      c.short_label = std::string(shorter).append(", ").append(size).append(" rows a batch");
      c.over_time = {c.m.name, c.short_label, "rows/s", {}};
      cells.push_back(std::move(c));
    }
  }
  std::mt19937_64 rng(opt.seed);
  const double each = seconds / (static_cast<double>(reps) * static_cast<double>(cells.size()));
  const auto t0 = Clock::now();
  // Interleaved: each repetition runs every (method, size) in turn, so a busy neighbour or a
  // checkpoint slows all of them alike.
  for (int rep = 1; rep <= reps; ++rep) {
    for (Cell& c : cells) {
      progress.show(c.m.label, rep, reps);
      double timed = 0;
      std::size_t rows = 0;
      db::WriteOp last;
      while (timed < each || rows == 0) {
        const auto ops = bench::writer_marks(c.batch, opt.rows, rng);  // untimed
        const auto start = Clock::now();
        const std::size_t applied = c.writer->apply(ops);
        const double s = since(start);
        if (applied != ops.size())
          throw std::runtime_error("bench writer: not every row of a batch was updated");
        timed += s;
        rows += applied;
        last = ops.back();
        c.batch_ms.push_back(s * 1e3);
        c.over_time.points.emplace_back(since(t0), static_cast<double>(applied) / s);
      }
      c.writer->verify(last);
      c.m.samples.push_back(static_cast<double>(rows) / timed);
    }
  }
  for (Cell& c : cells) r.measurements.push_back(c.m);
  for (const std::size_t b : opt.batch_sizes) {
    const std::string base = std::string("update_per_row_").append(std::to_string(b));
    const BenchMeasurement* per_row = r.find(base);
    for (const char* name : {"unnest_batch_", "copy_temp_update_"}) {
      const BenchMeasurement* m = r.find(std::string(name).append(std::to_string(b)));
      if (m == nullptr || per_row == nullptr || per_row->median() <= 0) continue;
      r.ratios.push_back(
          {m->name + "/" + base,
           std::string(name == std::string("unnest_batch_") ? "UNNEST batch" : "COPY + UPDATE")
               .append(" / per row, batches of ")
               .append(group_digits(b)),
           m->median() / per_row->median()});
    }
  }
  for (Cell& c : cells) {
    std::sort(c.batch_ms.begin(), c.batch_ms.end());
    BenchCurve curve = percentile_curve(c.m.name, c.short_label, c.batch_ms);
    curve.unit = "ms";
    r.latency.push_back(std::move(curve));
    r.throughput.push_back(std::move(c.over_time));
  }
  return r;
}

}  // namespace lam::app
