#pragma once
/// The alert-stream server's configuration (`[stream]`, `[[stream.tokens]]`): defaults here, parsed
/// from TOML by daemon/config.cpp for `laminator run` and `laminator gateway` alike.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/uuid.h"

namespace lam::daemon {

/// A subscriber credential: only the SHA-256 of the token is kept.
struct TokenConfig {
  std::string name;
  std::array<std::uint8_t, 32> sha256{};
  std::vector<Uuid> users;  ///< users the token may see; empty: every user
};

struct StreamConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8700;
  std::size_t ring_events = 1 << 16;    ///< recent events kept in memory for `since`
  std::size_t client_queue = 4'096;     ///< events queued per subscriber before it is cut (1008)
  std::size_t max_connections = 1'024;  ///< open HTTP + WebSocket connections; more get 503
  std::size_t bus_capacity = 1 << 16;   ///< matcher -> server queue
  std::uint32_t journal_retention_hours = 168;
  std::vector<TokenConfig> tokens;
};

/// SHA-256 of a token, as stored in TokenConfig.
[[nodiscard]] std::array<std::uint8_t, 32> token_hash(std::string_view token);

}  // namespace lam::daemon
