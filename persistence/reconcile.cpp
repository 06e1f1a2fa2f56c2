#include "persistence/reconcile.h"

#include <chrono>
#include <pqxx/pqxx>

namespace lam::db {
namespace {

struct Check {
  Invariant invariant;
  const char* table;
  /// Rows that break it: (row id, what is wrong). Paper orders only where the engine fills: a
  /// live order's fills are the bot's and its venue's business.
  const char* sql;
};

// A balance's moves, one per audit row: the change it records, or after minus before.
constexpr const char* kMoves = R"SQL(
  SELECT a.resource_id AS id,
         COALESCE((a.new_values->>'balance_change')::numeric,
                  (a.new_values->>'balance')::numeric
                    - COALESCE((a.old_values->>'balance')::numeric, 0)) AS dbal,
         COALESCE((a.new_values->>'locked_change')::numeric,
                  (a.new_values->>'locked_balance')::numeric
                    - COALESCE((a.old_values->>'locked_balance')::numeric, 0)) AS dlocked,
         -- where a history starts: the migration's baseline, the bot's insert, the engine's
         -- first fill into a wallet without a row
         a.action = 'balance.baseline'
           OR (a.action = 'balance.set' AND a.old_values IS NULL)
           OR (a.action = 'balance.updated' AND a.old_values IS NULL AND a.new_values ? 'balance')
           AS starts
  FROM audit_logs a WHERE a.resource_type = 'wallet_balance'
)SQL";

const std::vector<Check>& checks() {
  static const std::vector<Check> c = {
      {{"order_filled_size", "an order's filled_size equals the size of its trades"},
       "orders",
       R"SQL(
SELECT o.id::text, format('filled_size %s, trades %s (%s rows)', COALESCE(o.filled_size, 0),
                          COALESCE(t.size, 0), COALESCE(t.n, 0))
FROM orders o LEFT JOIN (SELECT order_id, sum(size) AS size, count(*) AS n FROM trades
                         GROUP BY order_id) t ON t.order_id = o.id
WHERE o.execution = 'paper' AND COALESCE(o.filled_size, 0) <> COALESCE(t.size, 0)
ORDER BY 1)SQL"},
      {{"fill_has_one_trade",
        "a filled paper order has exactly one trade (fills are whole), and a trade's order is "
        "filled"},
       "orders",
       R"SQL(
SELECT o.id::text, format('status %s with %s trade(s)', o.status, COALESCE(t.n, 0))
FROM orders o LEFT JOIN (SELECT order_id, count(*) AS n FROM trades GROUP BY order_id) t
  ON t.order_id = o.id
WHERE o.execution = 'paper'
  AND ((o.status = 'filled' AND COALESCE(t.n, 0) <> 1) OR (o.status <> 'filled' AND t.n > 0))
ORDER BY 1)SQL"},
      {{"fill_audited_once",
        "each trade has exactly one order.filled, one position and one balance audit row (a trade "
        "with none of them, executed before the oldest audit row, is taken for expired history)"},
       "trades",
       R"SQL(
WITH since AS (SELECT min(created_at) AS t FROM audit_logs),
filled AS (SELECT resource_id AS id, count(*) AS n FROM audit_logs
           WHERE action = 'order.filled' GROUP BY resource_id),
by_order AS (SELECT (new_values->>'order_id')::uuid AS id,
                    count(*) FILTER (WHERE resource_type = 'position') AS pos,
                    count(*) FILTER (WHERE resource_type = 'wallet_balance') AS bal
             FROM audit_logs
             WHERE action LIKE 'position.%' OR action = 'balance.updated'
             GROUP BY 1)
SELECT t.id::text, format('order %s: %s order.filled, %s position, %s balance audit row(s)',
                          t.order_id, COALESCE(f.n, 0), COALESCE(b.pos, 0), COALESCE(b.bal, 0))
FROM trades t CROSS JOIN since
LEFT JOIN filled f ON f.id = t.order_id LEFT JOIN by_order b ON b.id = t.order_id
WHERE (COALESCE(f.n, 0) <> 1 OR COALESCE(b.pos, 0) <> 1 OR COALESCE(b.bal, 0) <> 1)
  AND NOT (f.n IS NULL AND b.id IS NULL AND (since.t IS NULL OR t.executed_at < since.t))
ORDER BY 1)SQL"},
      {{"balance_matches_moves",
        "a wallet's balance and locked_balance are the sums of the moves its audit rows record "
        "since its history starts"},
       "wallet_balances",
       nullptr},  // built below: it needs kMoves
      {{"locked_is_open_margin",
        "a wallet's locked_balance in an asset is the margin of its open positions on markets "
        "quoted in that asset"},
       "wallet_balances",
       R"SQL(
WITH margin AS (
  SELECT p.wallet_id, mk.quote_asset AS token, sum(p.margin) AS m
  FROM positions p JOIN markets mk ON mk.id = p.market_id
  WHERE p.status = 'open' GROUP BY 1, 2)
SELECT COALESCE(b.id::text, m.wallet_id::text || '/' || m.token),
       format('wallet %s %s: locked_balance %s, open margin %s', COALESCE(b.wallet_id, m.wallet_id),
              COALESCE(b.token_symbol, m.token), b.locked_balance, COALESCE(m.m, 0))
FROM wallet_balances b FULL JOIN margin m ON m.wallet_id = b.wallet_id AND m.token = b.token_symbol
WHERE COALESCE(b.locked_balance, 0) <> COALESCE(m.m, 0)
ORDER BY 1)SQL"},
      {{"liquidated_unchanged",
        "a liquidated position is not changed afterwards: no trade after it closed"},
       "positions",
       R"SQL(
SELECT p.id::text, format('liquidated at %s; trade %s at %s', p.closed_at, t.id, t.executed_at)
FROM positions p JOIN trades t ON t.position_id = p.id
WHERE p.status = 'liquidated' AND t.executed_at > p.closed_at
ORDER BY 1)SQL"},
      {{"wallet_owner", "an order, a position and a trade move only their own user's wallet"},
       "orders/positions/trades",
       R"SQL(
SELECT 'orders:' || o.id, format('user %s, wallet %s of user %s', o.user_id, o.wallet_id, w.user_id)
FROM orders o JOIN wallets w ON w.id = o.wallet_id WHERE w.user_id <> o.user_id
UNION ALL
SELECT 'positions:' || p.id, format('user %s, wallet %s of user %s', p.user_id, p.wallet_id,
                                    w.user_id)
FROM positions p JOIN wallets w ON w.id = p.wallet_id WHERE w.user_id <> p.user_id
UNION ALL
SELECT 'trades:' || t.id, format('user %s, wallet %s of user %s', t.user_id, t.wallet_id,
                                 w.user_id)
FROM trades t JOIN wallets w ON w.id = t.wallet_id WHERE w.user_id <> t.user_id
ORDER BY 1)SQL"},
      {{"finished_stays_finished",
        "a pending or open paper order shows no fill (a finished order set back is refused)"},
       "orders",
       R"SQL(
SELECT o.id::text, format('status %s, filled_size %s, filled_at %s', o.status, o.filled_size,
                          o.filled_at)
FROM orders o
WHERE o.execution = 'paper' AND o.status IN ('pending', 'open')
  AND (COALESCE(o.filled_size, 0) <> 0 OR o.filled_at IS NOT NULL
       OR EXISTS (SELECT 1 FROM trades t WHERE t.order_id = o.id))
ORDER BY 1)SQL"},
  };
  return c;
}

std::string balance_sql() {
  return std::string("WITH moves AS (") + kMoves + R"SQL(),
ledger AS (SELECT id, sum(dbal) AS bal, sum(dlocked) AS locked, bool_or(starts) AS complete
           FROM moves GROUP BY id)
SELECT b.id::text, format('wallet %s %s: balance %s, moves %s; locked_balance %s, moves %s',
                          b.wallet_id, b.token_symbol, b.balance, l.bal, b.locked_balance,
                          l.locked)
FROM wallet_balances b JOIN ledger l ON l.id = b.id
WHERE l.complete AND (b.balance <> l.bal OR b.locked_balance <> l.locked)
ORDER BY 1)SQL";
}

std::string unchecked_sql() {
  return std::string("WITH moves AS (") + kMoves + R"SQL()
SELECT count(*) FROM wallet_balances b
WHERE NOT EXISTS (SELECT 1 FROM moves m WHERE m.id = b.id AND m.starts))SQL";
}

}  // namespace

const std::vector<Invariant>& invariants() {
  static const std::vector<Invariant> v = [] {
    std::vector<Invariant> out;
    for (const Check& c : checks()) out.push_back(c.invariant);
    return out;
  }();
  return v;
}

ReconcileReport reconcile(pqxx::transaction_base& tx, std::size_t limit) {
  const auto t0 = std::chrono::steady_clock::now();
  ReconcileReport r;
  for (const Check& c : checks()) {
    const std::string sql = c.sql != nullptr ? std::string(c.sql) : balance_sql();
    const pqxx::result rows = tx.exec(sql);
    r.counts.push_back(rows.size());
    for (std::size_t i = 0; i < rows.size() && i < limit; ++i) {
      r.violations.push_back({c.invariant.name, c.table, rows[i][0].c_str(),
                              rows[i][1].is_null() ? "" : rows[i][1].c_str()});
    }
  }
  r.balances_unchecked = tx.exec1(unchecked_sql())[0].as<std::uint64_t>();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace lam::db
