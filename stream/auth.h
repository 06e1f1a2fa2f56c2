#pragma once
/// Subscriber authentication: `Authorization: Bearer TOKEN`, checked against SHA-256 hashes from
/// config. Every configured hash is compared, in constant time (CRYPTO_memcmp), whatever matches.

#include <string_view>
#include <vector>

#include "stream/stream_config.h"
#include "stream/stream_filter.h"

namespace lam::daemon {

/// The token that matches the header, or nullptr (missing header, other scheme, unknown token).
[[nodiscard]] const TokenConfig* authenticate(const std::vector<TokenConfig>& tokens,
                                              std::string_view authorization_header);

/// True when `filter` asks only for what `token` may see; narrows an empty user filter to the
/// token's users. False when the filter names a user outside the token's scope.
[[nodiscard]] bool apply_scope(const TokenConfig& token, StreamFilter& filter);

}  // namespace lam::daemon
