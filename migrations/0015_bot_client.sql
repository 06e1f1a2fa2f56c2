-- What the bot's client needs of the database (docs/schema.md, "0015"; clients/typescript/README.md).
--
-- 1. stream_cursors: where a bot keeps its alert-stream cursor, one row per consumer name
--    (`PgCursorStore` of @laminator/client). The seq only moves forward through the client's upsert;
--    the bot may move it in its own transaction with the effects of an event (exactly-once effects).
--
-- 2. The engine's columns of a paper order are the engine's. Prisma (or any SQL) let the bot insert an
--    order as `open` with `filled_size = size`, or set a fill on a row by hand: the books then hold a
--    fill without a trade, a position or a balance move (`laminator reconcile` finds it, later). Now a
--    write from outside the engine (app.origin <> 'engine') to a paper order is refused at once,
--    naming the column, when it
--      * inserts a row with a fill or a trigger already on it (`filled_size` <> 0, `avg_fill_price`,
--        `total_fees` <> 0, `filled_at`, `triggered_at`, `position_id`), or as `filled`;
--      * changes any of those columns, or sets `status = 'filled'`;
--      * changes `execution` of an order that is no longer pending or open.
--    Live orders are left alone: their fills are the bot's and the venue's business (shared orders.md).

CREATE TABLE stream_cursors (
  consumer VARCHAR(200) PRIMARY KEY,
  seq BIGINT NOT NULL CONSTRAINT stream_cursors_seq_range CHECK (seq >= 0),
  updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE FUNCTION orders_engine_columns() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER orders_engine_columns
  BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW
  WHEN (current_setting('app.origin', true) IS DISTINCT FROM 'engine')
  EXECUTE FUNCTION orders_engine_columns();
