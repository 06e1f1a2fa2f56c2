-- 0007: marks per market, not per position (docs/schema.md, "Marks"). The engine writes each market's
-- reference price to one row, at most once per flush, in the same batch statement as everything else;
-- readers get a position's current price, uPnL and ROE computed from that row, exactly as the matcher
-- computes them (docs/semantics.md). The stored positions.current_price / unrealized_pnl columns are
-- refreshed in the background at a slower, bounded cadence.

-- The background refresh rewrites open positions' current_price / unrealized_pnl (no index covers
-- them): room on each page lets those be HOT updates, which touch none of the table's five indexes.
ALTER TABLE positions SET (fillfactor = 85);

-- One row per market. Only the engine writes it; each flush updates the rows of the markets whose price
-- moved (HOT updates: no index covers price or marked_at, and fillfactor leaves room on the page).
CREATE TABLE market_marks (
  market_id UUID PRIMARY KEY REFERENCES markets(id) ON DELETE CASCADE,
  price DECIMAL(36, 18) NOT NULL,
  marked_at TIMESTAMP WITH TIME ZONE NOT NULL,          -- when the engine took the price
  written_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
) WITH (fillfactor = 50);

-- ROE% as the matcher computes it: uPnL x 100 / margin, truncated toward zero to 1e-9 (div() is an
-- exact integer quotient; multiplying by 1e-9 is exact, a division would round at its own scale). NULL
-- without margin, and when |ROE%| >= 1e29 (the engine's 128-bit limit).
CREATE FUNCTION position_roe(upnl NUMERIC, margin NUMERIC) RETURNS NUMERIC
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN abs(r) < 100000000000000000000000000000 THEN r END
  FROM (SELECT CASE WHEN round(margin, 9) > 0
                    THEN div(upnl * 100000000000, round(margin, 9)) * 0.000000001 END AS r) x
$$;

-- Every column of positions, with current_price and unrealized_pnl fresh for open positions whose market
-- has a price: the engine holds prices, size, entry and margin on a 1e-9 grid (rounded half away from zero, as
-- round() does), so the view rounds them the same way before multiplying; numeric products are exact.
-- Positions the engine does not arm (size <= 0, entry <= 0, margin < 0, notional of 1e18 or more), and
-- closed, liquidated or unpriced ones, keep their stored values. security_invoker: the bot's role sees
-- only its own rows (the positions policy applies).
CREATE VIEW positions_fresh WITH (security_invoker = true) AS
SELECT p.id, p.user_id, p.wallet_id, p.market_id, p.side, p.size, p.entry_price,
       CASE WHEN f.live THEN mm.price ELSE p.current_price END AS current_price,
       p.leverage, p.margin,
       CASE WHEN f.live  -- scale 9 x scale 9: the column's 18 digits
            THEN CASE WHEN p.side = 'long'
                      THEN (round(mm.price, 9) - round(p.entry_price, 9)) * round(p.size, 9)
                      ELSE (round(p.entry_price, 9) - round(mm.price, 9)) * round(p.size, 9) END
            ELSE p.unrealized_pnl END AS unrealized_pnl,
       p.realized_pnl, p.status, p.opened_at, p.closed_at, p.updated_at,
       CASE WHEN f.live THEN mm.marked_at END AS marked_at
FROM positions p
LEFT JOIN market_marks mm ON mm.market_id = p.market_id AND p.status = 'open'
CROSS JOIN LATERAL (
  SELECT mm.market_id IS NOT NULL AND round(p.size, 9) > 0 AND round(p.entry_price, 9) > 0
         AND round(p.margin, 9) >= 0
         AND round(p.size, 9) * round(p.entry_price, 9) < 1000000000000000000 AS live
) f;

-- ... with ROE%: what the bot shows beside uPnL.
CREATE VIEW positions_live WITH (security_invoker = true) AS
SELECT pf.*, position_roe(pf.unrealized_pnl, pf.margin) AS roe_percent FROM positions_fresh pf;

-- The seed's portfolio view, on fresh uPnL (columns unchanged).
CREATE OR REPLACE VIEW user_portfolio AS
WITH balances AS (
  SELECT w.user_id, wb.token_symbol, SUM(wb.available_balance) AS total_balance
  FROM wallets w
  JOIN wallet_balances wb ON wb.wallet_id = w.id
  GROUP BY w.user_id, wb.token_symbol
), open_positions AS (
  SELECT p.user_id, COUNT(*) AS open_positions, SUM(p.unrealized_pnl) AS total_unrealized_pnl
  FROM positions_fresh p
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

GRANT SELECT ON market_marks, positions_fresh, positions_live TO authenticated_user;
