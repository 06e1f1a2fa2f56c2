// laminator: the command-line entry point (composition root).
#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <pqxx/pqxx>

#include "app/bench_command.h"
#include "app/feeds_command.h"
#include "app/gateway_command.h"
#include "app/run_command.h"
#include "engine/matcher.h"
#include "persistence/database_url.h"
#include "persistence/migrator.h"
#include "persistence/reconcile.h"
#include "replay/replay.h"
#include "scaleout/nats_authorization.h"

namespace {

int run_replay_command(const lam::app::ReplayOptions& opt, bool quiet) {
  const lam::app::ReplaySummary s = lam::app::run_replay(opt, stderr);
  if (!quiet) std::fputs(lam::app::format_summary(s).c_str(), stderr);
  if (opt.strict && (s.bad_lines > 0 || s.bad_state_rows > 0)) {
    std::fprintf(stderr, "replay: --strict: %llu bad lines, %llu bad state rows\n",
                 static_cast<unsigned long long>(s.bad_lines),
                 static_cast<unsigned long long>(s.bad_state_rows));
    return 3;
  }
  return 0;
}

int run_migrate_command(const std::string& url_opt, bool status_only, bool dry_run, int months) {
  const auto url = lam::db::resolve_database_url(url_opt);
  if (!url) {
    spdlog::error("no database: pass --database-url or set {}", lam::db::kDatabaseUrlEnv);
    return 2;
  }
  spdlog::info("database: {}", lam::db::redact_database_url(*url));
  lam::db::Migrator migrator(*url);
  if (status_only) {
    int problems = 0;
    for (const auto& s : migrator.status()) {
      std::printf("%04d  %-28s  %-36s  %s\n", s.version, s.name.c_str(),
                  std::string(to_string(s.state)).c_str(), s.applied_at.value_or("").c_str());
      problems +=
          s.state == lam::db::MigrationState::edited || s.state == lam::db::MigrationState::unknown;
    }
    return problems > 0 ? 1 : 0;
  }
  const auto report = migrator.migrate({.dry_run = dry_run, .partition_months_ahead = months});
  std::printf("%s %zu migration(s); %d partition(s) created\n",
              dry_run ? "dry run: would apply" : "applied", report.applied.size(),
              report.partitions_created);
  return 0;
}

/// `laminator reconcile`: every invariant of the books over the whole database, every violating
/// row named (docs/schema.md, "Invariants of the books"). Exit 0: the books hold; 1: violations
/// (listed); 2: no database, or the check failed.
/// `laminator nats-authorization`: random passwords (from /dev/urandom) into `dir`, the block on
/// stdout.
int run_nats_authorization(const std::vector<std::string>& shards, const std::string& dir,
                           const std::string& stream, const std::string& prefix) {
  lam::daemon::NatsAuthorization a;
  a.stream = stream;
  a.subject_prefix = prefix;
  a.shards = shards;
  std::ifstream random("/dev/urandom", std::ios::binary);
  std::vector<std::string> users;
  for (const std::string& id : shards) users.push_back("shard_" + id);
  users.push_back(a.gateway_user);
  for (std::size_t i = 0; i < users.size(); ++i) {
    unsigned char b[24];
    if (!random.read(reinterpret_cast<char*>(b), sizeof b)) {
      std::fprintf(stderr, "nats-authorization: cannot read /dev/urandom\n");
      return 2;
    }
    std::string pw;
    for (unsigned char c : b) {
      char h[3];
      std::snprintf(h, sizeof h, "%02x", c);
      pw += h;
    }
    a.passwords.push_back(pw);
  }
  std::string block;
  try {
    block = lam::daemon::nats_authorization_block(a);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "nats-authorization: %s\n", e.what());
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string path = dir + "/" + users[i] + ".password";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::write(fd, a.passwords[i].data(), a.passwords[i].size()) < 0) {
      std::fprintf(stderr, "nats-authorization: cannot write %s\n", path.c_str());
      if (fd >= 0) ::close(fd);
      return 2;
    }
    ::close(fd);
  }
  std::fputs(block.c_str(), stdout);
  return 0;
}

int run_reconcile_command(const std::string& url_opt, std::size_t limit, bool json) {
  const auto url = lam::db::resolve_database_url(url_opt);
  if (!url) {
    spdlog::error("no database: pass --database-url or set {}", lam::db::kDatabaseUrlEnv);
    return 2;
  }
  lam::db::ReconcileReport r;
  try {
    pqxx::connection c(*url);
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c, "reconcile");
    r = lam::db::reconcile(tx, limit);
  } catch (const std::exception& e) {
    spdlog::error("reconcile: {}", lam::db::redact_secrets(e.what(), *url));
    return 2;
  }
  const auto& inv = lam::db::invariants();
  auto quoted = [](const std::string& s) {
    std::string o = "\"";
    for (const char ch : s) {
      if (ch == '"' || ch == '\\') o.push_back('\\');
      if (static_cast<unsigned char>(ch) >= 0x20) o.push_back(ch);
    }
    return o + "\"";
  };
  if (json) {
    std::string out =
        "{\"ok\":" + std::string(r.total() == 0 ? "true" : "false") + ",\"invariants\":[";
    for (std::size_t i = 0; i < inv.size(); ++i) {
      out += (i ? "," : "") + std::string("{\"name\":") + quoted(inv[i].name) +
             ",\"rule\":" + quoted(inv[i].rule) + ",\"violations\":" + std::to_string(r.counts[i]) +
             "}";
    }
    out += "],\"violations\":[";
    for (std::size_t i = 0; i < r.violations.size(); ++i) {
      const auto& v = r.violations[i];
      out += (i ? "," : "") + std::string("{\"invariant\":") + quoted(v.invariant) +
             ",\"table\":" + quoted(v.table) + ",\"row\":" + quoted(v.row_id) +
             ",\"detail\":" + quoted(v.detail) + "}";
    }
    out += "],\"balances_unchecked\":" + std::to_string(r.balances_unchecked) +
           ",\"seconds\":" + std::to_string(r.seconds) + "}\n";
    std::fputs(out.c_str(), stdout);
  } else {
    for (const auto& v : r.violations) {
      std::printf("%s\t%s\t%s\t%s\n", v.invariant.c_str(), v.table.c_str(), v.row_id.c_str(),
                  v.detail.c_str());
    }
    std::fprintf(stderr, "reconcile: %s in %.2f s\n",
                 r.total() == 0 ? "the books hold" : "VIOLATIONS", r.seconds);
    for (std::size_t i = 0; i < inv.size(); ++i) {
      std::fprintf(stderr, "  %-24s %8llu  %s\n", inv[i].name,
                   static_cast<unsigned long long>(r.counts[i]), inv[i].rule);
    }
    if (r.balances_unchecked > 0) {
      std::fprintf(stderr,
                   "  %llu wallet balance(s) not checked against their moves: their audit history "
                   "was expired\n",
                   static_cast<unsigned long long>(r.balances_unchecked));
    }
  }
  return r.total() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Long: the CLI's declaration, one block of CLI11 builder calls per subcommand and its flags,
  // then the dispatch; a flat table of flags reads best in one place (each command's work is in its
  // own run_* function).
  lam::map_large_tables();  // before any thread allocates
  // stdout carries data (events); every log line goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("laminator"));
  CLI::App app{"laminator: market-data and alert engine for crypto trading bots"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "laminator 0.1.0");

  lam::app::ReplayOptions replay;
  bool quiet = false;
  bool no_events = false;
  CLI::App* rep =
      app.add_subcommand("replay", "Run the matcher over a state file and a file of ticks");
  rep->add_option("--state", replay.state_path, "STATE.json: markets, positions and alerts")
      ->required()
      ->check(CLI::ExistingFile);
  auto* ticks_opt = rep->add_option("--ticks", replay.ticks_path, "TICKS.ndjson: one tick per line")
                        ->check(CLI::ExistingFile);
  auto* raw_opt = rep->add_option("--raw", replay.raw_paths,
                                  "Raw captures (laminator feeds --record) instead of --ticks")
                      ->check(CLI::ExistingFile);
  ticks_opt->excludes(raw_opt);
  rep->require_option(1, 0);
  rep->add_option("--events-out", replay.events_out,
                  "Write events (NDJSON) here instead of stdout");
  rep->add_option("--state-out", replay.state_out,
                  "Write positions and alerts as they stand after the last tick");
  rep->add_option("--slippage-bps", replay.slippage_bps,
                  "Move taker paper fills this many basis points against the trader, as the "
                  "daemon's [paper] slippage_bps does")
      ->check(CLI::Range(0, 1000));
  rep->add_flag("--strict", replay.strict,
                "Exit with status 3 if any input line or state row was bad");
  rep->add_flag("--quiet", quiet, "No progress lines and no summary");
  rep->add_flag("--no-events", no_events, "Do not write events (benchmarking)");
  std::vector<std::string> replay_contract_sizes;
  rep->add_option("--contract-size", replay_contract_sizes,
                  "VENUE:SYMBOL=SIZE base units per contract, for captures recorded without them "
                  "(OKX SWAP sizes are in contracts; repeatable)");
  rep->add_flag("--validate-only", replay.validate_only,
                "Parse and check the inputs without running the matcher (with --strict: a lint)");

  std::string database_url;
  bool status_only = false;
  bool dry_run = false;
  int months_ahead = 3;
  CLI::App* mig =
      app.add_subcommand("migrate", "Apply the database migrations compiled into this binary");
  mig->add_option("--database-url", database_url,
                  "libpq URL or key=value string (default: $LAMINATOR_DATABASE_URL)");
  mig->add_flag("--status", status_only,
                "List migrations and whether each is applied; exit 1 if one was edited");
  mig->add_flag("--dry-run", dry_run,
                "Run the pending migrations in one transaction and roll it back");
  mig->add_option("--partition-months", months_ahead, "Monthly partitions to create ahead")
      ->check(CLI::Range(0, 120));

  std::vector<std::string> auth_shards;
  std::string auth_secrets, auth_stream = "LAMINATOR", auth_prefix = "laminator.events";
  CLI::App* na = app.add_subcommand(
      "nats-authorization",
      "Print nats-server's authorization block for the shards and the gateway; write each user's "
      "random password into a directory (docs/operations.md, NATS authorization)");
  na->add_option("--shards", auth_shards, "Shard ids (as in their [shard] id)")
      ->required()
      ->delimiter(',');
  na->add_option("--secrets", auth_secrets,
                 "Directory for shard_<id>.password and gateway.password (created, mode 0700)")
      ->required();
  na->add_option("--stream", auth_stream, "The JetStream stream ([nats] stream)");
  na->add_option("--subject-prefix", auth_prefix, "[nats] subject_prefix");

  std::size_t reconcile_limit = 100;
  bool reconcile_json = false;
  CLI::App* rec = app.add_subcommand(
      "reconcile",
      "Check the books' invariants over the whole database and name every violating row (exit 1 "
      "if any)");
  rec->add_option("--database-url", database_url,
                  "libpq URL or key=value string (default: $LAMINATOR_DATABASE_URL)");
  rec->add_option("--limit", reconcile_limit, "Rows listed per invariant (all are counted)")
      ->capture_default_str();
  rec->add_flag("--json", reconcile_json, "One JSON document on stdout");

  lam::app::FeedsOptions feeds;
  CLI::App* fd = app.add_subcommand(
      "feeds", "Run the venue feeds alone: health, counters, and optional raw capture");
  fd->add_option("--venue", feeds.venues,
                 "binance, bybit, okx, hyperliquid, coinbase, pyth (default: all; pyth reads its "
                 "API key from $PYTH_API_KEY)");
  fd->add_option("--symbol", feeds.symbols, "venue:SYMBOL in the venue's spelling (repeatable)");
  fd->add_option("--url", feeds.urls, "venue/route=URL endpoint override (repeatable)");
  fd->add_flag("--mock", feeds.mock,
               "Start an in-process mock exchange and use it for every venue");
  fd->add_option("--mock-rate", feeds.mock_rate, "Mock data frames/s per connection")
      ->capture_default_str();
  fd->add_option("--record", feeds.record_dir, "Capture every received frame into DIR");
  fd->add_option("--duration", feeds.duration_s, "Seconds to run (default: until Ctrl-C)");
  fd->add_option("--ca-file", feeds.ca_file, "Extra trusted CA certificates (PEM)");
  std::vector<std::string> feeds_contract_sizes;
  fd->add_option("--contract-size", feeds_contract_sizes,
                 "VENUE:SYMBOL=SIZE base units per contract (OKX SWAP; without it their trades "
                 "carry no size; repeatable)");

  lam::app::RunOptions run;
  CLI::App* rn = app.add_subcommand(
      "run", "Run the daemon: feeds -> matcher -> writer and the alert stream, until SIGTERM");
  rn->add_option("--config", run.config_path, "TOML config (configs/laminator.toml documents it)")
      ->required()
      ->check(CLI::ExistingFile);
  rn->add_option("--status-every", run.status_every_s,
                 "Seconds between one-line status reports on stderr (0: off)")
      ->capture_default_str();

  lam::app::GatewayOptions gateway;
  CLI::App* gw = app.add_subcommand(
      "gateway",
      "Serve every shard's events from NATS JetStream on one alert stream, until SIGTERM");
  lam::app::add_gateway_options(*gw, gateway);

  lam::app::BenchOptions bench;
  CLI::App* bn = app.add_subcommand(
      "bench", "Benchmark on this machine: same workload as bench/, medians, same-run baseline");
  bn->add_option("scenario", bench.scenario,
                 "matcher: ns per tick vs a flat scan; replay: ticks/s vs parsing alone; "
                 "pipeline: the daemon on loopback (PostgreSQL, mock exchange, subscriber); "
                 "writer: batch vs per-row UPDATE (--fills: paper fills); fanin: events through "
                 "NATS JetStream and "
                 "the gateway vs the daemon's own stream")
      ->required()
      ->check(CLI::IsMember({"matcher", "replay", "pipeline", "writer", "fanin"}));
  bn->add_option("--repetitions", bench.repetitions,
                 "repetitions of each measurement (default: 5; pipeline 3)")
      ->check(CLI::Range(1, 100));
  bn->add_option("--seconds", bench.seconds,
                 "matcher, writer: timed seconds in all (default: 15; writer 10)")
      ->check(CLI::Range(0.1, 3600.0));
  bn->add_option("--seed", bench.seed, "replay, writer: the generator's seed")
      ->capture_default_str();
  bn->add_option("--objects", bench.objects, "matcher: alerts and positions armed, each")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1'000}, std::size_t{10'000'000}));
  bn->add_flag("--orders", bench.orders,
               "matcher: also as many resting orders (ticks of every kind)");
  bn->add_option("--ticks", bench.ticks, "replay: lines of the generated tick file")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{10'000}, std::size_t{1'000'000'000}));
  bn->add_option("--rate", bench.rate, "pipeline: background ticks/s while latency is probed")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10'000'000.0));
  bn->add_option("--burst", bench.burst,
                 "fanin: alerts fired by one price move, per repetition and shard")
      ->capture_default_str()
      ->check(CLI::Range(100, 10'000'000));
  bn->add_option("--shards", bench.shards,
                 "fanin: shards (one venue each) bursting at the same moment into the gateway")
      ->capture_default_str()
      ->check(CLI::Range(1, 3));
  bn->add_option("--probes", bench.probes,
                 "pipeline, fanin: alerts crossed one at a time (latency)")
      ->capture_default_str()
      ->check(CLI::Range(20, 50'000));
  bn->add_option("--frames", bench.frames, "pipeline: frames per connection of each flat-out run")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{10'000}, std::uint64_t{100'000'000}));
  bn->add_option("--warmup", bench.warmup_s,
                 "pipeline: seconds of each flat-out run not counted (the first resync)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  bn->add_option("--batch", bench.batch_sizes, "writer: batch sizes (repeatable)")
      ->delimiter(',')
      ->capture_default_str();
  bn->add_flag("--fills", bench.fills,
               "writer: paper fills (each: its order, a position, a trade, the balance and their "
               "audit rows) in batches of --batch against a transaction per fill, instead of "
               "marks");
  bn->add_option("--rows", bench.rows, "writer: open positions in the written table")
      ->capture_default_str()
      ->check(CLI::Range(1'000LL, 10'000'000LL));
  bn->add_option("--json", bench.json_path, "also write the results (schema laminator-bench/1)");
  bn->add_option("--html", bench.html_path,
                 "also write a self-contained HTML report (inline SVG charts)");
  bn->add_option("--compare", bench.compare_path,
                 "compare with an earlier --json run; exit 3 on a regression beyond the noise")
      ->check(CLI::ExistingFile);
  bool bench_quiet = false;
  bn->add_flag("--quiet", bench_quiet, "no progress line");

  std::string check_path;
  CLI::App* cfg = app.add_subcommand("config", "Configuration tools");
  CLI::App* chk = cfg->add_subcommand("check", "Validate a config file without running");
  chk->add_option("file", check_path, "TOML config")->required();
  cfg->require_subcommand(1);

  lam::app::TailOptions tail;
  std::uint64_t since = 0;
  bool no_resume = false;
  CLI::App* tl = app.add_subcommand("tail", "Print alert-stream events as they arrive");
  tl->add_option("--url", tail.url, "ws://HOST:PORT/v1/stream[?user_id=..&type=..]")->required();
  auto* token_opt = tl->add_option("--token", tail.token, "Bearer token (or $LAMINATOR_TOKEN)");
  auto* since_opt = tl->add_option("--since", since, "Replay events after this seq first");
  tl->add_option("--count", tail.count, "Exit after this many events");
  tl->add_option("--idle-timeout", tail.idle_timeout_s, "Exit after this many idle seconds");
  tl->add_flag("--no-resume", no_resume, "Exit when the server closes instead of resuming");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error (a missing input file included) exits 2, as
    // documented, not with CLI11's own codes (105 for a failed check).
    return app.exit(e) == 0 ? 0 : 2;
  }
  // VENUE:SYMBOL=SIZE options: a usage error (2) when one is not that shape.
  auto contract_sizes = [](const std::vector<std::string>& specs,
                           std::map<std::string, std::int64_t>& into) {
    for (const std::string& spec : specs) {
      std::string why;
      const auto cs = lam::app::parse_contract_size(spec, &why);
      if (!cs) {
        std::fprintf(stderr, "--contract-size %s: %s\n", spec.c_str(), why.c_str());
        return false;
      }
      into[cs->first] = cs->second;
    }
    return true;
  };
  if (!contract_sizes(replay_contract_sizes, replay.contract_sizes) ||
      !contract_sizes(feeds_contract_sizes, feeds.contract_sizes)) {
    return 2;
  }
  try {
    if (rep->parsed()) {
      replay.progress = !quiet;
      replay.write_events = !no_events;
      return run_replay_command(replay, quiet);
    }
    if (fd->parsed()) return lam::app::run_feeds(feeds);
    if (bn->parsed()) {
      bench.progress = !bench_quiet;
      // The daemon, the migrator and the mock log at info; a benchmark prints its table and
      // warnings only.
      spdlog::set_level(spdlog::level::warn);
      return lam::app::run_bench_command(bench);
    }
    if (rn->parsed()) return lam::app::run_daemon(run);
    if (gw->parsed()) return lam::app::gateway_command(gateway);
    if (chk->parsed()) return lam::app::check_config(check_path);
    if (tl->parsed()) {
      if (since_opt->count() > 0) tail.since = since;
      if (token_opt->count() == 0) {
        if (const char* t = std::getenv("LAMINATOR_TOKEN")) tail.token = t;
      }
      tail.resume = !no_resume;
      return lam::app::run_tail(tail);
    }
    if (mig->parsed()) return run_migrate_command(database_url, status_only, dry_run, months_ahead);
    if (rec->parsed()) return run_reconcile_command(database_url, reconcile_limit, reconcile_json);
    if (na->parsed())
      return run_nats_authorization(auth_shards, auth_secrets, auth_stream, auth_prefix);
  } catch (const std::exception& e) {
    // A database error may quote the connection string: never log its secrets.
    const char* env = std::getenv(lam::db::kDatabaseUrlEnv);
    std::string what = lam::db::redact_secrets(e.what(), database_url);
    what = lam::db::redact_secrets(what, env != nullptr ? env : "");
    spdlog::error("{}", what);
    return 2;
  }
  return 0;
}
