#include "persistence/database_url.h"

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <vector>

namespace lam::db {

std::optional<std::string> resolve_database_url(const std::string& explicit_url) {
  if (!explicit_url.empty()) return explicit_url;
  if (const char* env = std::getenv(kDatabaseUrlEnv); env != nullptr && *env != '\0')
    return std::string(env);
  return std::nullopt;
}

std::string redact_database_url(std::string_view url) {
  std::string s(url);
  // URL form: scheme://user:password@host...
  static const std::regex url_pw(R"(^([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#]*):[^@/?#]*@)");
  s = std::regex_replace(s, url_pw, "$1:***@");
  // query parameter or key=value form: password=... (quoted or not)
  static const std::regex kv_pw(R"((^|[\s?&])(ssl)?password\s*=\s*('([^'\\]|\\.)*'|[^\s&]*))");
  s = std::regex_replace(s, kv_pw, "$1$2password=***");
  return s;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

/// The secrets a connection string carries, as written (well formed or not).
std::vector<std::string> secrets_of(std::string_view url) {
  std::vector<std::string> out;
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
    // userinfo ends at the last '@' (a malformed URL may have more than one).
    const auto at = url.rfind('@');
    if (at != std::string_view::npos && at > scheme + 3) {
      const std::string_view userinfo = url.substr(scheme + 3, at - scheme - 3);
      if (const auto colon = userinfo.find(':'); colon != std::string_view::npos)
        out.emplace_back(userinfo.substr(colon + 1));
    }
  }
  static const std::regex kv(R"((^|[\s?&])(ssl)?password\s*=\s*('(([^'\\]|\\.)*)'|[^\s&]*))");
  const std::string u(url);
  for (auto it = std::sregex_iterator(u.begin(), u.end(), kv); it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out.push_back(m[4].matched ? m[4].str() : m[3].str());
  }
  const std::size_t n = out.size();
  for (std::size_t i = 0; i < n; ++i) out.push_back(percent_decode(out[i]));
  return out;
}

}  // namespace

std::string redact_secrets(std::string_view text, std::string_view url) {
  std::vector<std::string> secrets = secrets_of(url);
  std::sort(secrets.begin(), secrets.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::string s(text);
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (std::size_t pos = s.find(secret); pos != std::string::npos; pos = s.find(secret, pos + 3))
      s.replace(pos, secret.size(), "***");
  }
  // Anything shaped like a credential that the URL did not spell the same way.
  static const std::regex any_url_pw(R"(([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@?#\s]*):[^@\s]*@)");
  s = std::regex_replace(s, any_url_pw, "$1:***@");
  static const std::regex kv_pw(R"((^|[\s?&"'])(ssl)?password\s*=\s*('([^'\\]|\\.)*'|[^\s&"]*))");
  s = std::regex_replace(s, kv_pw, "$1$2password=***");
  return s;
}

std::string with_search_path(std::string_view url, std::string_view schema) {
  std::string out(url);
  const bool uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  if (uri) {
    // "-c search_path=S,public", percent-encoded (space %20, '=' %3D, ',' %2C).
    out.append(out.find('?') == std::string::npos ? "?" : "&")
        .append("options=-c%20search_path%3D")
        .append(schema)
        .append("%2Cpublic");
  } else {
    out.append(" options='-c search_path=").append(schema).append(",public'");
  }
  return out;
}

}  // namespace lam::db
