-- Shards (docs/operations.md, "Scale out"). Several daemons may share this database, each owning a
-- shard of the markets and publishing its events to NATS JetStream with its own seq. A shard's
-- journal (alert_events, partitioned by seq as in 0010) and its restore gaps (engine_seq_gaps,
-- 0009) live in the schema laminator_shard_<id>; the shard's connections put that schema first on
-- their search_path, so every statement of the engine names the same tables as before and a
-- single daemon (no [shard]) keeps using public's. The bot's tables stay shared.

-- Creates the schema of shard `shard` and its journal tables unless they exist; the journal's first
-- range [1, 2) is created so the maintenance thread keeps ranges ahead of it. Returns the schema.
CREATE FUNCTION engine_shard_schema(shard TEXT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
  s TEXT := 'laminator_shard_' || shard;
BEGIN
  IF shard IS NULL OR shard !~ '^[a-z0-9_]{1,32}$' THEN
    RAISE EXCEPTION 'bad shard id %', shard;
  END IF;
  EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
  IF to_regclass(format('%I.alert_events', s)) IS NULL THEN
    EXECUTE format('CREATE TABLE %I.alert_events (LIKE public.alert_events INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS, PRIMARY KEY (seq)) PARTITION BY RANGE (seq)', s);
    EXECUTE format('CREATE INDEX ON %I.alert_events (user_id, seq)', s);
    EXECUTE format('CREATE INDEX ON %I.alert_events (created_at)', s);
    EXECUTE format('CREATE TABLE %I.alert_events_default PARTITION OF %I.alert_events DEFAULT', s, s);
    EXECUTE format('CREATE TABLE %I.alert_events_s1 PARTITION OF %I.alert_events '
                   'FOR VALUES FROM (1) TO (2)', s, s);
  END IF;
  IF to_regclass(format('%I.engine_seq_gaps', s)) IS NULL THEN
    EXECUTE format('CREATE TABLE %I.engine_seq_gaps (LIKE public.engine_seq_gaps INCLUDING ALL)', s);
  END IF;
  RETURN s;
END $$;

-- Every journal schema of this database: public's and each shard's (scripts/restore marks each).
CREATE FUNCTION engine_journal_schemas()
RETURNS SETOF TEXT LANGUAGE sql STABLE AS $$
  SELECT 'public'
  UNION ALL
  SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'laminator\_shard\_%' ORDER BY 1
$$;

-- Change capture names the market of a position, alert or order change ("m"; and "om", the market it
-- had, when an UPDATE moved it to another), so that a shard drops other shards' rows from the
-- notification alone instead of reading each one back. Null keys are left out.
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  rec_id uuid;
  m uuid;
  om uuid;
BEGIN
  IF TG_OP = 'DELETE' THEN
    rec_id := OLD.id;
  ELSE
    rec_id := NEW.id;
  END IF;
  IF TG_TABLE_NAME IN ('positions', 'alerts', 'orders') THEN
    IF TG_OP = 'DELETE' THEN
      m := OLD.market_id;
    ELSE
      m := NEW.market_id;
      IF TG_OP = 'UPDATE' AND OLD.market_id IS DISTINCT FROM NEW.market_id THEN
        om := OLD.market_id;
      END IF;
    END IF;
  END IF;
  PERFORM pg_notify('laminator_changes',
                    json_strip_nulls(json_build_object('t', TG_TABLE_NAME, 'op', TG_OP, 'id', rec_id,
                                                       'm', m, 'om', om))::text);
  RETURN NULL;
END $$;
