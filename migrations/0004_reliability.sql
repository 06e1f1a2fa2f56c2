-- 0004: what keeps one bad row from stopping everyone, and what binds engine state to this database
-- (docs/schema.md, "Reliability"; docs/operations.md).

-- Rows the batched writer could not write. A batch that fails on data (SQLSTATE classes 22, 23,
-- P0) is split until the offending rows are isolated; each lands here (one row per table, row and
-- kind, counting repeats) while everything else is written. The engine's own view of the row is
-- unchanged: an operator fixes the row (or the data that made it unwritable) and the next write of
-- it goes through.
CREATE TABLE engine_dead_letters (
  id BIGSERIAL PRIMARY KEY,
  table_name TEXT NOT NULL,           -- positions, alerts, alert_events
  row_id TEXT NOT NULL,               -- the row's id (alert_events: the seq)
  kind TEXT NOT NULL,                 -- mark, liquidation, alert_triggered, alert_expired, alert_anchored, event
  detail TEXT NOT NULL,               -- the values the engine tried to write
  sqlstate TEXT NOT NULL,
  error TEXT NOT NULL,
  occurrences BIGINT NOT NULL DEFAULT 1,
  first_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  last_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  UNIQUE (table_name, row_id, kind)
);

-- This database's identity. The engine's crash ring (a file beside the daemon) holds events for
-- exactly one database; it is bound to this random id, not to the database's name, so a database
-- dropped and recreated under the same name (or restored into a new cluster) never adopts a ring
-- of events that belong to another.
CREATE TABLE engine_instance (
  singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
  instance_id UUID NOT NULL DEFAULT gen_random_uuid(),
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
INSERT INTO engine_instance DEFAULT VALUES;
