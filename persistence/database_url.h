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

/// The same connection string with any password (and sslpassword) replaced by "***" (safe to log).
[[nodiscard]] std::string redact_database_url(std::string_view url);

/// `text` (typically a libpq or libpqxx error, which may quote a malformed connection string)
/// with every secret of `url` replaced by "***": its password and sslpassword, raw and
/// percent-decoded, wherever they appear, and anything shaped like one. Every database error is
/// passed through this before it is logged or shown.
[[nodiscard]] std::string redact_secrets(std::string_view text, std::string_view url);

/// The same connection with `schema` first on its search_path (then public): a shard's connections
/// (migration 0011). `schema` must be a plain identifier ([a-z0-9_]). URLs get an `options` query
/// parameter, key=value lists an `options` key (appended: libpq takes the last, so an `options`
/// the string had is overridden).
[[nodiscard]] std::string with_search_path(std::string_view url, std::string_view schema);

}  // namespace lam::db
