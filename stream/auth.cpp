#include "stream/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>

namespace lam::daemon {

std::array<std::uint8_t, 32> token_hash(std::string_view token) {
  std::array<std::uint8_t, 32> h{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), h.data());
  return h;
}

const TokenConfig* authenticate(const std::vector<TokenConfig>& tokens, std::string_view header) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size() || header.substr(0, kScheme.size()) != kScheme)
    return nullptr;
  const auto hash = token_hash(header.substr(kScheme.size()));
  const TokenConfig* found = nullptr;
  for (const TokenConfig& t : tokens) {  // no early exit: the time does not depend on the match
    const bool eq = CRYPTO_memcmp(hash.data(), t.sha256.data(), hash.size()) == 0;
    if (eq && found == nullptr) found = &t;
  }
  return found;
}

bool apply_scope(const TokenConfig& token, StreamFilter& filter) {
  const std::vector<Uuid>& allowed = token.users;
  if (allowed.empty()) return true;
  if (filter.users.empty()) {
    filter.users = allowed;
    return true;
  }
  return std::all_of(filter.users.begin(), filter.users.end(), [&](const Uuid& u) {
    return std::find(allowed.begin(), allowed.end(), u) != allowed.end();
  });
}

}  // namespace lam::daemon
