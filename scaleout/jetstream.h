#pragma once
/// NATS JetStream for scale-out (docs/operations.md, "Scale out"; docs/events.md, "Through
/// JetStream"): the shard's publisher, the gateway's source and its journal. The only header of
/// the module; nats.c stays inside scaleout/nats_common.h and the files that implement these
/// (jetstream_publisher.cpp, gateway_source.cpp, jetstream_journal.cpp, jetstream_setup.cpp).
///
/// Each class owns one thread and one NATS connection (reconnecting itself with
/// `nats.reconnect_wait_ms` between attempts); counters are atomics read by /metrics.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "scaleout/scaleout_config.h"
#include "stream/event_bus.h"
#include "stream/journal_reader.h"

namespace lam::daemon {

/// The stream the shards publish to, as configured: created when missing, its subjects,
/// retention, storage and duplicate window checked (and updated where JetStream allows) when it
/// exists. Throws std::runtime_error when the server is unreachable or refuses. Returns a
/// one-line description for the log.
std::string ensure_stream(const NatsConfig& cfg, const std::string& url);

/// At the process's end, after every publisher, source and journal is gone: stops nats.c's own
/// threads (timers, async callbacks), waiting up to `timeout`. Left running, they outlive main()
/// (and a ThreadSanitizer build then sleeps a second at exit for them: issue 32's slow shard exit).
/// Nothing when the library was never opened.
void close_nats_library(std::chrono::milliseconds timeout);

/// After a restore (docs/operations.md, "Restores"), with the gateway stopped: deletes its durable
/// consumer, so the next start reads the stream from its first event (or, with `purge`, first
/// empties the stream: an admin's NATS user is needed for that under authorization). Returns what
/// it did; throws with the reason (the URL's password never in it).
std::string reset_gateway_consumer(const NatsConfig& cfg, const GatewayConfig& gw,
                                   const std::string& url, bool purge);

struct PublisherStats {
  std::atomic<std::uint64_t> published{0};       ///< messages handed to the client library
  std::atomic<std::uint64_t> acked_through{0};   ///< gauge: every seq up to this is stored
  std::atomic<std::uint64_t> duplicates{0};      ///< acks saying the server already had it
  std::atomic<std::uint64_t> failures{0};        ///< publishes failed or not acked in time
  std::atomic<std::uint64_t> rewinds{0};         ///< reconnections that resumed publishing
  std::atomic<std::uint64_t> journal_reads{0};   ///< events taken from the journal, not live
  std::atomic<std::uint64_t> live_overflows{0};  ///< live events the publisher had no room for
  std::atomic<std::uint64_t> lost{0};            ///< seqs the journal never held (skipped)
  std::atomic<std::uint64_t> connected{0};       ///< gauge
  std::atomic<std::uint64_t> head{0};            ///< gauge: the highest seq the shard published
  /// gauge: the stream's tail for this shard when it is not this shard's (beyond `head`, not the
  /// event it journaled under that seq, or 1 for an id that is not "<shard>:<seq>"): publishing
  /// stops until it is removed; 0 when trusted.
  std::atomic<std::uint64_t> untrusted_tail{0};
  /// Why (TailVerdict::Kind, scaleout/publish_cursor.h), while untrusted_tail > 0.
  std::atomic<std::uint8_t> untrusted_why{0};
};

/// A shard's publisher: every event of the shard's stream, in seq order, exactly once into
/// JetStream. Live events come from the stream server thread (offer()); what it had no room for,
/// or published before a restart or an outage, is read back from the shard's journal.
class JetStreamPublisher {
 public:
  /// `journal_url`: the shard's database connection (its search_path names its journal).
  /// `head`: the last seq published before this run (journaled by crash recovery).
  JetStreamPublisher(NatsConfig cfg, std::string url, std::string shard, std::string journal_url,
                     std::uint64_t head);
  ~JetStreamPublisher();  ///< stop()
  JetStreamPublisher(const JetStreamPublisher&) = delete;
  JetStreamPublisher& operator=(const JetStreamPublisher&) = delete;

  void start();
  /// Waits up to `deadline` for everything offered to be acknowledged, then stops.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(2));
  /// Server thread: an event entered the stream. Never blocks (a full queue is counted; the
  /// publisher reads those events from the journal).
  void offer(const Entry& e);
  [[nodiscard]] const PublisherStats& stats() const noexcept;
  /// Appends the laminator_nats_* metrics.
  void render(std::string& out) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct SourceStats {
  std::atomic<std::uint64_t> received{0};       ///< messages fetched from the consumer
  std::atomic<std::uint64_t> malformed{0};      ///< messages without a usable id/type (skipped)
  std::atomic<std::uint64_t> shard_repeats{0};  ///< a shard seq at or below one already seen
  std::atomic<std::uint64_t> shard_gaps{0};     ///< a shard seq beyond the next expected
  std::atomic<std::uint64_t> pending{0};        ///< gauge: messages the consumer has not delivered
  std::atomic<std::uint64_t> acked{0};          ///< gauge: the stream seq acknowledged
  std::atomic<std::uint64_t> connected{0};      ///< gauge
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> stream_last{0};     ///< gauge: the stream's last seq when last seen
  std::atomic<std::uint64_t> fetch_hazards{0};   ///< burst fetches given up (FetchPlan::hazards)
  std::atomic<std::uint64_t> unknown_shards{0};  ///< events of shards not in [gateway] shards
  std::atomic<std::uint64_t> declared_gaps{0};   ///< shard seqs skipped as the shard declared
};

/// The gateway's input: a durable pull consumer over every shard's subject, each message
/// rendered (gateway_event.h) and handed to the stream server through `out`. Acknowledges only
/// what the server has published (`published` is its head), so a restarted gateway resumes at
/// the first event no subscriber could have seen.
class GatewaySource {
 public:
  GatewaySource(NatsConfig cfg, GatewayConfig gw, std::string url, EntryBus& out,
                const std::atomic<std::uint64_t>& published);
  ~GatewaySource();
  GatewaySource(const GatewaySource&) = delete;
  GatewaySource& operator=(const GatewaySource&) = delete;

  /// Connects, creates or checks the stream and the durable consumer; returns the stream seq
  /// already acknowledged (the server's ring starts after it) and the stream's last seq.
  /// Throws std::runtime_error when it cannot.
  struct Start {
    std::uint64_t acked = 0;
    std::uint64_t last = 0;
  };
  Start open();
  void start();
  void stop();
  [[nodiscard]] const SourceStats& stats() const noexcept;
  void render(std::string& out) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

/// Resumes beyond the gateway's ring, read from the stream itself (an ephemeral consumer per
/// page, starting at the sequence asked for).
class JetStreamJournal final : public JournalReader {
 public:
  /// `shards`: the shards whose events it serves (empty: any), as [gateway] shards.
  JetStreamJournal(NatsConfig cfg, std::string url, std::vector<std::string> shards = {});
  ~JetStreamJournal() override;
  void read(std::uint64_t after, std::uint64_t before, std::size_t limit, std::vector<Uuid> users,
            std::function<void(JournalPage)> done) override;
  void stop() override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lam::daemon
