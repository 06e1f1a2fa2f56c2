-- Every move of a balance has its audit row (docs/schema.md, "0014" and "Invariants of the books"), so
-- that `laminator reconcile` can check that a wallet's balance is its starting balance plus the moves its
-- audit rows record. The engine's fills and liquidations already write theirs in the batch statement
-- (a fill's `balance.updated` holds the balance before and after, a liquidation's the change). What the
-- bot writes to wallet_balances (a deposit, a withdrawal, a balance row created, the margin lock of its
-- own positions, 0013) had none: now each such write is a `balance.set` row with the values before and
-- after and the change (`balance_change`, `locked_change`). Rows that exist when this migration runs
-- get a `balance.baseline` row: their history starts here.

CREATE FUNCTION wallet_balances_audit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rec wallet_balances%ROWTYPE;
  owner uuid;
BEGIN
  IF TG_OP = 'DELETE' THEN rec := OLD; ELSE rec := NEW; END IF;
  SELECT user_id INTO owner FROM wallets WHERE id = rec.wallet_id;
  INSERT INTO audit_logs (user_id, action, resource_type, resource_id, old_values, new_values)
  VALUES (
    owner, 'balance.set', 'wallet_balance', rec.id,
    CASE WHEN TG_OP <> 'INSERT' THEN
      jsonb_build_object('token_symbol', OLD.token_symbol, 'balance', OLD.balance,
                         'locked_balance', OLD.locked_balance) END,
    jsonb_build_object(
      'token_symbol', rec.token_symbol,
      'balance', CASE WHEN TG_OP <> 'DELETE' THEN NEW.balance END,
      'locked_balance', CASE WHEN TG_OP <> 'DELETE' THEN NEW.locked_balance END,
      'balance_change', CASE TG_OP WHEN 'INSERT' THEN NEW.balance WHEN 'DELETE' THEN -OLD.balance
                                   ELSE NEW.balance - OLD.balance END,
      'locked_change', CASE TG_OP WHEN 'INSERT' THEN NEW.locked_balance
                                  WHEN 'DELETE' THEN -OLD.locked_balance
                                  ELSE NEW.locked_balance - OLD.locked_balance END));
  RETURN NULL;
END $$;

CREATE TRIGGER wallet_balances_audit
  AFTER INSERT OR UPDATE OF balance, locked_balance OR DELETE ON wallet_balances
  FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine')
  EXECUTE FUNCTION wallet_balances_audit();

INSERT INTO audit_logs (user_id, action, resource_type, resource_id, old_values, new_values)
SELECT w.user_id, 'balance.baseline', 'wallet_balance', b.id, NULL,
       jsonb_build_object('token_symbol', b.token_symbol, 'balance', b.balance,
                          'locked_balance', b.locked_balance, 'balance_change', b.balance,
                          'locked_change', b.locked_balance)
FROM wallet_balances b JOIN wallets w ON w.id = b.wallet_id;
