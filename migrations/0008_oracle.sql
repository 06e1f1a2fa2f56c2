-- 0008: markets priced by an oracle (docs/feeds.md, "Oracle prices"). A market whose price_source is
-- 'oracle' is marked, liquidated and alerted on the Pyth price feed named by oracle_feed_id (64 lower-
-- case hex digits, as Hermes spells ids) instead of its venue's book: Solana perp venues mark and
-- liquidate on Pyth. The engine holds such a market while the feed's updates are older or wider than
-- [feeds.pyth] max_age_ms / max_conf_bps, as it holds one whose feed is stale.
ALTER TYPE price_source ADD VALUE IF NOT EXISTS 'oracle';

ALTER TABLE markets
  ADD COLUMN oracle_feed_id TEXT,
  ADD CONSTRAINT markets_oracle_feed_id_hex CHECK (oracle_feed_id ~ '^[0-9a-f]{64}$'),
  -- The new enum value cannot be named in the transaction that adds it: compared as text.
  ADD CONSTRAINT markets_oracle_needs_feed
    CHECK (price_source::text IS DISTINCT FROM 'oracle' OR oracle_feed_id IS NOT NULL);
