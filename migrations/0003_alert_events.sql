-- 0003: the alert stream's journal (docs/schema.md, "Alert stream journal").
--
-- Every event the engine publishes is journaled here by the batched writer, in the same statement as
-- the row transition it describes, so `GET /v1/stream?since=SEQ` can resume beyond the server's
-- in-memory ring and across engine restarts. `seq` is the engine's global event sequence: unique,
-- contiguous within a run and never reused (a restart continues after the last published seq).
CREATE TABLE alert_events (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  type VARCHAR(32) NOT NULL,          -- alert.triggered, alert.expired, ... (docs/events.md)
  subject_id UUID NOT NULL,           -- alert id, or position id for position events
  user_id UUID NOT NULL,
  market_id UUID,
  event_time TIMESTAMP WITH TIME ZONE NOT NULL,  -- the tick time that caused it
  body TEXT NOT NULL,                 -- the event's JSON exactly as subscribers receive it
  recovered BOOLEAN NOT NULL DEFAULT FALSE,  -- journaled at start-up from the crash ring (docs/operations.md)
  created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
-- Resume for one user (a scoped token) without scanning everyone's events.
CREATE INDEX idx_alert_events_user_seq ON alert_events(user_id, seq);
-- Retention: `laminator run` deletes rows older than [stream].journal_retention_hours by created_at.
CREATE INDEX idx_alert_events_created ON alert_events(created_at);
