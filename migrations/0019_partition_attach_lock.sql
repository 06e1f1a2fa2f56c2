-- Creating a partition no longer hides rows from concurrent readers (found by a CI failure of
-- Operations.PointInTimeRestoreResumesWithoutStaleOrSkippedEvents: a count of the journal read 4
-- rows, the next query 2).
--
-- Both partition functions move the default partition's rows of the new range into the new table,
-- then ATTACH it, which takes only SHARE UPDATE EXCLUSIVE on the parent. A READ COMMITTED query
-- plans with the partition list it read before the commit (the default partition alone) and runs
-- with a snapshot taken after it (the rows already deleted from the default partition): the moved
-- rows are missing from its result, and so are rows written into the new range between the commit
-- and its snapshot. For the journal that is a stream resume (`since`) that skips events, or a head
-- read below the real head. Locking the parent ACCESS EXCLUSIVE first makes such a query wait for
-- the commit and plan after it. The wait is bounded by the maintenance step's lock_timeout (the
-- DETACH of retention already takes the same lock); the lock is held for the move, which is the
-- default partition's rows of one range (none when ranges are kept ahead).
CREATE OR REPLACE FUNCTION create_journal_partition(lo BIGINT, hi BIGINT)
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
  LOCK TABLE alert_events IN ACCESS EXCLUSIVE MODE;
  EXECUTE format('CREATE TABLE %I (LIKE alert_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
  EXECUTE format('WITH moved AS (DELETE FROM alert_events_default WHERE seq >= %s AND seq < %s '
                 'RETURNING *) INSERT INTO %I SELECT * FROM moved', lo, hi, part);
  EXECUTE format('ALTER TABLE alert_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                 part, lo, hi);
  RETURN TRUE;
END $$;

CREATE OR REPLACE FUNCTION create_monthly_partitions(parent regclass, months_ahead integer DEFAULT 3,
                                                     from_month date DEFAULT date_trunc('month', now())::date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  base text := (SELECT relname FROM pg_class WHERE oid = parent);
  lo date;
  hi date;
  part text;
  created integer := 0;
BEGIN
  IF months_ahead < 0 THEN
    RAISE EXCEPTION 'months_ahead must be >= 0';
  END IF;
  FOR i IN 0..months_ahead LOOP
    lo := (date_trunc('month', from_month) + make_interval(months => i))::date;
    hi := (lo + interval '1 month')::date;
    part := format('%s_y%sm%s', base, to_char(lo, 'YYYY'), to_char(lo, 'MM'));
    CONTINUE WHEN to_regclass(part) IS NOT NULL;
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', parent);
    EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %I WHERE created_at >= %L AND created_at < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', base || '_default', lo, hi, part);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    created := created + 1;
  END LOOP;
  RETURN created;
END $$;
