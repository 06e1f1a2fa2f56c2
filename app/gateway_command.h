#pragma once
/// `laminator gateway` (a subcommand of the CLI) and `laminator-gateway` (the same, as its own
/// binary, which links only what the gateway uses: the stream server, scale-out's gateway side and
/// the config; not the matcher, the feeds or libpqxx: scripts/check-gateway-link).

#include <string>

#include "app/run_command.h"

namespace CLI {
class App;
}

namespace lam::app {

struct GatewayOptions {
  RunOptions run;
  bool reset_consumer = false;
  bool purge_stream = false;
};

/// --config, --status-every, --reset-consumer, --purge-stream on `cmd`.
void add_gateway_options(CLI::App& cmd, GatewayOptions& o);
/// Runs the gateway until SIGTERM/SIGINT, or resets its consumer; the exit status.
int gateway_command(const GatewayOptions& o);

/// Runs the gateway until SIGTERM/SIGINT; returns the exit status.
int run_gateway(const RunOptions& opt);
/// `--reset-consumer [--purge-stream]`: scaleout's reset_gateway_consumer with the config's [nats]
/// and [gateway]. Exit status.
int reset_gateway(const std::string& config_path, bool purge);

}  // namespace lam::app
