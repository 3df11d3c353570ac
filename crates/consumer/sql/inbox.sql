-- Events this service has processed, keyed by the CloudEvent identity
-- (source + id). A handler inserts here in the same transaction as its
-- effect, so a redelivered or concurrently delivered event has its effect
-- exactly once.
CREATE TABLE inbox (
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    topic       text        NOT NULL,
    subject     text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);
