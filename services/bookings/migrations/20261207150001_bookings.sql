-- bookings' own database: offerings with their capacity, bookings with the
-- saga's state and history, the saga's pending commands, the inbox of
-- consumed events and the outbox of events to publish (ADR 0037).

CREATE TABLE offerings (
    id                uuid        PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('course', 'camp', 'tournament')),
    title             text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    starts_at         timestamptz NOT NULL,
    price_amount      bigint      NOT NULL CHECK (price_amount > 0),
    currency          text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    capacity          integer     NOT NULL CHECK (capacity > 0),
    -- Places held (reserved) or sold (confirmed). The database is the only
    -- judge of a place: a reservation is one conditional UPDATE of this
    -- column, and this CHECK refuses an oversold row whatever the code does.
    taken             integer     NOT NULL DEFAULT 0,
    booking_opens_at  timestamptz NOT NULL,
    booking_closes_at timestamptz NOT NULL,
    -- [{"until": <rfc3339>, "percent": 0..100}], ordered by `until`.
    refund_policy     jsonb       NOT NULL DEFAULT '[]',
    status            text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'cancelled')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT offerings_not_oversold CHECK (taken >= 0 AND taken <= capacity),
    CONSTRAINT offerings_window CHECK (booking_opens_at < booking_closes_at)
);
CREATE INDEX offerings_catalogue ON offerings (starts_at, id);

CREATE TABLE bookings (
    id              uuid        PRIMARY KEY,
    offering_id     uuid        NOT NULL REFERENCES offerings (id),
    participant     text        NOT NULL,
    locale          text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount > 0),
    currency        text        NOT NULL,
    state           text        NOT NULL CHECK (state IN
                        ('reserved', 'confirmed', 'released', 'cancelled', 'refunded')),
    payment_id      text,
    hold_until      timestamptz NOT NULL,
    refund_amount   bigint      CHECK (refund_amount >= 0),
    -- Who asked and with which Idempotency-Key: a repeat returns this booking.
    requested_by    text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bookings_idempotency_key UNIQUE (requested_by, idempotency_key)
);
CREATE UNIQUE INDEX bookings_payment ON bookings (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX bookings_offering ON bookings (offering_id, state);

-- Every transition of the saga, with what caused it.
CREATE TABLE booking_history (
    id         bigserial   PRIMARY KEY,
    booking_id uuid        NOT NULL REFERENCES bookings (id),
    from_state text,
    to_state   text        NOT NULL,
    cause      text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_history_booking ON booking_history (booking_id, id);

-- Calls to other services the saga has decided on, written in the
-- transaction of the decision and run (at least once, idempotently keyed by
-- their id) by the saga worker until done: a crash between the decision and
-- the call loses nothing.
CREATE TABLE saga_commands (
    id          uuid        PRIMARY KEY,
    booking_id  uuid        NOT NULL REFERENCES bookings (id),
    command     text        NOT NULL CHECK (command IN ('schedule_deadline', 'create_payment', 'cancel_payment', 'refund')),
    amount      bigint,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    -- A failed call is tried again from then on (exponential back-off).
    next_at     timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT saga_commands_once UNIQUE (booking_id, command)
);
CREATE INDEX saga_commands_pending ON saga_commands (next_at) WHERE done_at IS NULL;

-- Events this service has consumed (platform_consumer::inbox::MIGRATION).
CREATE TABLE inbox (
    source      text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    topic       text        NOT NULL,
    subject     text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
);

-- Events to publish, written in the transaction of the change they announce.
CREATE TABLE outbox (
    id         bigserial   PRIMARY KEY,
    topic      text        NOT NULL,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    subject    text,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
