#include "scaleout/scaleout_config.h"

#include <algorithm>

namespace lam::daemon {

std::string redact_nats_url(std::string_view url) {
  std::string out;
  // Every URL of a comma-separated list: user:password@ or token@ becomes ***@.
  std::size_t start = 0;
  while (start <= url.size()) {
    const std::size_t comma = std::min(url.find(',', start), url.size());
    std::string_view one = url.substr(start, comma - start);
    const std::size_t scheme = one.find("://");
    const std::size_t at = one.rfind('@');
    if (!out.empty()) out.push_back(',');
    if (scheme != std::string_view::npos && at != std::string_view::npos && at > scheme)
      out.append(one.substr(0, scheme + 3)).append("***").append(one.substr(at));
    else
      out.append(one);
    start = comma + 1;
  }
  return out;
}

}  // namespace lam::daemon
