-- The alert_events journal, partitioned by ranges of seq (docs/operations.md, "Database upkeep").
-- Retention used to DELETE old rows, which leaves dead tuples for vacuum in the table the stream's
-- resumes read; now the daemon's maintenance thread detaches and drops (or archives) whole ranges
-- whose newest row is older than [stream] journal_retention_hours. Ranges of seq, not of time,
-- because seq alone must stay unique (recovered events are journaled ON CONFLICT (seq) DO NOTHING):
-- a partitioned table's unique keys must contain its partition key.
ALTER TABLE alert_events RENAME TO alert_events_legacy;
ALTER INDEX alert_events_pkey RENAME TO alert_events_legacy_pkey;
ALTER INDEX idx_alert_events_user_seq RENAME TO idx_alert_events_legacy_user_seq;
ALTER INDEX idx_alert_events_created RENAME TO idx_alert_events_legacy_created;

CREATE TABLE alert_events (
  seq BIGINT NOT NULL CONSTRAINT alert_events_seq_check CHECK (seq > 0),
  type VARCHAR(32) NOT NULL,
  subject_id UUID NOT NULL,
  user_id UUID NOT NULL,
  market_id UUID,
  event_time TIMESTAMP WITH TIME ZONE NOT NULL,
  body TEXT NOT NULL,
  recovered BOOLEAN NOT NULL DEFAULT FALSE,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
CREATE INDEX idx_alert_events_user_seq ON alert_events(user_id, seq);
CREATE INDEX idx_alert_events_created ON alert_events(created_at);
CREATE TABLE alert_events_default PARTITION OF alert_events DEFAULT;

-- Creates the partition alert_events_s<lo> for seqs [lo, hi); rows of that range already in the
-- default partition are moved into it first, so attaching never fails. False when it exists.
CREATE FUNCTION create_journal_partition(lo BIGINT, hi BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
  part TEXT := format('alert_events_s%s', lo);
BEGIN
  IF lo < 1 OR hi <= lo THEN
    RAISE EXCEPTION 'bad journal partition range [%, %)', lo, hi;
  END IF;
  IF to_regclass(part) IS NOT NULL THEN
    RETURN FALSE;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE alert_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
  EXECUTE format('WITH moved AS (DELETE FROM alert_events_default WHERE seq >= %s AND seq < %s '
                 'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
  EXECUTE format('ALTER TABLE alert_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                 part, lo, hi);
  RETURN TRUE;
END $$;

-- The journal so far becomes the first partition, [1, its head + 1) (at least [1, 2)): its rows
-- stay where they are; the maintenance thread adds the ranges after it.
DO $$
DECLARE
  hi BIGINT := (SELECT GREATEST(COALESCE(max(seq), 0) + 1, 2) FROM alert_events_legacy);
BEGIN
  ALTER TABLE alert_events_legacy RENAME TO alert_events_s1;
  EXECUTE format('ALTER TABLE alert_events ATTACH PARTITION alert_events_s1 FOR VALUES FROM (1) TO (%s)', hi);
END $$;
