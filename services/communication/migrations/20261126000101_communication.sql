-- communication's own database: notifications and their forward-only status
-- machine, the recipient directory and preferences, throttling windows, the
-- inbox of consumed events and the outbox of messages to publish.

-- Events this service has consumed, keyed by the CloudEvent identity
-- (source + id); claimed in the same transaction as the notification the
-- event creates, so a redelivered event creates nothing.
CREATE TABLE inbox (
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    topic       text        NOT NULL,
    subject     text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);

-- Messages to publish through the sidecar (send jobs, status events, dead
-- letters), written in the same transaction as the change they announce and
-- deleted by the relay once the sidecar has accepted them.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    pubsub     text        NOT NULL,
    topic      text        NOT NULL,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    subject    text,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Contact facts of a recipient, maintained through the API. Domain events
-- name a recipient by id (a payment's customer_reference, a statement's
-- account_id), never by address.
CREATE TABLE recipients (
    id         text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    email      text,
    phone      text,
    push_token text,
    locale     text        NOT NULL DEFAULT 'en',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Opt-outs: a row per recipient x category x channel; no row = opted in.
CREATE TABLE preferences (
    recipient_id text        NOT NULL,
    category     text        NOT NULL,
    channel      text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    opted_out    boolean     NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, category, channel)
);

-- Fixed-window counters of notifications per recipient.
CREATE TABLE throttle_windows (
    recipient_id text        NOT NULL,
    window_start timestamptz NOT NULL,
    sent         integer     NOT NULL,
    PRIMARY KEY (recipient_id, window_start)
);

CREATE TABLE notifications (
    id                  uuid        PRIMARY KEY,
    -- 'api:<Idempotency-Key>' or 'event:<source>:<id>': one notification per key.
    idempotency_key     text        NOT NULL UNIQUE,
    -- SHA-256 of the request that created it (same key, other request = conflict).
    request_hash        text        NOT NULL,
    origin              text        NOT NULL CHECK (origin IN ('api', 'event')),
    recipient_id        text        NOT NULL,
    channel             text        NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    address             text,
    category            text        NOT NULL,
    template            text        NOT NULL,
    locale              text        NOT NULL,
    -- Rendered before anything is queued: what is sent is what was rendered.
    content             jsonb       NOT NULL,
    content_hash        text        NOT NULL,
    status              text        NOT NULL CHECK (status IN
                          ('queued', 'sending', 'sent', 'delivered', 'failed', 'bounced', 'not_sent')),
    status_reason       text,
    attempts            integer     NOT NULL DEFAULT 0,
    -- true between claiming a send and recording its outcome: a row left
    -- true by a crash is found by the sweeper (outcome unknown).
    in_flight           boolean     NOT NULL DEFAULT false,
    claimed_at          timestamptz,
    provider            text,
    provider_message_id text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (status = 'not_sent' OR address IS NOT NULL)
);
CREATE INDEX notifications_stale_claims ON notifications (claimed_at) WHERE in_flight;
CREATE INDEX notifications_pending ON notifications (updated_at)
    WHERE status IN ('queued', 'sending') AND NOT in_flight;

CREATE TABLE notification_status_history (
    id              bigserial   PRIMARY KEY,
    notification_id uuid        NOT NULL REFERENCES notifications (id),
    status          text        NOT NULL,
    reason          text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_status_history_by_notification
    ON notification_status_history (notification_id, id);

-- The status machine only moves forward; enforced here so that no code path
-- (or operator) can move it back.
CREATE FUNCTION notification_transition_allowed(old_status text, new_status text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT old_status = new_status OR (old_status, new_status) IN (
        ('queued', 'sending'), ('queued', 'failed'), ('queued', 'not_sent'),
        ('sending', 'sent'), ('sending', 'failed'),
        ('sent', 'delivered'), ('sent', 'failed'), ('sent', 'bounced'))
$$;

CREATE FUNCTION notification_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT notification_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'notification % cannot go from % to %', NEW.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER notification_guard
    BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION notification_guard();

-- Every status a notification takes is recorded in its history and
-- announced (communication.notification.status_changed, through the outbox)
-- in the transaction that sets it.
CREATE FUNCTION notification_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    history_id bigint;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    INSERT INTO notification_status_history (notification_id, status, reason)
        VALUES (NEW.id, NEW.status, NEW.status_reason)
        RETURNING id INTO history_id;
    INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
    VALUES ('pubsub', 'communication', NEW.id::text || '-' || NEW.status,
            'communication.notification.status_changed', NEW.id::text,
            jsonb_build_object(
                'notification_id', NEW.id,
                'recipient_id', NEW.recipient_id,
                'channel', NEW.channel,
                'category', NEW.category,
                'template', NEW.template,
                'status', NEW.status,
                'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
                'reason', NEW.status_reason,
                'attempts', NEW.attempts,
                'provider', NEW.provider,
                'sequence', history_id,
                'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
    RETURN NULL;
END
$$;

CREATE TRIGGER notification_status_changed
    AFTER INSERT OR UPDATE OF status ON notifications
    FOR EACH ROW EXECUTE FUNCTION notification_status_changed();
