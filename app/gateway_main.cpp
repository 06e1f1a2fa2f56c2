// `laminator-gateway`: `laminator gateway` as its own binary (app/gateway_command.h).
#include <CLI/CLI.hpp>

#include "app/gateway_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "laminator-gateway: serve every shard's events from NATS JetStream on one alert stream, "
      "until SIGTERM (docs/operations.md, \"Scale out\")"};
  lam::app::GatewayOptions o;
  lam::app::add_gateway_options(app, o);
  CLI11_PARSE(app, argc, argv);
  return lam::app::gateway_command(o);
}
