#include "daemon/gateway.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "scaleout/jetstream.h"
#include "stream/event_bus.h"
#include "stream/prometheus.h"
#include "stream/stream_server.h"

namespace lam::daemon {

using Clock = std::chrono::steady_clock;

struct Gateway::Parts {
  std::shared_ptr<spdlog::logger> log = spdlog::default_logger()->clone("gateway");
  std::string url;
  std::atomic<std::uint64_t> published{0};  ///< the server's head (written on its thread)
  std::uint64_t start_last = 0;             ///< the stream's last seq at start-up
  std::unique_ptr<EntryBus> entries;
  std::unique_ptr<GatewaySource> source;
  std::unique_ptr<JetStreamJournal> journal;
  std::unique_ptr<StreamServer> server;
  bool started = false, stopped = false;
  Clock::time_point last_status = Clock::now();
  std::uint64_t last_head = 0;
};

std::string GatewayStatus::format() const {
  char line[256];
  std::snprintf(line, sizeof line, "%.0f events/s | stream seq %llu of %llu | %llu subscribers",
                events_per_s, static_cast<unsigned long long>(head),
                static_cast<unsigned long long>(stream_last),
                static_cast<unsigned long long>(subscribers));
  return line;
}

Gateway::Gateway(Config cfg) : cfg_(std::move(cfg)), p_(std::make_unique<Parts>()) {}

Gateway::~Gateway() {
  stop();
}

void Gateway::start() {
  Parts& p = *p_;
  if (!cfg_.nats) throw std::runtime_error(cfg_.path + ": the gateway needs a [nats] section");
  p.url = nats_url(cfg_);
  p.log->info("config {}: stream {}:{} with {} token(s); JetStream stream {} on {}, consumer {}",
              cfg_.path, cfg_.stream.address, cfg_.stream.port, cfg_.stream.tokens.size(),
              cfg_.nats->stream, redact_nats_url(p.url), cfg_.gateway.durable);
  p.entries = std::make_unique<EntryBus>(cfg_.stream.bus_capacity);
  p.source =
      std::make_unique<GatewaySource>(*cfg_.nats, cfg_.gateway, p.url, *p.entries, p.published);
  const GatewaySource::Start at = p.source->open();
  p.published.store(at.acked);
  p.start_last = at.last;
  p.journal = std::make_unique<JetStreamJournal>(*cfg_.nats, p.url, cfg_.gateway.shards);
  ServerHooks hooks;
  hooks.on_publish = [&p](const Entry& e) {
    p.published.store(e.meta.seq, std::memory_order_release);
  };
  hooks.known_head = [&p] {
    return std::max(p.start_last, p.source->stats().stream_last.load(std::memory_order_relaxed));
  };
  hooks.metrics = [&p](std::string& out) {
    p.source->render(out);
    PromWriter m(out);
    m.one("laminator_gateway_published_seq", "gauge",
          "The last stream seq published to subscribers", p.published.load());
    m.one("laminator_gateway_input_overflows_total", "counter",
          "Times the consumer found the server's queue full (it waits)", p.entries->overflows());
  };
  hooks.health = [&p](std::string& out) {
    const SourceStats& s = p.source->stats();
    const bool nats = s.connected.load() == 1;
    const std::uint64_t head = p.published.load();
    const bool caught_up = head >= p.start_last;
    std::string reasons;
    if (!nats) reasons = "\"NATS unreachable\"";
    if (!caught_up) {
      if (!reasons.empty()) reasons.push_back(',');
      reasons.append("\"catching up with the stream (start-up)\"");
    }
    out = std::string("{\"status\":\"") + (reasons.empty() ? "ok" : "degraded") +
          "\",\"nats\":" + (nats ? "true" : "false") + ",\"seq\":" + std::to_string(head) +
          ",\"stream_last_seq\":" + std::to_string(s.stream_last.load()) +
          ",\"consumer_pending\":" + std::to_string(s.pending.load()) + ",\"reasons\":[" + reasons +
          "]}";
    return nats && caught_up;
  };
  p.server = std::make_unique<StreamServer>(cfg_.stream, *p.entries, p.journal.get(),
                                            std::move(hooks), at.acked);
  p.server->start();
  p.source->start();
  p.started = true;
  p.last_head = at.acked;
  p.log->info(
      "running: stream {} from seq {} (the stream holds up to {}), consumer {}, alert stream on "
      "{}:{}",
      cfg_.nats->stream, at.acked + 1, at.last, cfg_.gateway.durable, cfg_.stream.address,
      p.server->port());
}

void Gateway::stop() {
  Parts& p = *p_;
  if (!p.started || p.stopped) return;
  p.stopped = true;
  p.source->stop();
  p.server->stop(std::chrono::milliseconds(1500));
  p.journal->stop();
  p.log->info("stopped at stream seq {}", p.published.load());
}

std::uint16_t Gateway::port() const {
  return p_->server ? p_->server->port() : 0;
}

GatewayStatus Gateway::status() {
  Parts& p = *p_;
  GatewayStatus s;
  s.head = p.published.load();
  s.stream_last = p.source->stats().stream_last.load();
  s.subscribers = p.server->stats().subscribers.load();
  const auto now = Clock::now();
  const double dt = std::chrono::duration<double>(now - p.last_status).count();
  if (dt > 0) s.events_per_s = static_cast<double>(s.head - p.last_head) / dt;
  p.last_status = now;
  p.last_head = s.head;
  return s;
}

}  // namespace lam::daemon
