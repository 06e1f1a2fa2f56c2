-- 0017: trailing stops (docs/semantics.md, "Trailing stops"; docs/design/trailing-stops.md;
-- docs/schema.md, "0017").
--
-- The bot writes a trailing_stop order with its offsets (a rate and/or a distance) and an optional
-- activation price. The engine writes when it started to trail (activated_at) and the group it joined
-- (trail_group_id): orders activated before the last new best price since their activation share that
-- best price, so the engine keeps one row per group (trail_groups), not one write per order and new
-- high. A group that a new best price melds into another points to it (merged_into); an order's best
-- price is its group's root's (trail_root), which is what a restart follows.

ALTER TYPE order_type ADD VALUE IF NOT EXISTS 'trailing_stop';

ALTER TABLE orders
  ADD COLUMN trail_rate DECIMAL(12, 9),          -- a fraction: 0.01 = 1 %
  ADD COLUMN trail_distance DECIMAL(36, 18),     -- a price distance
  ADD COLUMN activation_price DECIMAL(36, 18),   -- NULL: trailing from the price when armed
  ADD COLUMN activated_at TIMESTAMP WITH TIME ZONE,  -- the engine's
  ADD COLUMN trail_group_id UUID,                -- the engine's: trail_groups.id
  ADD CONSTRAINT orders_trail_rate_range CHECK (trail_rate IS NULL OR (trail_rate > 0 AND trail_rate <= 0.5)),
  ADD CONSTRAINT orders_trail_distance_positive CHECK (trail_distance IS NULL OR trail_distance > 0),
  ADD CONSTRAINT orders_activation_price_positive CHECK (activation_price IS NULL OR activation_price > 0),
  -- A trailing stop has an offset and no trigger or limit price; no other order has trailing fields.
  -- (order_type as text: the new enum value cannot be used in the transaction that adds it.)
  ADD CONSTRAINT orders_trailing_fields CHECK (
    CASE WHEN order_type::text = 'trailing_stop'
      THEN (trail_rate IS NOT NULL OR trail_distance IS NOT NULL) AND trigger_price IS NULL AND price IS NULL
      ELSE trail_rate IS NULL AND trail_distance IS NULL AND activation_price IS NULL
    END);

-- One row per group of trailing stops sharing a best price: its best price, or the group it was melded
-- into. Written by the engine only; its id is the id of the order that founded it, so the daemon and a
-- replay of the same input write the same rows.
CREATE TABLE trail_groups (
  id UUID PRIMARY KEY,
  best_price DECIMAL(36, 18) NOT NULL CONSTRAINT trail_groups_best_price_positive CHECK (best_price > 0),
  merged_into UUID CONSTRAINT trail_groups_not_into_itself CHECK (merged_into IS DISTINCT FROM id),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
ALTER TABLE trail_groups ENABLE ROW LEVEL SECURITY;

-- The root of an order's group: the group whose best price it follows (a restart reads it with the
-- order, docs/design/trailing-stops.md). NULL for no group, a group the table does not hold, or a chain
-- longer than 100,000 (a cycle written by hand): the engine then trails the order again from the
-- price when it arms it.
CREATE FUNCTION trail_root(g UUID) RETURNS UUID LANGUAGE plpgsql STABLE AS $$
DECLARE
  cur UUID := g;
  nxt UUID;
BEGIN
  IF g IS NULL THEN RETURN NULL; END IF;
  FOR depth IN 1..100000 LOOP
    SELECT t.merged_into INTO nxt FROM trail_groups t WHERE t.id = cur;
    IF NOT FOUND THEN RETURN NULL; END IF;
    IF nxt IS NULL THEN RETURN cur; END IF;
    cur := nxt;
  END LOOP;
  RETURN NULL;
END $$;

-- activated_at and trail_group_id are the engine's columns of a paper order, like triggered_at (0015).
CREATE OR REPLACE FUNCTION orders_engine_columns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  bad text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.execution <> 'paper' THEN RETURN NEW; END IF;
    bad := CASE
      WHEN NEW.status = 'filled' THEN 'status = filled'
      WHEN COALESCE(NEW.filled_size, 0) <> 0 THEN 'filled_size'
      WHEN NEW.avg_fill_price IS NOT NULL THEN 'avg_fill_price'
      WHEN COALESCE(NEW.total_fees, 0) <> 0 THEN 'total_fees'
      WHEN NEW.filled_at IS NOT NULL THEN 'filled_at'
      WHEN NEW.triggered_at IS NOT NULL THEN 'triggered_at'
      WHEN NEW.position_id IS NOT NULL THEN 'position_id'
      WHEN NEW.activated_at IS NOT NULL THEN 'activated_at'
      WHEN NEW.trail_group_id IS NOT NULL THEN 'trail_group_id'
    END;
  ELSE
    IF NEW.execution IS DISTINCT FROM OLD.execution AND OLD.status NOT IN ('pending', 'open') THEN
      bad := 'execution (of a finished order)';
    ELSIF NEW.execution <> 'paper' AND OLD.execution <> 'paper' THEN
      RETURN NEW;
    ELSE
      bad := CASE
        WHEN NEW.status = 'filled' AND OLD.status IS DISTINCT FROM 'filled' THEN 'status = filled'
        WHEN NEW.filled_size IS DISTINCT FROM OLD.filled_size THEN 'filled_size'
        WHEN NEW.avg_fill_price IS DISTINCT FROM OLD.avg_fill_price THEN 'avg_fill_price'
        WHEN NEW.total_fees IS DISTINCT FROM OLD.total_fees THEN 'total_fees'
        WHEN NEW.filled_at IS DISTINCT FROM OLD.filled_at THEN 'filled_at'
        WHEN NEW.triggered_at IS DISTINCT FROM OLD.triggered_at THEN 'triggered_at'
        WHEN NEW.position_id IS DISTINCT FROM OLD.position_id THEN 'position_id'
        WHEN NEW.activated_at IS DISTINCT FROM OLD.activated_at THEN 'activated_at'
        WHEN NEW.trail_group_id IS DISTINCT FROM OLD.trail_group_id THEN 'trail_group_id'
      END;
    END IF;
  END IF;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'order %: % is written by the engine only (paper orders: docs/schema.md, "0015")',
      NEW.id, bad
      USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_engine_columns';
  END IF;
  RETURN NEW;
END $$;
