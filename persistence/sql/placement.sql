-- The orders the engine places (WriteKind::order_placed; docs/semantics.md, "The users' own
-- settings"): the protective stop of a user's risk_management.stop_loss_percentage on a position a
-- paper fill opened, an ordinary reduce-only stop row the bot can see, move and cancel. Run before
-- the batch statement (persistence/sql/batch.sql) in the same transaction, so that the batch's later
-- transitions of these orders (triggered, filled, cancelled in the same flush) find their rows.
-- The row takes its user, wallet, market and leverage from the order whose fill opened the position
-- (a long's stop sells, a short's buys), and is made once: a retried batch, a replay or a restart
-- meets the id (derived from that order's) and changes nothing; a row the bot moved or cancelled
-- stays as the bot left it. The opening order cancelled, expired or failed (the bot's cancel beat the
-- engine's fill): no stop.
WITH s AS (
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::numeric[], $5::timestamptz[])
           AS t(id, opened_by, trigger_price, size, at)
), placed AS (
  INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, leverage, status,
                      trigger_price, execution, created_at, updated_at)
  SELECT s.id, r.user_id, r.wallet_id, r.market_id, 'stop',
         CASE WHEN r.side = 'long' THEN 'sell' ELSE 'buy' END::order_side, s.size, r.leverage,
         'pending', s.trigger_price, 'paper', s.at, now()
  FROM s JOIN orders r ON r.id = s.opened_by
  WHERE r.status IN ('pending', 'open', 'filled') AND r.side IN ('long', 'short')
  ON CONFLICT (id) DO NOTHING
  RETURNING id, user_id, side, size, trigger_price, leverage
), audited AS (
  INSERT INTO audit_logs (user_id, action, resource_type, resource_id, old_values, new_values)
  SELECT x.user_id, 'order.placed', 'order', x.id, NULL,
         jsonb_build_object('order_type', 'stop', 'side', x.side, 'size', x.size,
                            'trigger_price', x.trigger_price, 'leverage', x.leverage,
                            'status', 'pending', 'opened_by', s.opened_by)
  FROM placed x JOIN s ON s.id = x.id
)
SELECT count(*) FROM placed
