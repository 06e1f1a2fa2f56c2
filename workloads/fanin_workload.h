#pragma once
/// Scale-out's cost, shared by bench/fanin_bench and `laminator bench fanin`: one to three shard
/// daemons (mock exchange -> feeds -> matcher -> writer -> its stream server; one venue each)
/// publishing every event to a real `nats-server -js` (file storage), and `laminator gateway`
/// serving them from a durable consumer; subscribers read the same events on each shard's own
/// stream (the baseline: today's single daemon) and through JetStream and the gateway.
///
///  * bursts: `burst` alerts per shard cross at one price move, every shard at the same moment;
///    events/s at each shard's own subscriber and at the gateway's (all shards' events), from the
///    move to the last event (nothing may be missing at either).
///  * probes: alerts of the first shard crossed one at a time; per event, the gateway subscriber's
///    receive time minus the shard's own subscriber's: the latency JetStream and the gateway add.
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
  int shards = 1;           ///< 1 to 3 shards, each bursting `burst` at the same moment
  std::string nats_server;  ///< the binary ("" : nats-server from /usr/sbin or /usr/bin)
  std::function<void(const std::string&)> progress;
};

/// Creates database `name` in `cluster`, migrated, with one Binance market and 1,000 users.
std::string make_fanin_db(db::LocalCluster& cluster, const std::string& name);

struct FaninRun {
  std::vector<double> direct_eps;   ///< per burst and shard: events/s on the shard's own stream
  std::vector<double> gateway_eps;  ///< per burst: events/s (all shards') through the gateway
  std::vector<double> stored_eps;   ///< per burst: events/s until JetStream acknowledged them all
  std::vector<double> direct_us;    ///< per probe: price move -> direct subscriber
  std::vector<double> added_us;     ///< per probe: gateway receive - direct receive
  std::uint64_t missing = 0;        ///< events one subscriber got and the other did not
  std::uint64_t events = 0;         ///< events the shards' own streams delivered (all shards)
};
/// Throws std::runtime_error when a server cannot start or a burst never completes.
FaninRun run_fanin(const std::string& url, const FaninOptions& opt);

}  // namespace lam::bench
