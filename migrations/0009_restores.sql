-- Restores (docs/operations.md, "Backup and restore"). A database restored from a backup (to a point
-- in time, or from a dump) has lost the history after its restore point: the events the daemon
-- published after it, their seqs, their journal rows. Two things keep the engine honest about that:
--  * engine_instance.instance_id changes, so a crash ring written against the lost history is
--    discarded at start-up instead of being replayed into the restored database;
--  * the event seqs jump: the new history continues above a gap, so no seq is ever given to two
--    different events, and a subscriber whose cursor is somewhere in the lost history skips none of
--    the new events (its `since` is below them) and is not refused as "ahead".
-- scripts/restore calls engine_mark_restored() once the restored server is up, before the daemon
-- starts; so should anyone restoring by other means.
CREATE TABLE engine_seq_gaps (
  seq_from BIGINT NOT NULL,  -- the journal's head at the restore: the last seq the new history keeps
  seq_to BIGINT PRIMARY KEY,  -- the new history's first seq is seq_to + 1
  reason TEXT NOT NULL,
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
  CONSTRAINT engine_seq_gaps_order CHECK (seq_from >= 0 AND seq_to > seq_from)
);

-- Marks this database as restored: a new instance id and a gap of `gap` seqs above the journal's
-- head (default 10^12: more events than a lost history can have published; seqs stay far below
-- 2^53, exact in JavaScript). Returns the new history's floor (its first seq is one above).
CREATE FUNCTION engine_mark_restored(gap BIGINT DEFAULT 1000000000000,
                                     why TEXT DEFAULT 'restored from a backup')
RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
  head BIGINT;
BEGIN
  IF gap IS NULL OR gap < 1 THEN
    RAISE EXCEPTION 'gap must be at least 1';
  END IF;
  SELECT GREATEST(COALESCE((SELECT max(seq) FROM alert_events), 0),
                  COALESCE((SELECT max(seq_to) FROM engine_seq_gaps), 0))
    INTO head;
  INSERT INTO engine_seq_gaps (seq_from, seq_to, reason) VALUES (head, head + gap, why);
  UPDATE engine_instance SET instance_id = gen_random_uuid();
  RETURN head + gap;
END $$;
