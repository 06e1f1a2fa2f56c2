-- Money integrity (docs/semantics.md, "Integrity"; docs/schema.md, "0012"): what the bot writes can
-- no longer move another user's wallet or bring a finished order back to life. The engine checks the
-- same rules on every row it reads (rows written before this migration included): a row the
-- database now refuses is rejected there with a reason, never armed.

-- 1. A wallet moves only for its owner. An order or a position names its user and its wallet; the
-- pair must be a wallet of that user. NOT VALID: rows written before this migration are not
-- checked here (the engine rejects those: foreign_wallet), every new or changed row is; a wallet
-- cannot be handed to another user while orders or positions of its owner name it.
ALTER TABLE wallets ADD CONSTRAINT wallets_id_user_key UNIQUE (id, user_id);
ALTER TABLE orders ADD CONSTRAINT orders_wallet_owner_fkey FOREIGN KEY (wallet_id, user_id)
  REFERENCES wallets (id, user_id) ON DELETE CASCADE NOT VALID;
ALTER TABLE positions ADD CONSTRAINT positions_wallet_owner_fkey FOREIGN KEY (wallet_id, user_id)
  REFERENCES wallets (id, user_id) ON DELETE CASCADE NOT VALID;

-- The bot's end-user role: every policy of a table naming a wallet checks the wallet's owner too
-- (0001's checked user_id only, so a session could write its own order on another user's wallet).
ALTER POLICY orders_user_policy ON orders
  USING (user_id = current_user_id())
  WITH CHECK (user_id = current_user_id()
              AND wallet_id IN (SELECT id FROM wallets WHERE user_id = current_user_id()));
ALTER POLICY positions_user_policy ON positions
  USING (user_id = current_user_id())
  WITH CHECK (user_id = current_user_id()
              AND wallet_id IN (SELECT id FROM wallets WHERE user_id = current_user_id()));

-- 2. Terminal is terminal. A filled, cancelled, expired or failed order keeps its status: set back
-- to pending or open it would be filled and charged again. A bot that wants to retry writes a new
-- order (a new id: its trade and position ids derive from it). The engine's own transitions only
-- ever move pending / open rows, so this refuses nothing of its own.
CREATE FUNCTION orders_terminal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'order % is %: a finished order cannot change status (write a new order to retry)',
    OLD.id, OLD.status
    USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_terminal_status';
END $$;

CREATE TRIGGER orders_terminal_guard
  BEFORE UPDATE OF status ON orders
  FOR EACH ROW
  WHEN (OLD.status IN ('filled', 'cancelled', 'expired', 'failed')
        AND NEW.status IS DISTINCT FROM OLD.status)
  EXECUTE FUNCTION orders_terminal_guard();
