#pragma once
/// Scale-out's cost, shared by bench/fanin_bench and `laminator bench fanin`: one shard daemon
/// (mock exchange -> feeds -> matcher -> writer -> its stream server) publishing every event to a
/// real `nats-server -js` (file storage), and `laminator gateway` serving them from a durable
/// consumer; two subscribers read the same events, one on the daemon's own stream (the baseline:
/// today's single daemon) and one through JetStream and the gateway.
///
///  * bursts: `burst` alerts cross at one price move; events/s at each subscriber, from the move to
///    the last event (nothing may be missing at either).
///  * probes: alerts crossed one at a time; per event, the gateway subscriber's receive time minus
///    the direct subscriber's: the latency JetStream and the gateway add.
/// No Beast, nats.c or simdjson in this header.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lam::db {
class LocalCluster;
}

namespace lam::bench {

struct FaninOptions {
  int burst = 20'000;       ///< alerts fired by one price move, per repetition
  int repetitions = 3;      ///< bursts
  int probes = 500;         ///< alerts crossed one at a time
  std::string nats_server;  ///< the binary ("" : nats-server from /usr/sbin or /usr/bin)
  std::function<void(const std::string&)> progress;
};

/// Creates database `name` in `cluster`, migrated, with one Binance market and 1,000 users.
std::string make_fanin_db(db::LocalCluster& cluster, const std::string& name);

struct FaninRun {
  std::vector<double> direct_eps;   ///< per burst: events/s on the daemon's own stream
  std::vector<double> gateway_eps;  ///< per burst: events/s through JetStream and the gateway
  std::vector<double> stored_eps;   ///< per burst: events/s until JetStream acknowledged them all
  std::vector<double> direct_us;    ///< per probe: price move -> direct subscriber
  std::vector<double> added_us;     ///< per probe: gateway receive - direct receive
  std::uint64_t missing = 0;        ///< events one subscriber got and the other did not
  std::uint64_t events = 0;         ///< events each subscriber received
};
/// Throws std::runtime_error when a server cannot start or a burst never completes.
FaninRun run_fanin(const std::string& url, const FaninOptions& opt);

}  // namespace lam::bench
