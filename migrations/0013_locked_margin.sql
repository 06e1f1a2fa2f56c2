-- The margin of a position is locked, whoever writes it (docs/semantics.md, "Integrity"; docs/schema.md,
-- "0013"). The rule: a wallet's locked_balance in an asset is the margin of its open positions on
-- markets quoted in that asset. The engine keeps it for its own fills and liquidations (by deltas, in
-- the batch statement); a position the bot writes (an import from a venue, the demo's seed) used to
-- lock nothing, so closing it released margin never locked and locked_balance went negative. Now the
-- database locks and releases the margin of the bot's position writes itself, in the same statement:
-- an open position inserted locks its margin, a margin changed or moved to another wallet or market
-- moves the lock, a position closed, liquidated or deleted while open releases it. A wallet without a
-- balance row in the asset gets one (balance 0). The engine's own writes (app.origin = 'engine') are
-- left alone: it moves the lock with the fill, in the same statement. The change reaches the engine
-- through the change capture of wallet_balances like any write of the bot.

CREATE FUNCTION positions_lock_margin() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  old_lock numeric := 0;
  new_lock numeric := 0;
  old_asset text;
  new_asset text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'open' AND OLD.margin <> 0 THEN
    old_lock := OLD.margin;
    SELECT quote_asset INTO old_asset FROM markets WHERE id = OLD.market_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'open' AND NEW.margin <> 0 THEN
    new_lock := NEW.margin;
    SELECT quote_asset INTO new_asset FROM markets WHERE id = NEW.market_id;
  END IF;
  IF TG_OP = 'UPDATE' AND old_lock <> 0 AND new_lock <> 0 AND OLD.wallet_id = NEW.wallet_id
     AND old_asset IS NOT DISTINCT FROM new_asset THEN
    new_lock := new_lock - old_lock;  -- one row moves by the difference
    old_lock := 0;
  END IF;
  IF old_lock <> 0 AND old_asset IS NOT NULL THEN
    UPDATE wallet_balances SET locked_balance = locked_balance - old_lock
    WHERE wallet_id = OLD.wallet_id AND token_symbol = old_asset;
  END IF;
  IF new_lock <> 0 AND new_asset IS NOT NULL THEN
    INSERT INTO wallet_balances (wallet_id, token_symbol, balance, locked_balance)
    VALUES (NEW.wallet_id, new_asset, 0, new_lock)
    ON CONFLICT (wallet_id, token_symbol) DO UPDATE
      SET locked_balance = wallet_balances.locked_balance + EXCLUDED.locked_balance;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER positions_lock_margin
  AFTER INSERT OR UPDATE OF status, margin, wallet_id, market_id OR DELETE ON positions
  FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine')
  EXECUTE FUNCTION positions_lock_margin();
