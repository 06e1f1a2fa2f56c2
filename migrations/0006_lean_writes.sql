-- 0006: checks and indexes that every engine write paid for and that guard nothing the schema does not
-- guard already (docs/schema.md, "What a fill costs"). Measured on a 1,000-fill batch: each foreign-key
-- check is an index probe plus a FOR KEY SHARE row lock, ~5 ms per 1,000 rows.

-- trades: user, wallet and market are the order's, copied from the order row in the same statement
-- (only the engine writes trades). The order's own foreign keys hold them, and deleting a user or a
-- wallet deletes its orders, which deletes their trades (trades.order_id ON DELETE CASCADE). Three
-- checks per fill.
ALTER TABLE trades
  DROP CONSTRAINT IF EXISTS trades_user_id_fkey,
  DROP CONSTRAINT IF EXISTS trades_wallet_id_fkey,
  DROP CONSTRAINT IF EXISTS trades_market_id_fkey;

-- audit_logs is history: a row says who the change was for, and deleting the user must not rewrite it
-- (the seed's ON DELETE SET NULL did). user_id stays a plain column, indexed. Three checks per fill
-- (the order's, the position's and the balance's rows).
ALTER TABLE audit_logs DROP CONSTRAINT IF EXISTS audit_logs_user_id_fkey;

-- The seed indexed wallet_balances (wallet_id, token_symbol) three times: the UNIQUE constraint, an
-- identical index and its prefix. Every balance row the engine inserts maintained all three.
DROP INDEX IF EXISTS idx_wallet_balances_wallet_token;
DROP INDEX IF EXISTS idx_wallet_balances_wallet;
