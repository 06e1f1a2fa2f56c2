-- 0005: orders the engine triggers and fills (docs/semantics.md, "Orders"; docs/schema.md, "0005").

CREATE TYPE order_execution AS ENUM ('paper', 'live');
CREATE TYPE trigger_source AS ENUM ('mark', 'last');
CREATE TYPE trade_liquidity AS ENUM ('maker', 'taker');

-- What the engine needs on an order: the trigger of stop / stop_limit (price stays the limit price),
-- who executes it, why it ended, and what its fill made.
ALTER TABLE orders
  ADD COLUMN trigger_price DECIMAL(36, 18),
  ADD COLUMN trigger_source trigger_source,  -- NULL: the market's reference price
  ADD COLUMN triggered_at TIMESTAMP WITH TIME ZONE,
  ADD COLUMN execution order_execution NOT NULL DEFAULT 'paper',
  ADD COLUMN status_reason TEXT,  -- no_position, position_closed, insufficient_margin, invalid_size, ...
  ADD COLUMN position_id UUID REFERENCES positions(id),
  ADD COLUMN filled_at TIMESTAMP WITH TIME ZONE,
  ADD CONSTRAINT orders_trigger_positive CHECK (trigger_price IS NULL OR trigger_price > 0),
  ADD CONSTRAINT orders_filled_size_range CHECK (filled_size >= 0 AND filled_size <= size);

-- Hedge mode: one OPEN position per user, market and side. The seed's UNIQUE over every status would
-- forbid ever reopening a side once its position closed; a reopened side is a new row.
ALTER TABLE positions DROP CONSTRAINT positions_user_id_market_id_side_key;
CREATE UNIQUE INDEX uq_positions_open_side ON positions(user_id, market_id, side) WHERE status = 'open';

-- One row per fill (the design's "Trades"). `realized_pnl` is the fill's change of its position's
-- realized PnL (-fee when it opens or increases). Written by the engine in the same statement as the
-- order, position and balance it moves; its id is derived from the order's, so a replayed fill is a
-- conflict, never a second trade.
CREATE TABLE trades (
  id UUID PRIMARY KEY,
  order_id UUID NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  position_id UUID NOT NULL REFERENCES positions(id),
  user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  wallet_id UUID NOT NULL REFERENCES wallets(id) ON DELETE CASCADE,
  market_id UUID NOT NULL REFERENCES markets(id),
  side order_side NOT NULL,
  size DECIMAL(36, 18) NOT NULL CHECK (size > 0),
  price DECIMAL(36, 18) NOT NULL CHECK (price > 0),
  fee DECIMAL(36, 18) NOT NULL,
  liquidity trade_liquidity NOT NULL,
  realized_pnl DECIMAL(36, 18) NOT NULL,
  executed_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX idx_trades_user_executed ON trades(user_id, executed_at DESC);
CREATE INDEX idx_trades_order ON trades(order_id);
CREATE INDEX idx_trades_position ON trades(position_id);
ALTER TABLE trades ENABLE ROW LEVEL SECURITY;
CREATE POLICY trades_user_policy ON trades FOR SELECT TO authenticated_user
  USING (user_id = current_user_id());
GRANT SELECT ON trades TO authenticated_user;  -- the engine writes trades; the bot reads them

-- What the engine loads (pending and open orders, by market) and what the bot reads (a user's orders
-- by recency, an order's position).
CREATE INDEX idx_orders_active_market ON orders(market_id) WHERE status IN ('pending', 'open');
CREATE INDEX idx_orders_user_created ON orders(user_id, created_at DESC);
CREATE INDEX idx_orders_position ON orders(position_id) WHERE position_id IS NOT NULL;
CREATE INDEX idx_positions_user_status ON positions(user_id, status);

-- Wallet balances change by the bot (deposits, withdrawals) as well as by fills: the engine follows
-- them like the other tables it acts on.
CREATE TRIGGER wallet_balances_notify AFTER INSERT OR UPDATE OR DELETE ON wallet_balances FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
