-- The demo dataset for `scripts/demo` (and the end-to-end benchmark's shape): the five markets the
-- bundled captures (data/captures/*.lcap) quote, 2,000 users with 5 open positions each (10k) and 50
-- price alerts each (100k), wallets with 100,000 USD, and 2,000 paper orders of every type. Prices sit
-- around each capture's price band, so a replay loop fires some alerts, liquidates some positions and
-- fills some orders while the rest stay armed. Deterministic ids: users 0000000c-…-<n>, markets
-- 0000000a-…-<m>, positions 0000000b-…, alerts 0000000d-…, orders 0000000f-….
BEGIN;
SET LOCAL app.origin = 'engine';  -- bulk load: no change notifications

CREATE TEMP TABLE demo_market (m int, symbol text, dex text, mtype market_type, src price_source,
                               center numeric, band numeric) ON COMMIT DROP;
INSERT INTO demo_market VALUES
  (1, 'BTCUSDT',       'binance',     'perpetual', 'mark', 79893.21, 0.25),
  (2, 'ETHUSDT',       'bybit',       'perpetual', 'mark',  3152.54, 0.32),
  (3, 'SOL-USDT-SWAP', 'okx',         'perpetual', 'mark',   183.32, 0.34),
  (4, 'BTC',           'hyperliquid', 'perpetual', 'mid',  79893.21, 0.25),
  (5, 'BTC-USD',       'coinbase',    'spot',      'last', 79893.25, 0.20);

INSERT INTO markets (id, symbol, base_asset, quote_asset, dex_name, market_type, price_source)
SELECT ('0000000a-0000-4000-8000-' || lpad(to_hex(m), 12, '0'))::uuid, symbol,
       split_part(replace(symbol, 'USDT', '-USDT'), '-', 1), 'USD', dex, mtype, src
FROM demo_market;

INSERT INTO users (id, telegram_id, telegram_username)
SELECT ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, 700000 + u, 'demo' || u
FROM generate_series(1, 2000) u;

INSERT INTO wallets (id, user_id, wallet_address)
SELECT ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       'Demo' || lpad(u::text, 40, '0')
FROM generate_series(1, 2000) u;

-- Every wallet's USD, before the positions: inserting an open position locks its margin in the
-- wallet's balance of the market's quote asset (migration 0013), so locked_balance starts as the
-- margin of the wallet's positions and closing one releases what it locked. These two are written
-- as the bot writes them (not as the engine's bulk load): the margin lock and the balances' audit
-- rows (0014) are the books' history, which `laminator reconcile` checks.
SET LOCAL app.origin = 'bot';
INSERT INTO wallet_balances (wallet_id, token_symbol, balance)
SELECT ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid, 'USD', 100000
FROM generate_series(1, 2000) u;

-- Positions: entry at the band's centre; margin puts the liquidation price 0..4 bands away, so
-- about one in eight is liquidated when the replay reaches the band's edge.
INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, leverage, margin)
SELECT ('0000000b-0000-4000-8000-' || lpad(to_hex(u * 10 + d.m), 12, '0'))::uuid,
       ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000a-0000-4000-8000-' || lpad(to_hex(d.m), 12, '0'))::uuid,
       CASE WHEN u % 2 = 0 THEN 'long' ELSE 'short' END::position_side,
       1, d.center, 50,
       round(0.005 * d.center + d.band * 4 * ((u * 7919) % 1000) / 1000.0, 8)
FROM generate_series(1, 2000) u CROSS JOIN demo_market d;

SET LOCAL app.origin = 'engine';  -- the rest: bulk, no change notifications

-- Alerts: price_above targets from just below the centre to two bands above it, price_below the
-- mirror image, so most fire only as the replay moves through its band (each fires once).
INSERT INTO alerts (id, user_id, market_id, alert_type, condition_type, target_price, message)
SELECT ('0000000d-0000-4000-8000-' || lpad(to_hex(u * 100 + k), 12, '0'))::uuid,
       ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000a-0000-4000-8000-' || lpad(to_hex(d.m), 12, '0'))::uuid,
       CASE WHEN k % 2 = 0 THEN 'price_above' ELSE 'price_below' END::alert_type,
       CASE WHEN k % 2 = 0 THEN 'greater_than' ELSE 'less_than' END::condition_type,
       round(d.center + CASE WHEN k % 2 = 0 THEN 1 ELSE -1 END
                        * d.band * 2 * (((u * 31 + k * 17) % 1100) - 100) / 1000.0, 8),
       'demo alert'
FROM generate_series(1, 2000) u CROSS JOIN generate_series(1, 50) k
JOIN demo_market d ON d.m = 1 + (k % 5);

-- Paper orders of every type for users 1..500 on one market each, and the wallets they draw on:
-- a stop-loss on the seeded position (stop sell for longs, stop_limit buy for shorts), a limit
-- entry on each side of the band (they rest, then fill as the replay crosses them; the short one
-- expires after an hour), and a small market order that fills at the first quote.

INSERT INTO orders (id, user_id, wallet_id, market_id, order_type, side, size, price,
                    trigger_price, leverage, expires_at)
SELECT ('0000000f-0000-4000-8000-' || lpad(to_hex(u * 10 + k), 12, '0'))::uuid,
       ('0000000c-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000e-0000-4000-8000-' || lpad(to_hex(u), 12, '0'))::uuid,
       ('0000000a-0000-4000-8000-' || lpad(to_hex(d.m), 12, '0'))::uuid,
       (ARRAY['stop', 'stop_limit', 'limit', 'limit', 'market'])[k]::order_type,
       (CASE k WHEN 1 THEN 'sell' WHEN 2 THEN 'buy' WHEN 3 THEN 'long' WHEN 4 THEN 'short'
               ELSE 'long' END)::order_side,
       CASE WHEN k <= 2 THEN 1 WHEN k <= 4 THEN 0.1 ELSE 0.01 END,
       CASE k WHEN 2 THEN round(d.center + d.band * ((u % 10) + 3) / 10, 2)
              WHEN 3 THEN round(d.center - d.band * ((u % 10) + 1) / 10, 2)
              WHEN 4 THEN round(d.center + d.band * ((u % 10) + 1) / 10, 2) END,
       CASE k WHEN 1 THEN round(d.center - d.band * ((u % 10) + 1) / 10, 2)
              WHEN 2 THEN round(d.center + d.band * ((u % 10) + 1) / 10, 2) END,
       10,
       CASE WHEN k = 4 THEN now() + interval '1 hour' END
FROM generate_series(1, 500) u
CROSS JOIN generate_series(1, 5) k
JOIN demo_market d ON d.m = 1 + (u % 5)
WHERE (k <> 1 OR u % 2 = 0) AND (k <> 2 OR u % 2 = 1);
COMMIT;
ANALYZE;
