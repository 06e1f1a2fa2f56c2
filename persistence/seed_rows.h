#pragma once
/// Bulk synthetic rows for tests and benchmarks (`laminator bench writer`): users, wallets,
/// markets, open positions, active alerts, with deterministic ids (kind prefix + sequence number)
/// so callers can address rows.

#include <pqxx/pqxx>
#include <string>

#include "engine/uuid.h"

namespace lam::db {

/// 'kkkkkkkk-0000-4000-8000-nnnnnnnnnnnn'
inline std::string seq_uuid(unsigned kind, long long n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012llx", kind, n);
  return buf;
}
inline Uuid seq_id(unsigned kind, long long n) {
  return *Uuid::parse(seq_uuid(kind, n));
}

constexpr unsigned kUser = 0xC, kWallet = 0xE, kMarket = 0xA, kPosition = 0xB, kAlert = 0xD;

/// `markets` markets, `n` positions (one per user) and `n` alerts, all in one transaction.
inline void seed(const std::string& url, int markets, long long n) {
  pqxx::connection c(url);
  pqxx::work w(c);
  // A dataset as found, not the bot's writes: no change notifications, and no margin locked by
  // migration 0013's trigger (the callers give wallets the balances they need).
  w.exec("SET LOCAL app.origin = 'engine'");
  const std::string uid = "('0000000c-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
  const std::string wid = "('0000000e-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid";
  const std::string mid = "('0000000a-0000-4000-8000-' || lpad(to_hex(g % " +
                          std::to_string(markets) + "), 12, '0'))::uuid";
  w.exec(
      "INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name) SELECT "
      "('0000000a-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'S' || g, 'B', 'Q', "
      "'binance' "
      "FROM generate_series(0, " +
      std::to_string(markets - 1) + ") g");
  const std::string series = " FROM generate_series(1, " + std::to_string(n) + ") g";
  w.exec("INSERT INTO users (id, telegram_id) SELECT " + uid + ", g" + series);
  w.exec("INSERT INTO wallets (id, user_id, wallet_address) SELECT " + wid + ", " + uid +
         ", 'W' || lpad(g::text, 40, '0')" + series);
  w.exec(
      "INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, margin) "
      "SELECT "
      "('0000000b-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, " +
      uid + ", " + wid + ", " + mid +
      ", CASE WHEN g % 2 = 0 THEN 'long' ELSE 'short' END::position_side, 1 + g % 5, 1000, 100" +
      series);
  w.exec(
      "INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price) "
      "SELECT "
      "('0000000d-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, " +
      uid + ", " + mid + ", 'price_above', 'greater_than', 1000 + g % 100" + series);
  w.commit();
}

}  // namespace lam::db
