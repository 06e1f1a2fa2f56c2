#include "daemon/maintenance.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <pqxx/pqxx>

#include "persistence/database_url.h"
#include "stream/prometheus.h"

namespace lam::daemon {
namespace {

using Clock = std::chrono::steady_clock;

/// A Prometheus label value: backslash, double quote and newline escaped (replica names come from
/// the database, where any text may stand).
std::string label_value(const std::string& v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

db::YearMonth this_month() {
  return db::YearMonth::of(std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
}

}  // namespace

Maintenance::Maintenance(std::string conninfo, MaintenanceConfig cfg)
    : conninfo_(std::move(conninfo)), cfg_(std::move(cfg)) {}

Maintenance::~Maintenance() {
  stop();
}

void Maintenance::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lam-maint");  // visible in top -H / ps -L
    run();
  });
}

void Maintenance::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Maintenance::wake_partitions() {
  {
    std::lock_guard lock(mu_);
    partitions_now_ = true;
  }
  cv_.notify_one();
}

MaintenanceSnapshot Maintenance::snapshot() const {
  std::lock_guard lock(mu_);
  return snap_;
}

void Maintenance::run() {
  // Long: the maintenance thread's schedule: health, partitions and the books' check each on its
  // own timer, sharing one connection and one snapshot lock.
  auto log = spdlog::default_logger()->clone("maintenance");
  std::unique_ptr<pqxx::connection> conn;
  auto next_health = Clock::now();
  auto next_partitions = Clock::now();
  auto next_reconcile = cfg_.reconcile_interval.count() > 0
                            ? Clock::now() + std::min<Clock::duration>(cfg_.reconcile_interval,
                                                                       std::chrono::seconds(10))
                            : Clock::time_point::max();
  const auto failed = [&](const char* what, const std::exception& e) {
    log->warn("{} failed: {}", what, db::redact_secrets(e.what(), conninfo_));
    std::lock_guard lock(mu_);
    ++snap_.errors;
  };
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, std::min({next_health, next_partitions, next_reconcile}),
                     [&] { return stopping_ || partitions_now_; });
      if (stopping_) break;
      if (partitions_now_) {
        partitions_now_ = false;
        next_partitions = Clock::now();
      }
    }
    try {
      if (!conn) {
        conn = std::make_unique<pqxx::connection>(conninfo_);
        pqxx::nontransaction n(*conn);
        n.exec("SET TIME ZONE 'UTC'");
        n.exec("SET application_name = 'laminator-maintenance'");
        n.exec("SET statement_timeout = '60s'");
      }
      if (Clock::now() >= next_health) {
        next_health = Clock::now() + cfg_.health_interval;
        db::DbHealth h = db::collect_db_health(*conn);
        if (!h.ok) {
          log->warn("database health: {}", db::redact_secrets(h.error, conninfo_));
          h.error = db::redact_secrets(h.error, conninfo_);
        }
        std::lock_guard lock(mu_);
        if (!h.ok) ++snap_.errors;
        snap_.health = std::move(h);
        snap_.have_health = true;
        ++snap_.health_runs;
      }
      if (Clock::now() >= next_reconcile) {
        next_reconcile = Clock::now() + cfg_.reconcile_interval;
        db::ReconcileReport r;
        {
          pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(*conn, "reconcile");
          r = db::reconcile(tx, 5);
        }
        if (r.total() > 0) {
          log->error("the books break {} invariant row(s) (laminator reconcile names them all)",
                     r.total());
          for (const db::Violation& v : r.violations)
            log->error("  {}: {} {}: {}", v.invariant, v.table, v.row_id, v.detail);
        }
        std::lock_guard lock(mu_);
        snap_.reconcile = std::move(r);
        snap_.have_reconcile = true;
        ++snap_.reconcile_runs;
        snap_.reconcile_at =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count();
      }
      if (Clock::now() >= next_partitions) {
        next_partitions = Clock::now() + cfg_.partition_interval;
        std::vector<db::PartitionReport> reports;
        const db::YearMonth now = this_month();
        std::uint64_t errors = 0;
        // The bot's tables are public's; a shard's connection names its journal schema first, and
        // a new month's partition must not land there.
        pqxx::nontransaction(*conn).exec("SET search_path TO public");
        for (const db::PartitionPolicy& p : cfg_.partitions) {
          db::PartitionReport r = db::keep_partitions(*conn, p, now);
          for (const std::string& c : r.created) log->info("partition {} created", c);
          for (const std::string& x : r.expired) {
            log->info("partition {} expired ({})", x,
                      p.expiry == db::Expiry::drop ? "dropped" : "archived in " + p.archive_schema);
          }
          for (std::string& e : r.errors) {
            e = db::redact_secrets(e, conninfo_);
            log->warn(
                "partitions of {}: {} (tried again in {} s)", p.table, e,
                std::chrono::duration_cast<std::chrono::seconds>(cfg_.partition_interval).count());
          }
          if (r.default_rows > 0) {
            log->warn(
                "{}_default holds {} row(s) no monthly partition can take (far dates or "
                "infinity)",
                p.table, r.default_rows);
          }
          errors += r.errors.size();
          reports.push_back(std::move(r));
        }
        pqxx::nontransaction(*conn).exec("RESET search_path");  // the journal's (shard: its own)
        db::JournalReport j = db::keep_journal_partitions(*conn, cfg_.journal);
        for (const std::string& c : j.created) log->info("journal partition {} created", c);
        for (const std::string& x : j.expired) log->info("journal partition {} expired", x);
        for (std::string& e : j.errors) {
          e = db::redact_secrets(e, conninfo_);
          log->warn("journal partitions: {}", e);
        }
        errors += j.errors.size();
        std::lock_guard lock(mu_);
        snap_.partitions = std::move(reports);
        snap_.journal = std::move(j);
        snap_.errors += errors;
        ++snap_.partition_runs;
      }
    } catch (const std::exception& e) {
      conn.reset();  // lost or unusable: reopened at the next interval
      failed("maintenance", e);
      next_health = std::max(next_health, Clock::now() + std::chrono::seconds(5));
    }
  }
}

namespace {

/// WAL archiving's families (pg_stat_archiver), with the database's health.
void render_archive(PromWriter& m, const db::ArchiveHealth& a) {
  m.family("laminator_db_archive_enabled", "gauge",
           "1 when WAL archiving is on (archive_mode): point-in-time recovery is possible");
  m.sample_double("laminator_db_archive_enabled", a.enabled ? 1 : 0);
  m.family("laminator_db_archived_total", "counter",
           "WAL files archived (pg_stat_archiver.archived_count)");
  m.sample_double("laminator_db_archived_total", static_cast<double>(a.archived));
  m.family("laminator_db_archive_failed_total", "counter",
           "Failed WAL archive attempts (pg_stat_archiver.failed_count): archive_command "
           "failing, say a directory the server cannot write");
  m.sample_double("laminator_db_archive_failed_total", static_cast<double>(a.failed));
  m.family("laminator_db_archive_last_success_age_seconds", "gauge",
           "Seconds since the last WAL file was archived (no sample before the first)");
  if (a.last_archived_age_s >= 0)
    m.sample_double("laminator_db_archive_last_success_age_seconds", a.last_archived_age_s);
}

}  // namespace

void Maintenance::render(std::string& out) const {
  const MaintenanceSnapshot s = snapshot();
  PromWriter m(out);
  m.family("laminator_maintenance_errors_total", "counter",
           "Failed health collections, partition steps and lost maintenance connections");
  m.sample_double("laminator_maintenance_errors_total", static_cast<double>(s.errors));
  {
    // The families always (the rules name them); samples once the books were checked.
    m.family("laminator_reconcile_violations", "gauge",
             "Rows breaking each invariant of the books at the last check (laminator reconcile)");
    for (std::size_t i = 0; i < db::invariants().size() && i < s.reconcile.counts.size(); ++i) {
      m.sample_double("laminator_reconcile_violations", static_cast<double>(s.reconcile.counts[i]),
                      std::string("invariant=\"") + db::invariants()[i].name + "\"");
    }
    m.family("laminator_reconcile_balances_unchecked", "gauge",
             "Wallet balances whose audit history no longer reaches a baseline (not checked)");
    m.sample_double("laminator_reconcile_balances_unchecked",
                    static_cast<double>(s.reconcile.balances_unchecked));
    m.seconds("laminator_reconcile_duration_seconds", "How long the last check took",
              s.reconcile.seconds);
    m.family("laminator_reconcile_last_run_timestamp_seconds", "gauge",
             "Unix time of the last check of the books (0: not yet)");
    m.sample_double("laminator_reconcile_last_run_timestamp_seconds", s.reconcile_at);
    m.family("laminator_reconcile_runs_total", "counter", "Checks of the books");
    m.sample_double("laminator_reconcile_runs_total", static_cast<double>(s.reconcile_runs));
  }
  if (s.have_health) {
    const db::DbHealth& h = s.health;
    m.family("laminator_db_up", "gauge", "1 when the last health collection succeeded");
    m.sample_double("laminator_db_up", h.ok ? 1 : 0);
    if (h.ok) {
      m.family("laminator_db_connections", "gauge", "Client connections open on the server");
      m.sample_double("laminator_db_connections", static_cast<double>(h.connections));
      m.family("laminator_db_max_connections", "gauge", "The server's max_connections");
      m.sample_double("laminator_db_max_connections", static_cast<double>(h.max_connections));
      m.family("laminator_db_longest_transaction_seconds", "gauge",
               "Age of the oldest transaction holding back vacuum of this database (another "
               "session's with a snapshot or an xid, or a prepared one)");
      m.sample_double("laminator_db_longest_transaction_seconds", h.longest_transaction_s);
      render_archive(m, h.archive);
      m.family("laminator_db_xid_age", "gauge",
               "Transaction-id age of the database (wraparound protection forces at 2^31)");
      m.sample_double("laminator_db_xid_age", static_cast<double>(h.xid_age));
      struct Col {
        const char* name;
        const char* help;
        double (*get)(const db::TableHealth&);
      };
      static const Col cols[] = {
          {"laminator_db_table_live_tuples", "Live rows (statistics estimate)",
           [](const db::TableHealth& t) { return static_cast<double>(t.live_tuples); }},
          {"laminator_db_table_dead_tuples", "Dead rows waiting for vacuum",
           [](const db::TableHealth& t) { return static_cast<double>(t.dead_tuples); }},
          {"laminator_db_table_seconds_since_vacuum", "Seconds since the last (auto)vacuum",
           [](const db::TableHealth& t) { return t.seconds_since_autovacuum; }},
          {"laminator_db_table_bytes", "Size with indexes and TOAST (partitions summed)",
           [](const db::TableHealth& t) { return static_cast<double>(t.bytes); }},
      };
      for (const Col& col : cols) {
        m.family(col.name, "gauge", col.help);
        for (const db::TableHealth& t : h.tables) {
          const double v = col.get(t);
          if (v >= 0)
            m.sample_double(col.name, v, "table=\"" + t.table + "\"");  // unknown: omitted
        }
      }
      m.family("laminator_db_replication_lag_seconds", "gauge",
               "Replay lag of each streaming replica");
      for (const db::ReplicaLag& r : h.replicas) {
        if (r.seconds >= 0) {
          m.sample_double("laminator_db_replication_lag_seconds", r.seconds,
                          "replica=\"" + label_value(r.name) + "\"");
        }
      }
      m.family("laminator_db_health_collect_seconds", "gauge",
               "How long the last health collection took");
      m.sample_double("laminator_db_health_collect_seconds", h.collect_seconds);
    }
  }
  if (!s.partitions.empty()) {
    m.family(
        "laminator_db_partition_months_ahead", "gauge",
        "Months ahead of the current one with a partition, without a gap (-1: none this month)");
    for (const db::PartitionReport& r : s.partitions)
      m.sample_double("laminator_db_partition_months_ahead", r.months_ahead,
                      "table=\"" + r.table + "\"");
    m.family("laminator_db_partition_default_rows", "gauge",
             "Rows in the default partition (no monthly partition or seq range can take them)");
    for (const db::PartitionReport& r : s.partitions)
      m.sample_double("laminator_db_partition_default_rows", static_cast<double>(r.default_rows),
                      "table=\"" + r.table + "\"");
    m.sample_double("laminator_db_partition_default_rows",
                    static_cast<double>(s.journal.default_rows), "table=\"alert_events\"");
    m.family("laminator_db_journal_seqs_ahead", "gauge",
             "Event seqs above the journal's head a partition is ready for");
    m.sample_double("laminator_db_journal_seqs_ahead", static_cast<double>(s.journal.seqs_ahead));
  }
}

}  // namespace lam::daemon
