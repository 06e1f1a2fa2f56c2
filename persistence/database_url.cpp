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

/// Where a secret sits in a connection string: [begin, end) as written, and its value as libpq
/// reads it (percent-decoded in a URI, unquoted and unescaped in a key=value list).
struct SecretSpan {
  std::size_t begin = 0, end = 0;
  std::string value;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool secret_key(std::string_view key) {
  return key == "password" || key == "sslpassword";
}

/// The URI form (libpq: postgresql:// or postgres://): the userinfo's password (userinfo ends at
/// the authority's last '@', a superset of what libpq takes), and every password or sslpassword
/// query parameter ('&'-separated, percent-encoded).
std::vector<SecretSpan> uri_secrets(std::string_view url, std::size_t after_scheme) {
  std::vector<SecretSpan> out;
  std::size_t auth_end = url.find_first_of("/?", after_scheme);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  const std::string_view auth = url.substr(after_scheme, auth_end - after_scheme);
  if (const std::size_t at = auth.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = auth.substr(0, at);
    if (const std::size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
      const std::size_t b = after_scheme + colon + 1, e = after_scheme + at;
      out.push_back({b, e, percent_decode(url.substr(b, e - b))});
    }
  }
  const std::size_t q = url.find('?', after_scheme);
  if (q == std::string_view::npos) return out;
  std::size_t i = q + 1;
  while (i <= url.size()) {
    std::size_t amp = url.find('&', i);
    if (amp == std::string_view::npos) amp = url.size();
    const std::string_view param = url.substr(i, amp - i);
    if (const std::size_t eq = param.find('='); eq != std::string_view::npos) {
      if (secret_key(percent_decode(param.substr(0, eq)))) {
        const std::size_t b = i + eq + 1;
        out.push_back({b, amp, percent_decode(url.substr(b, amp - b))});
      }
    }
    i = amp + 1;
  }
  return out;
}

/// The key=value form (libpq's conninfo_parse): pairs separated by whitespace, spaces allowed
/// around '='; a value is single-quoted (\' and \\ escaped) or runs to the next whitespace (a
/// backslash escapes the next character). Anything else (&, #, =, ", ;) is part of the value.
std::vector<SecretSpan> keyword_secrets(std::string_view s) {
  std::vector<SecretSpan> out;
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    while (i < n && is_space(s[i])) ++i;
    const std::size_t key_begin = i;
    while (i < n && s[i] != '=' && !is_space(s[i])) ++i;
    const std::string_view key = s.substr(key_begin, i - key_begin);
    while (i < n && is_space(s[i])) ++i;
    if (i >= n || s[i] != '=') {
      // Not a pair (libpq refuses the string): a malformed tail may still hold a password; the
      // rest is treated as its value when the key was one.
      if (secret_key(key)) out.push_back({i, n, std::string(s.substr(i))});
      break;
    }
    ++i;
    while (i < n && is_space(s[i])) ++i;
    const std::size_t value_begin = i;
    std::string value;
    if (i < n && s[i] == '\'') {
      ++i;
      while (i < n && s[i] != '\'') {
        if (s[i] == '\\' && i + 1 < n) ++i;
        value.push_back(s[i++]);
      }
      if (i < n) ++i;  // the closing quote (missing: libpq refuses; the rest was the value)
    } else {
      while (i < n && !is_space(s[i])) {
        if (s[i] == '\\' && i + 1 < n) ++i;
        value.push_back(s[i++]);
      }
    }
    if (secret_key(key)) out.push_back({value_begin, i, std::move(value)});
  }
  return out;
}

/// Every secret of a connection string in either of libpq's syntaxes.
std::vector<SecretSpan> secret_spans(std::string_view url) {
  for (const std::string_view scheme : {"postgresql://", "postgres://"})
    if (url.starts_with(scheme)) return uri_secrets(url, scheme.size());
  return keyword_secrets(url);
}

}  // namespace

std::string redact_database_url(std::string_view url) {
  std::string s(url);
  std::vector<SecretSpan> spans = secret_spans(url);
  // From the end, so earlier offsets stay valid.
  std::sort(spans.begin(), spans.end(),
            [](const SecretSpan& a, const SecretSpan& b) { return a.begin > b.begin; });
  for (const SecretSpan& sp : spans) s.replace(sp.begin, sp.end - sp.begin, "***");
  return s;
}

namespace {

/// The secrets a connection string carries: as written and as libpq reads them (well formed or
/// not), and percent-decoded (libpq quotes either in its errors).
std::vector<std::string> secrets_of(std::string_view url) {
  std::vector<std::string> out;
  for (const SecretSpan& sp : secret_spans(url)) {
    out.emplace_back(url.substr(sp.begin, sp.end - sp.begin));
    out.push_back(sp.value);
  }
  // A URI-looking string that does not start with libpq's schemes (a typo: postgresq://).
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
    const auto at = url.rfind('@');
    if (at != std::string_view::npos && at > scheme + 3) {
      const std::string_view userinfo = url.substr(scheme + 3, at - scheme - 3);
      if (const auto colon = userinfo.find(':'); colon != std::string_view::npos)
        out.emplace_back(userinfo.substr(colon + 1));
    }
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
