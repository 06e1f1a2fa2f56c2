-- 0001: the Laminator schema as designed in the seed document, made to work as written intends.
-- Fixes against the seed (docs/schema.md lists them): enum types are created before the tables that use
-- them; transactions and audit_logs are really partitioned by month (PARTITION BY RANGE (created_at), primary
-- keys and tx_hash uniqueness include the partition key, a default partition, and a function that creates
-- monthly partitions); the RLS policies get their role and current_user_id(); the encryption helpers take the
-- key from app.encryption_key, use authenticated encryption and come as a pair; user_portfolio aggregates
-- before joining; updated_at columns are maintained by triggers.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Types ----------------------------------------------------------------------------------------------------
CREATE TYPE user_status AS ENUM ('active', 'suspended', 'banned', 'pending_verification');
CREATE TYPE wallet_type AS ENUM ('privy', 'phantom', 'solflare', 'backpack', 'external');
CREATE TYPE chain_type AS ENUM ('solana', 'ethereum', 'polygon');
CREATE TYPE wallet_status AS ENUM ('active', 'inactive', 'suspended', 'pending');
CREATE TYPE market_type AS ENUM ('perpetual', 'spot', 'futures');
CREATE TYPE market_status AS ENUM ('active', 'inactive', 'suspended', 'maintenance');
CREATE TYPE order_type AS ENUM ('market', 'limit', 'stop', 'stop_limit');
CREATE TYPE order_side AS ENUM ('buy', 'sell', 'long', 'short');
CREATE TYPE order_status AS ENUM ('pending', 'open', 'filled', 'partially_filled', 'cancelled', 'expired', 'failed');
CREATE TYPE position_side AS ENUM ('long', 'short');
CREATE TYPE position_status AS ENUM ('open', 'closed', 'liquidated');
CREATE TYPE transaction_type AS ENUM ('deposit', 'withdrawal', 'trade', 'fee', 'reward', 'transfer');
CREATE TYPE transaction_status AS ENUM ('pending', 'confirmed', 'failed', 'cancelled');
CREATE TYPE alert_type AS ENUM ('price_above', 'price_below', 'price_change', 'volume', 'position_pnl');
CREATE TYPE condition_type AS ENUM ('greater_than', 'less_than', 'equals', 'percentage_change');
CREATE TYPE alert_status AS ENUM ('active', 'triggered', 'cancelled', 'expired');

-- Core tables ----------------------------------------------------------------------------------------------
CREATE TABLE users (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  telegram_id BIGINT UNIQUE NOT NULL,
  telegram_username VARCHAR(255),
  telegram_first_name VARCHAR(255),
  telegram_last_name VARCHAR(255),
  privy_user_id VARCHAR(255) UNIQUE,
  status user_status DEFAULT 'active',
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  last_active TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  metadata JSONB DEFAULT '{}',
  CONSTRAINT users_telegram_id_positive CHECK (telegram_id > 0)
);

CREATE TABLE wallets (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  privy_wallet_id VARCHAR(255) UNIQUE,
  wallet_address VARCHAR(255) UNIQUE NOT NULL,
  wallet_type wallet_type DEFAULT 'privy',
  chain_type chain_type DEFAULT 'solana',
  status wallet_status DEFAULT 'active',
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  metadata JSONB DEFAULT '{}',
  CONSTRAINT wallets_address_format CHECK (wallet_address ~ '^[A-Za-z0-9]{32,44}$')
);

CREATE TABLE wallet_balances (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  wallet_id UUID NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  token_symbol VARCHAR(10) NOT NULL,
  token_address VARCHAR(255),
  balance DECIMAL(36, 18) NOT NULL DEFAULT 0,
  locked_balance DECIMAL(36, 18) NOT NULL DEFAULT 0,
  available_balance DECIMAL(36, 18) GENERATED ALWAYS AS (balance - locked_balance) STORED,
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (wallet_id, token_symbol)
);
CREATE INDEX idx_wallet_balances_wallet_token ON wallet_balances(wallet_id, token_symbol);

CREATE TABLE markets (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  symbol VARCHAR(20) NOT NULL,
  base_asset VARCHAR(10) NOT NULL,
  quote_asset VARCHAR(10) NOT NULL,
  dex_name VARCHAR(50) NOT NULL,
  market_type market_type DEFAULT 'perpetual',
  status market_status DEFAULT 'active',
  min_order_size DECIMAL(36, 18),
  max_order_size DECIMAL(36, 18),
  tick_size DECIMAL(36, 18),
  step_size DECIMAL(36, 18),
  max_leverage DECIMAL(8, 2),
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (symbol, dex_name)
);

CREATE TABLE orders (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  wallet_id UUID NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  market_id UUID NOT NULL REFERENCES markets(id),
  order_type order_type NOT NULL,
  side order_side NOT NULL,
  size DECIMAL(36, 18) NOT NULL,
  price DECIMAL(36, 18),
  leverage DECIMAL(8, 2) DEFAULT 1.0,
  status order_status DEFAULT 'pending',
  filled_size DECIMAL(36, 18) DEFAULT 0,
  avg_fill_price DECIMAL(36, 18),
  total_fees DECIMAL(36, 18) DEFAULT 0,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  expires_at TIMESTAMP WITH TIME ZONE,
  CONSTRAINT orders_size_positive CHECK (size > 0),
  CONSTRAINT orders_price_positive CHECK (price IS NULL OR price > 0),
  CONSTRAINT orders_leverage_positive CHECK (leverage > 0)
);

CREATE TABLE positions (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  wallet_id UUID NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  market_id UUID NOT NULL REFERENCES markets(id),
  side position_side NOT NULL,
  size DECIMAL(36, 18) NOT NULL,
  entry_price DECIMAL(36, 18) NOT NULL,
  current_price DECIMAL(36, 18),
  leverage DECIMAL(8, 2) DEFAULT 1.0,
  margin DECIMAL(36, 18) NOT NULL,
  unrealized_pnl DECIMAL(36, 18) DEFAULT 0,
  realized_pnl DECIMAL(36, 18) DEFAULT 0,
  status position_status DEFAULT 'open',
  opened_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  closed_at TIMESTAMP WITH TIME ZONE,
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (user_id, market_id, side)  -- one position per market per side
);

-- Partitioned by month: the partition key must be part of every unique constraint.
CREATE TABLE transactions (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  wallet_id UUID NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  tx_hash VARCHAR(255),
  tx_type transaction_type NOT NULL,
  status transaction_status DEFAULT 'pending',
  amount DECIMAL(36, 18),
  token_symbol VARCHAR(10),
  from_address VARCHAR(255),
  to_address VARCHAR(255),
  gas_fee DECIMAL(36, 18),
  block_number BIGINT,
  block_timestamp TIMESTAMP WITH TIME ZONE,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  metadata JSONB DEFAULT '{}',
  PRIMARY KEY (id, created_at),
  UNIQUE (tx_hash, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE transactions_default PARTITION OF transactions DEFAULT;

CREATE TABLE alerts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  market_id UUID REFERENCES markets(id),
  alert_type alert_type NOT NULL,
  condition_type condition_type NOT NULL,
  target_price DECIMAL(36, 18),
  target_percentage DECIMAL(8, 4),
  message TEXT,
  status alert_status DEFAULT 'active',
  triggered_at TIMESTAMP WITH TIME ZONE,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  CONSTRAINT alerts_price_positive CHECK (target_price IS NULL OR target_price > 0)
);

CREATE TABLE user_settings (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  setting_key VARCHAR(100) NOT NULL,
  setting_value JSONB NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (user_id, setting_key)
);

CREATE TABLE audit_logs (
  id UUID NOT NULL DEFAULT gen_random_uuid(),
  user_id UUID REFERENCES users(id) ON DELETE SET NULL,
  action VARCHAR(100) NOT NULL,
  resource_type VARCHAR(50) NOT NULL,
  resource_id UUID,
  old_values JSONB,
  new_values JSONB,
  ip_address INET,
  user_agent TEXT,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE audit_logs_default PARTITION OF audit_logs DEFAULT;
CREATE INDEX idx_audit_logs_user_action ON audit_logs(user_id, action);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at DESC);

-- Indexes from the seed --------------------------------------------------------------------------------------
CREATE INDEX idx_users_telegram_id ON users(telegram_id);
CREATE INDEX idx_users_privy_user_id ON users(privy_user_id);
CREATE INDEX idx_wallets_user_id ON wallets(user_id);
CREATE INDEX idx_wallets_address ON wallets(wallet_address);
CREATE INDEX idx_orders_user_status ON orders(user_id, status);
CREATE INDEX idx_orders_market_status ON orders(market_id, status);
CREATE INDEX idx_positions_user_market ON positions(user_id, market_id);
CREATE INDEX idx_wallet_balances_wallet ON wallet_balances(wallet_id);
CREATE INDEX idx_wallet_balances_updated ON wallet_balances(updated_at DESC);
CREATE INDEX idx_transactions_user_created ON transactions(user_id, created_at DESC);
CREATE INDEX idx_transactions_wallet_type ON transactions(wallet_id, tx_type);

-- Monthly partitions -------------------------------------------------------------------------------------
-- Creates <parent>_yYYYYmMM for the months [from_month, from_month + months_ahead]. Rows that already sit
-- in the default partition for such a month are moved into the new partition, so attaching never fails.
-- Returns how many partitions it created. `laminator migrate` calls it for both tables after migrating.
CREATE FUNCTION create_monthly_partitions(parent regclass, months_ahead integer DEFAULT 3,
                                          from_month date DEFAULT date_trunc('month', now())::date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  base text := (SELECT relname FROM pg_class WHERE oid = parent);
  lo date;
  hi date;
  part text;
  created integer := 0;
BEGIN
  IF months_ahead < 0 THEN
    RAISE EXCEPTION 'months_ahead must be >= 0';
  END IF;
  FOR i IN 0..months_ahead LOOP
    lo := (date_trunc('month', from_month) + make_interval(months => i))::date;
    hi := (lo + interval '1 month')::date;
    part := format('%s_y%sm%s', base, to_char(lo, 'YYYY'), to_char(lo, 'MM'));
    CONTINUE WHEN to_regclass(part) IS NOT NULL;
    EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE created_at >= %L AND created_at < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', base || '_default', lo, hi, part);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    created := created + 1;
  END LOOP;
  RETURN created;
END $$;

-- The seed's example partitions.
SELECT create_monthly_partitions('transactions', 0, '2024-01-01');
SELECT create_monthly_partitions('audit_logs', 0, '2024-01-01');

-- updated_at maintenance ----------------------------------------------------------------------------------
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER users_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER wallets_updated_at BEFORE UPDATE ON wallets FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER wallet_balances_updated_at BEFORE UPDATE ON wallet_balances FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER markets_updated_at BEFORE UPDATE ON markets FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER positions_updated_at BEFORE UPDATE ON positions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER transactions_updated_at BEFORE UPDATE ON transactions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_settings_updated_at BEFORE UPDATE ON user_settings FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Row-level security -----------------------------------------------------------------------------------
-- Sessions of the bot's end-user role set app.current_user_id; table owners (the engine) bypass RLS.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated_user') THEN
    CREATE ROLE authenticated_user NOLOGIN;
  END IF;
END $$;

CREATE FUNCTION current_user_id() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT NULLIF(current_setting('app.current_user_id', true), '')::uuid
$$;

ALTER TABLE wallets ENABLE ROW LEVEL SECURITY;
ALTER TABLE wallet_balances ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE positions ENABLE ROW LEVEL SECURITY;

CREATE POLICY wallets_user_policy ON wallets FOR ALL TO authenticated_user
  USING (user_id = current_user_id()) WITH CHECK (user_id = current_user_id());
CREATE POLICY wallet_balances_user_policy ON wallet_balances FOR ALL TO authenticated_user
  USING (wallet_id IN (SELECT id FROM wallets WHERE user_id = current_user_id()))
  WITH CHECK (wallet_id IN (SELECT id FROM wallets WHERE user_id = current_user_id()));
CREATE POLICY orders_user_policy ON orders FOR ALL TO authenticated_user
  USING (user_id = current_user_id()) WITH CHECK (user_id = current_user_id());
CREATE POLICY positions_user_policy ON positions FOR ALL TO authenticated_user
  USING (user_id = current_user_id()) WITH CHECK (user_id = current_user_id());

GRANT USAGE ON SCHEMA public TO authenticated_user;
GRANT SELECT ON markets TO authenticated_user;
GRANT SELECT, INSERT, UPDATE, DELETE ON wallets, wallet_balances, orders, positions TO authenticated_user;

-- Encryption of sensitive fields ---------------------------------------------------------------------------
-- OpenPGP symmetric encryption (AES-256, salted S2K, integrity check) rather than the seed's raw AES-ECB,
-- which leaks equal plaintexts and detects no tampering. The key comes from the session setting
-- app.encryption_key; a missing key is an error, never a silent empty key.
CREATE FUNCTION encrypt_sensitive_data(data text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  k text := current_setting('app.encryption_key', true);
BEGIN
  IF k IS NULL OR k = '' THEN
    RAISE EXCEPTION 'app.encryption_key is not set';
  END IF;
  RETURN encode(pgp_sym_encrypt(data, k, 'cipher-algo=aes256'), 'base64');
END $$;

CREATE FUNCTION decrypt_sensitive_data(data text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  k text := current_setting('app.encryption_key', true);
BEGIN
  IF k IS NULL OR k = '' THEN
    RAISE EXCEPTION 'app.encryption_key is not set';
  END IF;
  RETURN pgp_sym_decrypt(decode(data, 'base64'), k);
END $$;

-- Views --------------------------------------------------------------------------------------------------
-- One row per (active user, token): the user's balance of that token over all wallets, and the user's open
-- positions (count and total uPnL, repeated on each token row). Balances and positions are aggregated
-- separately before the join, so neither multiplies the other.
CREATE VIEW user_portfolio AS
WITH balances AS (
  SELECT w.user_id, wb.token_symbol, SUM(wb.available_balance) AS total_balance
  FROM wallets w
  JOIN wallet_balances wb ON wb.wallet_id = w.id
  GROUP BY w.user_id, wb.token_symbol
), open_positions AS (
  SELECT p.user_id, COUNT(*) AS open_positions, SUM(p.unrealized_pnl) AS total_unrealized_pnl
  FROM positions p
  WHERE p.status = 'open'
  GROUP BY p.user_id
)
SELECT u.id AS user_id,
       u.telegram_username,
       b.token_symbol,
       b.total_balance,
       COALESCE(op.open_positions, 0) AS open_positions,
       COALESCE(op.total_unrealized_pnl, 0) AS total_unrealized_pnl
FROM users u
JOIN balances b ON b.user_id = u.id
LEFT JOIN open_positions op ON op.user_id = u.id
WHERE u.status = 'active';

-- Per day (in the session's time zone): orders placed, orders filled, filled volume and the average fee
-- of filled orders (the seed averaged zeros in for unfilled orders).
CREATE VIEW trading_stats AS
SELECT DATE_TRUNC('day', o.created_at) AS trading_date,
       COUNT(*) AS total_orders,
       COUNT(*) FILTER (WHERE o.status = 'filled') AS filled_orders,
       COALESCE(SUM(o.size * o.avg_fill_price) FILTER (WHERE o.status = 'filled'), 0) AS total_volume,
       AVG(o.total_fees) FILTER (WHERE o.status = 'filled') AS avg_fees
FROM orders o
GROUP BY DATE_TRUNC('day', o.created_at)
ORDER BY trading_date DESC;
