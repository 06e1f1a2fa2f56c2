#pragma once
/// Database connection strings: libpq accepts both URLs (postgresql://user:pw@host/db?opt=v) and
/// key=value lists; these helpers pick one from config or the environment and hide the password.

#include <optional>
#include <string>
#include <string_view>

namespace lam::db {

inline constexpr const char* kDatabaseUrlEnv = "LAMINATOR_DATABASE_URL";

/// `explicit_url` if non-empty, else $LAMINATOR_DATABASE_URL, else nullopt.
[[nodiscard]] std::optional<std::string> resolve_database_url(const std::string& explicit_url);

/// The same connection string with any password replaced by "***" (safe to log).
[[nodiscard]] std::string redact_database_url(std::string_view url);

}  // namespace lam::db
