#include "persistence/database_url.h"

#include <cstdlib>
#include <regex>

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
  static const std::regex kv_pw(R"((^|[\s?&])password\s*=\s*('([^'\\]|\\.)*'|[^\s&]*))");
  s = std::regex_replace(s, kv_pw, "$1password=***");
  return s;
}

}  // namespace lam::db
