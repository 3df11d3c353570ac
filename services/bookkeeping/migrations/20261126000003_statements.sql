-- Statement exports: the database is the source of truth for each job; the
-- pub/sub message only triggers a worker. A sweeper republishes jobs that
-- were never picked up or whose worker stopped sending heartbeats, so a lost
-- message or a crash mid-export delays a statement, never loses it.
CREATE TYPE statement_status AS ENUM ('queued', 'running', 'ready', 'failed');

CREATE TABLE statements (
    id           uuid             PRIMARY KEY,
    account_id   uuid             NOT NULL REFERENCES accounts (id),
    period_from  timestamptz      NOT NULL,
    period_to    timestamptz      NOT NULL,
    format       text             NOT NULL CHECK (format IN ('csv')),
    status       statement_status NOT NULL DEFAULT 'queued',
    attempts     integer          NOT NULL DEFAULT 0,
    parts        integer          NOT NULL DEFAULT 0,
    rows_written bigint           NOT NULL DEFAULT 0,
    bytes_written bigint          NOT NULL DEFAULT 0,
    error        text,
    requested_at timestamptz      NOT NULL DEFAULT now(),
    heartbeat_at timestamptz      NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT period_ordered CHECK (period_from < period_to)
);

CREATE INDEX statements_pending ON statements (status, heartbeat_at) WHERE status IN ('queued', 'running');
