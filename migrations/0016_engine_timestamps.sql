-- The engine's writes stamp updated_at themselves (docs/schema.md, "0016"; issue 35, the fill
-- writer). The batch statement (persistence/sql/batch.sql) sets updated_at = now() on every row it
-- updates in orders, wallet_balances and alerts, so the plpgsql set_updated_at() trigger on those
-- rows was a second, per-row function call that wrote the same value: on a paper fill, two calls
-- (its order and its balance). Like positions_updated_at since 0002, the three triggers now run
-- only for writes that are not the engine's (app.origin <> 'engine'): the bot's updated_at still
-- moves on its own writes, and the engine's rows show the same now() as before.

DROP TRIGGER orders_updated_at ON orders;
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON orders FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION set_updated_at();

DROP TRIGGER wallet_balances_updated_at ON wallet_balances;
CREATE TRIGGER wallet_balances_updated_at BEFORE UPDATE ON wallet_balances FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION set_updated_at();

DROP TRIGGER alerts_updated_at ON alerts;
CREATE TRIGGER alerts_updated_at BEFORE UPDATE ON alerts FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine') EXECUTE FUNCTION set_updated_at();
