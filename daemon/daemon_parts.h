#pragma once
/// Private to daemon*.cpp: everything the Daemon owns, in start-up order.

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon/crash_ring.h"
#include "daemon/daemon.h"
#include "daemon/engine_loop.h"
#include "daemon/maintenance.h"
#include "engine/instruments.h"
#include "engine/matcher.h"
#include "feeds/feed_runner.h"
#include "persistence/listener.h"
#include "persistence/writer.h"
#include "scaleout/jetstream.h"
#include "scaleout/shard.h"
#include "stream/event_bus.h"
#include "stream/journal_reader.h"
#include "stream/stream_server.h"

namespace lam::daemon {

/// A feed connection as the daemon added it.
struct Connection {
  std::size_t runner_index;
  std::size_t symbols;
};

struct Daemon::Parts {
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("daemon");
  std::string url;
  std::uint64_t first_seq = 1;      ///< the first seq of this run (events before it are journaled)
  std::uint64_t journal_holes = 0;  ///< seqs missing from the journal at start-up, not recovered
  InstrumentTable instruments;
  std::unique_ptr<Matcher> matcher;
  std::unique_ptr<CrashRing> ring;
  std::unique_ptr<feeds::TickQueue> ticks;
  std::unique_ptr<EventBus> bus;
  std::unique_ptr<db::Writer> writer;
  std::unique_ptr<db::Listener> listener;
  std::unique_ptr<EngineLoop> engine;
  std::unique_ptr<JournalReader> journal;
  std::unique_ptr<Maintenance> maintenance;
  std::unique_ptr<StreamServer> server;
  ShardMap shard;                ///< owned by the start-up thread, then by the matcher thread
  ForeignMarkets foreign;        ///< other shards' markets, for the listener
  std::size_t foreign_rows = 0;  ///< rows of other shards' markets skipped at load
  std::unique_ptr<JetStreamPublisher> publisher;  ///< [nats]: every event into JetStream
  std::unique_ptr<feeds::FeedRunner> runner;
  std::vector<Connection> connections;
  bool started = false;
  bool stopped = false;
  std::chrono::steady_clock::time_point last_status = std::chrono::steady_clock::now();
  std::uint64_t last_ticks = 0, last_events = 0, last_commands = 0;
};

}  // namespace lam::daemon
