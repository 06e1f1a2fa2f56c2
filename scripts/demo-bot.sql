-- The demo's "bot": what the Telegram bot does to the database, one step a second (scripts/demo runs
-- `SELECT demo_bot_step(n)`). Each step, for every market with a price: two users set alerts a few
-- basis points either side of it (they fire within seconds as the mock's prices walk); one of the
-- bot's alerts is edited and one cancelled; every third step a user sends a market order (paper fill:
-- it opens, grows, shrinks or closes a position); every fifth, a resting limit order, which is moved
-- and, after 20 s, cancelled. Everything goes through plain SQL, so the change
-- listener carries it to the engine as it would the real bot's writes.
CREATE OR REPLACE FUNCTION demo_bot_step(step int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  mk record;
  u int;
  uid uuid;
BEGIN
  FOR mk IN SELECT m.id, m.symbol, m.dex_name, mm.price
            FROM markets m JOIN market_marks mm ON mm.market_id = m.id ORDER BY m.id LOOP
    -- Demo user 1 (whose events scripts/demo shows by default) trades Binance's BTC.
    u := CASE WHEN mk.dex_name = 'binance' THEN 1
              ELSE 1 + (step * 37 + (hashtext(mk.id::text) & 1023)) % 2000 END;
    uid := ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid;
    INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price, message)
    VALUES (gen_random_uuid(), uid, mk.id, 'price_above', 'greater_than',
            round(mk.price * 1.0004, 2), 'demo bot'),
           (gen_random_uuid(), uid, mk.id, 'price_below', 'less_than',
            round(mk.price * 0.9996, 2), 'demo bot');
    -- A resting limit order 2 % away from the price, moved and later cancelled by its user.
    IF step % 5 = 0 THEN
      INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price, leverage)
      VALUES (gen_random_uuid(), uid, ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
              mk.id, 'limit', 'long', 0.01, round(mk.price * 0.98, 2), 10);
    END IF;
    IF step % 3 = 0 THEN
      INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, leverage)
      VALUES (gen_random_uuid(), uid, ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
              mk.id, 'market', (CASE WHEN step % 2 = 0 THEN 'long' ELSE 'short' END)::order_side,
              0.01, 10);
    END IF;
  END LOOP;
  -- Users change their minds: one of the bot's resting limit orders moves closer, the oldest is
-- cancelled; one of the bot's armed alerts moves, one is cancelled.
  UPDATE orders o SET price = round(o.price * 1.001, 2)
  WHERE o.id = (SELECT id FROM orders WHERE order_type = 'limit' AND status IN ('pending', 'open')
                AND created_at > now() - interval '1 hour' ORDER BY created_at DESC LIMIT 1);
  UPDATE orders o SET status = 'cancelled'
  WHERE o.id = (SELECT id FROM orders WHERE order_type = 'limit' AND status IN ('pending', 'open')
                AND created_at < now() - interval '20 seconds' ORDER BY created_at LIMIT 1);
  UPDATE alerts a SET target_price = round(a.target_price * 0.9998, 2)
  WHERE a.id = (SELECT id FROM alerts WHERE status = 'active' AND message = 'demo bot'
                ORDER BY created_at DESC OFFSET 3 LIMIT 1);
  UPDATE alerts a SET status = 'cancelled'
  WHERE a.id = (SELECT id FROM alerts WHERE status = 'active' AND message = 'demo bot'
                ORDER BY created_at DESC OFFSET 5 LIMIT 1);
END $$;
