// mockex: the mock exchange as a program, for the demo, benchmarks and people.
//   mockex --port 9100 --rate 2000 [--replay data/captures/*.lcap] [--max-frames N]
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "tools/mockex/mock_exchange.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
  lam::mockex::Options opt;
  std::vector<std::string> replay;
  CLI::App app{
      "Laminator mock exchange: Binance, Bybit, OKX, Hyperliquid, Coinbase and Pyth Hermes on "
      "loopback"};
  app.add_option("--address", opt.address, "listen address (loopback)")->capture_default_str();
  app.add_option("--port", opt.port, "listen port (0: ephemeral)")->capture_default_str();
  app.add_option("--rate", opt.rate, "data frames/s per connection (0: as fast as possible)")
      ->capture_default_str();
  app.add_option("--max-frames", opt.max_frames, "data frames per connection (0: unlimited)");
  app.add_option("--seed", opt.seed, "generator seed")->capture_default_str();
  app.add_option("--walk-bps", opt.walk_bps,
                 "random-walk mode: each frame moves its symbol's venue-wide price by up to this "
                 "many basis points, in the symbol's tick size (0: a quiet +-2 cent walk)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--replay", replay, "capture files to replay instead of generating");
  app.add_option("--tls-cert", opt.tls_cert_file, "PEM certificate (chain): also serve wss://");
  app.add_option("--tls-key", opt.tls_key_file, "PEM private key of --tls-cert");
  CLI11_PARSE(app, argc, argv);
  try {
    if (!replay.empty()) lam::mockex::load_replay(opt, replay);
    lam::mockex::MockExchange ex(opt);
    ex.start();
    std::printf("mockex listening on %s:%u\n", opt.address.c_str(), ex.port());
    for (lam::feeds::Venue v : lam::feeds::kAllVenues) {
      std::printf("  %-12s %s\n", std::string(lam::feeds::venue_name(v)).c_str(),
                  ex.url(v, v == lam::feeds::Venue::binance ? "market" : "").c_str());
      if (ex.tls_port() != 0) {
        std::printf("  %-12s %s\n", "",
                    ex.url(v, v == lam::feeds::Venue::binance ? "market" : "", true).c_str());
      }
    }
    std::fflush(stdout);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ex.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mockex: %s\n", e.what());
    return 1;
  }
  return 0;
}
