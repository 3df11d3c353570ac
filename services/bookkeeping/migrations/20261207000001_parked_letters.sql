-- The parking lot of dead letters: the table of
-- platform_consumer::parking_lot::MIGRATION (checked by tests/api/inbox.rs).
-- Dead letters this service parked (platform_consumer::parking_lot): events
-- that exhausted the sidecar's inbound retries (forwarded by Dapr to
-- `<topic>.deadletter` as delivered) or that this service rejected with a
-- reason (`<service>.event.rejected`). One row per event and original topic;
-- a letter that comes back (a later failure, a re-publication) updates it.
-- `id` is the cursor of the operator API's list.
CREATE TABLE parked_letters (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text        NOT NULL,
    event_id         text        NOT NULL,
    -- The topic the event was first delivered from (e.g. `payments`).
    topic            text        NOT NULL,
    event_type       text        NOT NULL,
    -- The event as delivered on its topic (CloudEvent JSON).
    event            jsonb       NOT NULL,
    reason           text        NOT NULL,
    -- transient: its cause goes away (database or sidecar unavailable); the
    -- re-drive job applies it again with back-off. poison: rejected or
    -- invalid; it stays until an operator re-drives it.
    classification   text        NOT NULL CHECK (classification IN ('transient', 'poison')),
    -- parked, or redriven (applied, or found applied, by a re-drive).
    status           text        NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'redriven')),
    -- Failures recorded: arrivals on the dead-letter topic and failed re-drives.
    attempts         integer     NOT NULL DEFAULT 1,
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    -- When the re-drive job takes it next (transient and parked only).
    next_redrive_at  timestamptz,
    redriven_at      timestamptz,
    UNIQUE (source, event_id, topic)
);

CREATE INDEX parked_letters_due ON parked_letters (next_redrive_at)
    WHERE status = 'parked' AND next_redrive_at IS NOT NULL;
