-- 0002: what the engine needs on top of the seed schema (docs/schema.md, "Engine additions").

-- Markets: where the reference price comes from, the maintenance margin rate, fees.
CREATE TYPE price_source AS ENUM ('mark', 'last', 'mid');
ALTER TABLE markets
  ADD COLUMN price_source price_source,  -- NULL: 'mark' for perpetual/futures, 'last' for spot
  ADD COLUMN maintenance_margin_rate DECIMAL(10, 8) NOT NULL DEFAULT 0.005,
  ADD COLUMN maker_fee_rate DECIMAL(10, 8) NOT NULL DEFAULT 0.0002,
  ADD COLUMN taker_fee_rate DECIMAL(10, 8) NOT NULL DEFAULT 0.0005,
  ADD CONSTRAINT markets_mmr_range CHECK (maintenance_margin_rate >= 0 AND maintenance_margin_rate < 1),
  ADD CONSTRAINT markets_fee_range CHECK (maker_fee_rate > -1 AND maker_fee_rate < 1 AND taker_fee_rate > -1 AND taker_fee_rate < 1);

-- Alerts: volume and PnL targets, the price_change anchor (written back by the engine), expiry, metadata
-- (volume: {"window_seconds": N}), and updated_at so that a resync can tell newer rows from older ones.
ALTER TABLE alerts
  ADD COLUMN target_value DECIMAL(36, 18),
  ADD COLUMN anchor_price DECIMAL(36, 18),
  ADD COLUMN expires_at TIMESTAMP WITH TIME ZONE,
  ADD COLUMN metadata JSONB NOT NULL DEFAULT '{}',
  ADD COLUMN updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  ADD CONSTRAINT alerts_anchor_positive CHECK (anchor_price IS NULL OR anchor_price > 0);
CREATE TRIGGER alerts_updated_at BEFORE UPDATE ON alerts FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The engine rewrites current_price/unrealized_pnl of open positions continuously: leave room in every page
-- so those updates stay HOT (no index writes), and let the engine's own writes skip the plpgsql
-- updated_at trigger (the writer sets updated_at itself).
ALTER TABLE positions SET (fillfactor = 90);
DROP TRIGGER positions_updated_at ON positions;
CREATE TRIGGER positions_updated_at BEFORE UPDATE ON positions FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION set_updated_at();

-- What the engine loads at start-up and after a resync.
CREATE INDEX idx_alerts_active_market ON alerts(market_id) WHERE status = 'active';
CREATE INDEX idx_positions_open_market ON positions(market_id) WHERE status = 'open';

-- Change capture: every change made by anyone but the engine notifies channel laminator_changes with a
-- small payload {"t":table,"op":"INSERT|UPDATE|DELETE","id":uuid}. The engine's sessions run
-- SET app.origin = 'engine', so its own writes never come back as work (and never take NOTIFY's
-- cluster-wide commit lock).
CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rec_id uuid;
BEGIN
  IF TG_OP = 'DELETE' THEN
    rec_id := OLD.id;
  ELSE
    rec_id := NEW.id;
  END IF;
  PERFORM pg_notify('laminator_changes',
                    json_build_object('t', TG_TABLE_NAME, 'op', TG_OP, 'id', rec_id)::text);
  RETURN NULL;
END $$;

CREATE TRIGGER markets_notify AFTER INSERT OR UPDATE OR DELETE ON markets FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
CREATE TRIGGER positions_notify AFTER INSERT OR UPDATE OR DELETE ON positions FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
CREATE TRIGGER alerts_notify AFTER INSERT OR UPDATE OR DELETE ON alerts FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
CREATE TRIGGER orders_notify AFTER INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION notify_change();
