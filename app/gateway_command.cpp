// `laminator gateway` and `laminator-gateway` (app/gateway_command.h).
#include "app/gateway_command.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "app/serve.h"
#include "daemon/config.h"
#include "daemon/gateway.h"
#include "scaleout/jetstream.h"

namespace lam::app {

void add_gateway_options(CLI::App& cmd, GatewayOptions& o) {
  cmd.add_option("--config", o.run.config_path, "TOML config: [stream], [nats], [gateway]")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--status-every", o.run.status_every_s,
                 "Seconds between one-line status reports on stderr (0: off)")
      ->capture_default_str();
  cmd.add_flag("--reset-consumer", o.reset_consumer,
               "With the gateway stopped: delete its durable consumer (after a restore) and exit; "
               "its next start reads the stream from the first event");
  cmd.add_flag("--purge-stream", o.purge_stream,
               "With --reset-consumer: first empty the stream (an admin's NATS user under "
               "authorization)")
      ->needs("--reset-consumer");
}

int gateway_command(const GatewayOptions& o) {
  return o.reset_consumer ? reset_gateway(o.run.config_path, o.purge_stream) : run_gateway(o.run);
}

int reset_gateway(const std::string& config_path, bool purge) {
  try {
    const daemon::Config c = daemon::load_gateway_config(config_path);
    if (!c.nats) throw daemon::ConfigError(config_path + ": the gateway needs a [nats] section");
    std::printf(
        "%s\n",
        daemon::reset_gateway_consumer(*c.nats, c.gateway, daemon::nats_url(c), purge).c_str());
    return 0;
  } catch (const daemon::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gateway reset failed: %s\n", e.what());
    return 1;
  }
}

int run_gateway(const RunOptions& opt) {
  return serve<daemon::Gateway>(
      opt, &daemon::load_gateway_config, [](const daemon::Config& c) { (void)daemon::nats_url(c); },
      // The gateway's errors name the NATS URL only through redact_nats_url().
      [](const daemon::Config&, const std::string& what) { return what; });
}

}  // namespace lam::app
