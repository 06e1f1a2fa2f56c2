-- The writer's one statement per flush (persistence/batch.cpp builds its parameters; docs/schema.md,
-- "How the engine uses the database" and "Writer: orders, fills and the audit trail"). Embedded in the
-- binary at build time (cmake/embed_text.cmake) and prepared once per connection.
WITH m AS (
  SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::numeric[]) AS t(id, price, pnl)
), l AS (
  SELECT * FROM unnest($4::uuid[], $5::numeric[], $6::timestamptz[], $7::numeric[]) AS t(id, price, ts, realized)
), a AS (
  SELECT * FROM unnest($8::uuid[], $9::alert_status[], $10::timestamptz[], $11::numeric[]) AS t(id, status, ts, anchor)
), e AS (
  SELECT * FROM unnest($12::bigint[], $13::text[], $14::uuid[], $15::uuid[], $16::uuid[],
                       $17::timestamptz[], $18::text[], $19::boolean[])
           AS t(seq, type, subject_id, user_id, market_id, event_time, body, recovered)
), o AS (
  SELECT * FROM unnest($20::uuid[], $21::order_status[], $22::text[], $23::timestamptz[], $24::uuid[],
                       $25::numeric[], $26::numeric[], $27::numeric[], $28::numeric[], $29::numeric[],
                       $30::numeric[], $31::timestamptz[], $32::int[], $33::uuid[]) WITH ORDINALITY
           AS t(id, status, reason, triggered_at, position_id, price, size, fee, realized, locked,
                entry, at, flags, trade_id, ord)
), k AS (
  SELECT * FROM unnest($34::uuid[], $35::numeric[], $36::timestamptz[]) AS t(market_id, price, marked_at)
), v AS (
  SELECT * FROM unnest($37::uuid[], $38::timestamptz[], $39::uuid[]) AS t(id, at, trail_group_id)
), g AS (
  SELECT * FROM unnest($40::uuid[], $41::numeric[], $42::uuid[]) AS t(id, best_price, merged_into)
), activated AS (
  -- Trailing stops that started to trail (docs/design/trailing-stops.md): still pending. An order
  -- that also moves in this batch takes them in `ordered` (one update per row and statement).
  UPDATE orders x SET activated_at = v.at, trail_group_id = v.trail_group_id, updated_at = now()
  FROM v WHERE x.id = v.id AND x.status = 'pending' AND NOT EXISTS (SELECT 1 FROM o WHERE o.id = v.id)
  RETURNING 1
), grouped AS (
  -- Their groups: made, moved to a new best price, or melded into another (a meld stays).
  INSERT INTO trail_groups (id, best_price, merged_into, updated_at)
  SELECT g.id, g.best_price, g.merged_into, now() FROM g
  ON CONFLICT (id) DO UPDATE SET best_price = EXCLUDED.best_price,
    merged_into = COALESCE(EXCLUDED.merged_into, trail_groups.merged_into), updated_at = now()
  RETURNING 1
), market_marked AS (
  -- One row per market (docs/schema.md, "Marks"), never moved back to an older price: an update by
  -- primary key (HOT: no index covers the columns it sets), ...
  UPDATE market_marks x SET price = k.price, marked_at = k.marked_at, written_at = now()
  FROM k WHERE x.market_id = k.market_id AND x.marked_at <= k.marked_at
  RETURNING 1
), market_mark_new AS (
  -- ... and a market's first mark. A market the bot deleted meanwhile is skipped, not a foreign-key
  -- failure.
  INSERT INTO market_marks (market_id, price, marked_at, written_at)
  SELECT k.market_id, k.price, k.marked_at, now() FROM k JOIN markets mk ON mk.id = k.market_id
  WHERE NOT EXISTS (SELECT 1 FROM market_marks x WHERE x.market_id = k.market_id)
  ON CONFLICT (market_id) DO NOTHING
  RETURNING 1
), journaled AS (
  INSERT INTO alert_events (seq, type, subject_id, user_id, market_id, event_time, body, recovered)
  SELECT * FROM e ON CONFLICT (seq) DO NOTHING
  RETURNING seq
), order_prior AS MATERIALIZED (
  SELECT x.id, x.status FROM o JOIN orders x ON x.id = o.id
), ordered AS (
  UPDATE orders x SET status = o.status,
                      status_reason = COALESCE(o.reason, x.status_reason),
                      triggered_at = COALESCE(o.triggered_at, x.triggered_at),
                      filled_size = CASE WHEN o.status = 'filled' THEN o.size ELSE x.filled_size END,
                      avg_fill_price = CASE WHEN o.status = 'filled' THEN o.price ELSE x.avg_fill_price END,
                      total_fees = CASE WHEN o.status = 'filled' THEN o.fee ELSE x.total_fees END,
                      position_id = COALESCE(o.position_id, x.position_id),
                      filled_at = CASE WHEN o.status = 'filled' THEN o.at ELSE x.filled_at END,
                      activated_at = COALESCE((SELECT v.at FROM v WHERE v.id = o.id), x.activated_at),
                      trail_group_id = COALESCE((SELECT v.trail_group_id FROM v WHERE v.id = o.id),
                                                x.trail_group_id),
                      updated_at = now()
  FROM o
  WHERE x.id = o.id AND x.status IN ('pending', 'open')
    AND (o.status <> 'filled' OR o.flags & 18 <> 0  -- opens it, or an earlier fill here did
         OR EXISTS (SELECT 1 FROM positions p WHERE p.id = o.position_id AND p.status = 'open'
                    FOR UPDATE))  -- locked: a close the bot commits meanwhile is seen, not raced
  RETURNING x.id, x.user_id, x.wallet_id, x.market_id, x.side, x.leverage, x.status,
            x.status_reason, x.triggered_at, x.filled_size, x.avg_fill_price, x.total_fees,
            x.position_id, x.filled_at, o.triggered_at IS NOT NULL AS triggered,
            COALESCE(o.flags & 8 <> 0, false) AS rested
), f AS (
  SELECT o.*, r.user_id, r.wallet_id, r.market_id, r.leverage AS order_leverage,
         CASE WHEN r.side IN ('long', 'sell') THEN 'long' ELSE 'short' END::position_side AS pside,
         CASE WHEN o.flags & 4 <> 0 THEN -o.size ELSE o.size END AS dsize
  FROM o JOIN ordered r ON r.id = o.id
  WHERE o.status = 'filled'
), traded AS (
  INSERT INTO trades (id, order_id, position_id, user_id, wallet_id, market_id, side, size, price,
                      fee, liquidity, realized_pnl, executed_at)
  SELECT f.trade_id, f.id, f.position_id, f.user_id, f.wallet_id, f.market_id, x.side, f.size,
         f.price, f.fee, CASE WHEN f.flags & 1 <> 0 THEN 'taker' ELSE 'maker' END::trade_liquidity,
         f.realized, f.at
  FROM f JOIN ordered x ON x.id = f.id
  ON CONFLICT (id) DO NOTHING
), fp AS (
  SELECT f.position_id AS id,
         (array_agg(f.user_id ORDER BY f.ord))[1] AS user_id,
         (array_agg(f.wallet_id ORDER BY f.ord))[1] AS wallet_id,
         (array_agg(f.market_id ORDER BY f.ord))[1] AS market_id,
         (array_agg(f.pside ORDER BY f.ord))[1] AS side,
         (array_agg(f.order_leverage ORDER BY f.ord))[1] AS leverage,
         (array_agg(f.entry ORDER BY f.ord DESC))[1] AS entry,
         (array_agg(f.price ORDER BY f.ord DESC))[1] AS last_price,
         min(f.at) AS opened_at, max(f.at) AS at,
         sum(f.dsize) AS dsize, sum(f.locked) AS dmargin, sum(f.realized) AS drealized
  FROM f GROUP BY f.position_id
), pos_prior AS MATERIALIZED (
  -- Which of the batch's positions exist already (updated), the rest are inserted.
  SELECT p.id FROM fp JOIN positions p ON p.id = fp.id
), pos_upd AS (
  UPDATE positions p SET
    size = p.size + fp.dsize,
    entry_price = fp.entry,
    current_price = COALESCE(l.price, fp.last_price),
    margin = p.margin + fp.dmargin,
    realized_pnl = COALESCE(l.realized, p.realized_pnl + fp.drealized),
    unrealized_pnl = CASE WHEN l.id IS NOT NULL OR p.size + fp.dsize = 0 THEN 0 ELSE p.unrealized_pnl END,
    status = CASE WHEN l.id IS NOT NULL THEN 'liquidated'
                  WHEN p.size + fp.dsize = 0 THEN 'closed' ELSE p.status END::position_status,
    closed_at = CASE WHEN l.id IS NOT NULL THEN l.ts WHEN p.size + fp.dsize = 0 THEN fp.at
                     ELSE p.closed_at END,
    leverage = CASE WHEN p.margin + fp.dmargin > 0
                    THEN LEAST(round((p.size + fp.dsize) * fp.entry / (p.margin + fp.dmargin), 2), 999999.99)
                    ELSE p.leverage END,
    updated_at = now()
  FROM fp JOIN pos_prior pr ON pr.id = fp.id LEFT JOIN l ON l.id = fp.id
  WHERE p.id = pr.id
  RETURNING p.id, p.user_id, p.wallet_id, p.market_id, p.margin, p.realized_pnl, p.status,
            p.closed_at
), marked AS (
  UPDATE positions p SET current_price = m.price, unrealized_pnl = m.pnl, updated_at = now()
  FROM m WHERE p.id = m.id AND p.status = 'open' AND m.id NOT IN (SELECT id FROM fp)
  RETURNING p.id
), liquidated AS (
  UPDATE positions p SET status = 'liquidated', closed_at = l.ts, current_price = l.price,
                         unrealized_pnl = 0, realized_pnl = l.realized, updated_at = now()
  FROM l WHERE p.id = l.id AND p.status = 'open' AND l.id NOT IN (SELECT id FROM fp)
  RETURNING p.id, p.user_id, p.wallet_id, p.market_id, p.margin, p.closed_at, p.current_price,
            p.realized_pnl
), pos_new AS (
  INSERT INTO positions (id, user_id, wallet_id, market_id, side, size, entry_price, current_price,
                         leverage, margin, unrealized_pnl, realized_pnl, status, opened_at,
                         closed_at, updated_at)
  SELECT fp.id, fp.user_id, fp.wallet_id, fp.market_id, fp.side, fp.dsize, fp.entry,
         COALESCE(l.price, fp.last_price), fp.leverage, fp.dmargin, 0,
         COALESCE(l.realized, fp.drealized),
         CASE WHEN l.id IS NOT NULL THEN 'liquidated' WHEN fp.dsize = 0 THEN 'closed'
              ELSE 'open' END::position_status,
         fp.opened_at, CASE WHEN l.id IS NOT NULL THEN l.ts WHEN fp.dsize = 0 THEN fp.at END, now()
  FROM fp LEFT JOIN l ON l.id = fp.id LEFT JOIN pos_prior pr ON pr.id = fp.id
  WHERE pr.id IS NULL
    -- After the positions this batch closes or liquidates: a side reopened in the same batch would
    -- otherwise meet its old row still open in uq_positions_open_side (the sub-statements' order is
    -- not defined; these uncorrelated sub-selects run first, once).
    AND (SELECT count(*) FROM pos_upd) >= 0 AND (SELECT count(*) FROM liquidated) >= 0
  RETURNING id, user_id, wallet_id, market_id, margin, realized_pnl, status, closed_at
), liquidated_all AS (
  SELECT id, wallet_id, market_id, margin FROM liquidated
  UNION ALL SELECT id, wallet_id, market_id, margin FROM pos_new WHERE status = 'liquidated'
  UNION ALL SELECT id, wallet_id, market_id, margin FROM pos_upd WHERE status = 'liquidated'
), bd AS (
  SELECT f.wallet_id, f.market_id, f.realized AS dbal, f.locked AS dlocked, true AS fill FROM f
  UNION ALL
  SELECT x.wallet_id, x.market_id, -x.margin, -x.margin, false FROM liquidated_all x
), bg AS MATERIALIZED (
  -- Per wallet and quote asset: the summed deltas and the row they move (looked up by index). A
  -- new row's id is derived from its wallet and asset, so each fill's audit row (fb) names it
  -- without a join between CTEs (their tiny estimates plan such joins as nested loops: quadratic
  -- in the batch).
  SELECT d.wallet_id, d.token, d.dbal, d.dlocked, d.from_fill, w.id IS NOT NULL AS existed,
         COALESCE(w.id, md5(d.wallet_id::text || '/' || d.token)::uuid) AS row_id
  FROM (SELECT bd.wallet_id, mk.quote_asset AS token, sum(bd.dbal) AS dbal,
               sum(bd.dlocked) AS dlocked, bool_or(bd.fill) AS from_fill
        FROM bd JOIN markets mk ON mk.id = bd.market_id
        GROUP BY bd.wallet_id, mk.quote_asset) d
  LEFT JOIN wallet_balances w ON w.wallet_id = d.wallet_id AND w.token_symbol = d.token
), bal_ins AS (
  -- Fills create the row (a wallet without one has a zero balance) ...
  INSERT INTO wallet_balances AS w (id, wallet_id, token_symbol, balance, locked_balance, updated_at)
  SELECT bg.row_id, bg.wallet_id, bg.token, bg.dbal, bg.dlocked, now() FROM bg WHERE bg.from_fill
  ON CONFLICT (wallet_id, token_symbol) DO UPDATE
    SET balance = w.balance + EXCLUDED.balance,
        locked_balance = w.locked_balance + EXCLUDED.locked_balance, updated_at = now()
), bal_upd AS (
  -- ... a liquidation alone only moves a row that exists.
  UPDATE wallet_balances w SET balance = w.balance + bg.dbal,
                               locked_balance = w.locked_balance + bg.dlocked, updated_at = now()
  FROM bg WHERE NOT bg.from_fill AND bg.existed AND w.id = bg.row_id
), alerted AS (
  UPDATE alerts x SET status = a.status,
                      triggered_at = CASE WHEN a.status = 'triggered' THEN a.ts ELSE x.triggered_at END,
                      anchor_price = COALESCE(a.anchor, x.anchor_price),
                      updated_at = now()  -- the trigger skips the engine's writes (0016)
  FROM a WHERE x.id = a.id AND x.status = 'active'
  RETURNING x.id, x.user_id, x.status, x.triggered_at
), fa AS MATERIALIZED (
  -- Each fill's own transition of its position and wallet, as that fill left them: the batch's
  -- fills in order, from the rows as they were (read by index), so that two fills of one position
  -- in one flush are two audit rows, not one.
  SELECT f.id, f.position_id, f.user_id, f.wallet_id, f.dsize, f.entry, f.realized AS dbal,
         f.locked AS dlocked, f.ord, mk.quote_asset AS token,
         COALESCE(pp.size, 0) + sum(f.dsize) OVER w AS size_after,
         COALESCE(pp.margin, 0) + sum(f.locked) OVER w AS margin_after,
         COALESCE(pp.realized_pnl, 0) + sum(f.realized) OVER w AS realized_after,
         COALESCE(lag(f.entry) OVER w, pp.entry_price) AS entry_before
  FROM f LEFT JOIN positions pp ON pp.id = f.position_id
  JOIN markets mk ON mk.id = f.market_id
  WINDOW w AS (PARTITION BY f.position_id ORDER BY f.ord)
), fb AS MATERIALIZED (
  SELECT fa.*, COALESCE(b.balance, 0) + sum(fa.dbal) OVER wb AS balance_after,
         COALESCE(b.locked_balance, 0) + sum(fa.dlocked) OVER wb AS locked_after,
         b.id IS NOT NULL OR row_number() OVER wb > 1 AS existed,
         COALESCE(b.id, md5(fa.wallet_id::text || '/' || fa.token)::uuid) AS row_id
  FROM fa LEFT JOIN wallet_balances b ON b.wallet_id = fa.wallet_id AND b.token_symbol = fa.token
  WINDOW wb AS (PARTITION BY fa.wallet_id, fa.token ORDER BY fa.ord)
), audited AS (
  -- Every transition the engine makes, with the columns it changed (docs/schema.md).
  INSERT INTO audit_logs (user_id, action, resource_type, resource_id, old_values, new_values)
  SELECT x.user_id, 'alert.' || x.status, 'alert', x.id, jsonb_build_object('status', 'active'),
         jsonb_strip_nulls(jsonb_build_object('status', x.status, 'triggered_at', x.triggered_at))
  FROM alerted x WHERE x.status <> 'active'
  UNION ALL
  SELECT x.user_id, 'position.liquidated', 'position', x.id, jsonb_build_object('status', 'open'),
         jsonb_build_object('status', 'liquidated', 'closed_at', x.closed_at,
                            'current_price', x.current_price, 'realized_pnl', x.realized_pnl)
  FROM liquidated x
  UNION ALL
  SELECT x.user_id,
         'order.' || CASE WHEN x.status = 'open' AND x.triggered THEN 'triggered'
                          WHEN x.status = 'open' THEN 'rested' ELSE x.status::text END,
         'order', x.id,
         jsonb_build_object('status', CASE WHEN (x.triggered OR x.rested) AND x.status <> 'open'
                                           THEN 'open' ELSE pr.status::text END),
         jsonb_strip_nulls(jsonb_build_object(
           'status', x.status, 'status_reason', x.status_reason, 'triggered_at', x.triggered_at,
           'filled_size', CASE WHEN x.status = 'filled' THEN x.filled_size END,
           'avg_fill_price', CASE WHEN x.status = 'filled' THEN x.avg_fill_price END,
           'total_fees', CASE WHEN x.status = 'filled' THEN x.total_fees END,
           'position_id', CASE WHEN x.status = 'filled' THEN x.position_id END,
           'filled_at', x.filled_at))
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  UNION ALL
  -- A trigger coalesced with the fill or failure that followed it in the same flush: its own row.
  SELECT x.user_id, 'order.triggered', 'order', x.id, jsonb_build_object('status', pr.status),
         jsonb_build_object('status', 'open', 'triggered_at', x.triggered_at)
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  WHERE x.triggered AND x.status <> 'open'
  UNION ALL
  -- Likewise a limit that rested (pending -> open) and then filled, expired or was cancelled in
  -- the same flush.
  SELECT x.user_id, 'order.rested', 'order', x.id, jsonb_build_object('status', pr.status),
         jsonb_build_object('status', 'open')
  FROM ordered x JOIN order_prior pr ON pr.id = x.id
  WHERE x.rested AND NOT x.triggered AND x.status <> 'open'
  UNION ALL
  SELECT fb.user_id,
         'position.' || CASE WHEN fb.size_after = fb.dsize AND fb.dsize > 0 THEN 'opened'
                             WHEN fb.size_after = 0 THEN 'closed'
                             WHEN fb.dsize > 0 THEN 'increased' ELSE 'reduced' END,
         'position', fb.position_id,
         CASE WHEN fb.size_after <> fb.dsize THEN
           jsonb_build_object('size', fb.size_after - fb.dsize, 'entry_price', fb.entry_before,
                              'margin', fb.margin_after - fb.dlocked,
                              'realized_pnl', fb.realized_after - fb.dbal) END,
         jsonb_build_object('size', fb.size_after, 'entry_price', fb.entry,
                            'margin', fb.margin_after, 'realized_pnl', fb.realized_after,
                            'status', CASE WHEN fb.size_after = 0 THEN 'closed' ELSE 'open' END,
                            'order_id', fb.id)
  FROM fb
  UNION ALL
  -- A position that fills moved and that was liquidated in the same flush.
  SELECT x.user_id, 'position.liquidated', 'position', x.id, jsonb_build_object('status', 'open'),
         jsonb_build_object('status', 'liquidated', 'closed_at', x.closed_at,
                            'realized_pnl', x.realized_pnl)
  FROM (SELECT * FROM pos_new UNION ALL SELECT * FROM pos_upd) x
  WHERE x.status = 'liquidated'
  UNION ALL
  SELECT fb.user_id, 'balance.updated', 'wallet_balance', fb.row_id,
         CASE WHEN fb.existed THEN
           jsonb_build_object('token_symbol', fb.token, 'balance', fb.balance_after - fb.dbal,
                              'locked_balance', fb.locked_after - fb.dlocked) END,
         jsonb_build_object('token_symbol', fb.token, 'balance', fb.balance_after,
                            'locked_balance', fb.locked_after, 'order_id', fb.id)
  FROM fb
  UNION ALL
  -- A liquidation releases its margin and takes it from the wallet (a row that exists).
  SELECT wl.user_id, 'balance.updated', 'wallet_balance', b.id, NULL,
         jsonb_build_object('token_symbol', b.token_symbol, 'balance_change', -x.margin,
                            'locked_change', -x.margin, 'position_id', x.id)
  FROM liquidated_all x JOIN markets mk ON mk.id = x.market_id
  JOIN wallet_balances b ON b.wallet_id = x.wallet_id AND b.token_symbol = mk.quote_asset
  JOIN wallets wl ON wl.id = x.wallet_id
), lost AS (
  -- Fills that lost to the bot (their order was cancelled or changed first; a retried fill of ours
  -- is not one).
  -- NOT IN over `ordered` is a hashed subplan: an anti join between two CTEs (estimated at a row
  -- or ten) ran as a nested loop, quadratic in the batch's orders (20 s of a 20k-fill statement).
  SELECT o.id, o.position_id, x.wallet_id, x.market_id, x.status IN ('pending', 'open') AS live
  FROM o JOIN orders x ON x.id = o.id
  WHERE o.status = 'filled' AND o.id NOT IN (SELECT id FROM ordered)
    AND NOT (x.status = 'filled' AND x.filled_at IS NOT DISTINCT FROM o.at)
), reconciled AS (
  -- Such a fill moved the engine's position and wallet in memory, not in the database: the
  -- listener re-reads both rows (as if the bot had written them), so the engine follows the
  -- database again. An order the bot did not finish (the position its fill moved was closed
  -- first) is still pending / open here: re-read too, the engine voids the fill and arms it again
  -- (Matcher::reconcile_order); a finished one reaches it through the bot's own notification.
  SELECT pg_notify('laminator_changes',
                   json_build_object('t', n.t, 'op', 'RECONCILE', 'id', n.id)::text)
  FROM (SELECT 'positions' AS t, lost.position_id AS id FROM lost
        UNION
        SELECT 'orders', lost.id FROM lost WHERE lost.live
        UNION
        SELECT 'wallet_balances', w.id
        FROM lost JOIN markets mk ON mk.id = lost.market_id
        JOIN wallet_balances w ON w.wallet_id = lost.wallet_id AND w.token_symbol = mk.quote_asset) n
), conflicts AS (
  SELECT 'positions:' || l.id || ':' || COALESCE(p.status::text, 'missing') AS c
  FROM l LEFT JOIN positions p ON p.id = l.id
  WHERE l.id NOT IN (SELECT id FROM liquidated_all)
    AND NOT (p.status IS NOT DISTINCT FROM 'liquidated' AND p.closed_at IS NOT DISTINCT FROM l.ts)
  UNION ALL
  SELECT 'alerts:' || a.id || ':' || COALESCE(x.status::text, 'missing')
  FROM a LEFT JOIN alerts x ON x.id = a.id
  WHERE a.id NOT IN (SELECT id FROM alerted)
    AND NOT (x.status IS NOT DISTINCT FROM a.status AND
             (a.status <> 'triggered' OR x.triggered_at IS NOT DISTINCT FROM a.ts))
    AND NOT (a.status = 'active' AND x.status IS NOT NULL)
  UNION ALL
  SELECT 'orders:' || o.id || ':' || COALESCE(x.status::text, 'missing')
  FROM o LEFT JOIN orders x ON x.id = o.id
  WHERE o.id NOT IN (SELECT id FROM ordered)
    AND NOT (x.status IS NOT DISTINCT FROM o.status AND
             (o.status <> 'filled' OR x.filled_at IS NOT DISTINCT FROM o.at))
)
SELECT (SELECT count(*) FROM marked), COALESCE((SELECT array_agg(c) FROM conflicts), '{}'),
       (SELECT count(*) FROM f), (SELECT count(*) FROM reconciled),
       (SELECT count(*) FROM market_marked) + (SELECT count(*) FROM market_mark_new)
