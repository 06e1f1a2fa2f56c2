// Stream set-up and the gateway's consumer reset (scaleout/jetstream.h).
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "scaleout/fetch_plan.h"
#include "scaleout/gateway_event.h"
#include "scaleout/jetstream.h"
#include "scaleout/nats_common.h"
#include "scaleout/publish_window.h"
#include "scaleout/shard_order.h"
#include "stream/prometheus.h"
#include "stream/request_thread.h"

namespace lam::daemon {

using namespace nats_detail;

std::string ensure_stream(const NatsConfig& cfg, const std::string& url) {
  Conn c;
  if (auto err = c.open(cfg, url, "laminator-setup", nullptr)) throw std::runtime_error(*err);
  return ensure_stream_on(c.js, cfg);
}

void close_nats_library(std::chrono::milliseconds timeout) {
  (void)nats_CloseAndWait(timeout.count());  // NATS_NOT_INITIALIZED when never opened: nothing
}

std::string reset_gateway_consumer(const NatsConfig& cfg, const GatewayConfig& gw,
                                   const std::string& url, bool purge) {
  Conn c;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5'000;
  if (auto err = c.open(cfg, url, "laminator-gateway-reset", &jo)) throw std::runtime_error(*err);
  std::string done;
  jsErrCode e{};
  if (purge) {
    const natsStatus s = js_PurgeStream(c.js, cfg.stream.c_str(), nullptr, &e);
    if (s != NATS_OK)
      throw std::runtime_error("cannot purge stream " + cfg.stream + ": " + why(s, e) +
                               " (under authorization, use an admin's NATS user)");
    done = "purged stream " + cfg.stream + "; ";
  }
  const natsStatus s = js_DeleteConsumer(c.js, cfg.stream.c_str(), gw.durable.c_str(), nullptr, &e);
  if (s == NATS_NOT_FOUND) return done + "consumer " + gw.durable + " did not exist";
  if (s != NATS_OK)
    throw std::runtime_error("cannot delete consumer " + gw.durable + ": " + why(s, e));
  return done + "deleted consumer " + gw.durable +
         ": the gateway's next start reads the stream from its first event";
}

}  // namespace lam::daemon
