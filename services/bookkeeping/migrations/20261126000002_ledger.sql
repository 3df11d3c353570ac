-- The double-entry ledger. The invariants live in the database, so that no
-- code path (ours, a migration, a psql session) can break them:
--   * the postings of an entry sum to zero per currency (deferred trigger);
--   * an entry has at least two postings;
--   * a posting's currency is its account's currency;
--   * posted rows are immutable (no UPDATE, DELETE or TRUNCATE);
--   * an entry is reversed at most once, and a reversal is not reversed;
--   * a bounded account never leaves its bounds (CHECK on the running
--     balance, updated under the account's row lock).

CREATE TABLE currencies (
    code     char(3)  PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    exponent smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4)
);

INSERT INTO currencies (code, exponent) VALUES
    ('CHF', 2), ('CZK', 2), ('DKK', 2), ('EUR', 2), ('GBP', 2), ('HUF', 2),
    ('JPY', 0), ('KWD', 3), ('NOK', 2), ('PLN', 2), ('SEK', 2), ('USD', 2);

CREATE TYPE account_kind AS ENUM ('asset', 'liability', 'equity', 'revenue', 'expense');

-- Sign of an account kind's normal balance in debit-positive amounts:
-- assets and expenses grow with debits, the others with credits.
CREATE FUNCTION normal_sign(kind account_kind) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN kind IN ('asset', 'expense') THEN 1 ELSE -1 END;

CREATE TABLE accounts (
    id          uuid         PRIMARY KEY,
    code        text         NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_.:-]{0,127}$'),
    name        text         NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        account_kind NOT NULL,
    currency    char(3)      NOT NULL REFERENCES currencies (code),
    -- Bounds on the balance in the account's normal direction (minor units).
    -- The default, 0 and no upper bound, means "no overdraft". NULL lower
    -- bound means overdraft is declared allowed.
    min_balance bigint       DEFAULT 0,
    max_balance bigint,
    -- Running balance in debit-positive minor units, maintained by posting.
    balance     bigint       NOT NULL DEFAULT 0,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT bounds_ordered CHECK (min_balance IS NULL OR max_balance IS NULL OR min_balance <= max_balance),
    CONSTRAINT balance_within_bounds CHECK (
        (min_balance IS NULL OR normal_sign(kind) * balance >= min_balance)
        AND (max_balance IS NULL OR normal_sign(kind) * balance <= max_balance)
    )
);

CREATE TABLE entries (
    id          uuid        PRIMARY KEY,
    -- Global posting order; point-in-time balances are "as of sequence N".
    sequence    bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    description text        NOT NULL CHECK (length(description) <= 500),
    effective_at timestamptz NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    reverses    uuid        UNIQUE REFERENCES entries (id),
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE TABLE postings (
    entry_id    uuid    NOT NULL REFERENCES entries (id),
    position    smallint NOT NULL CHECK (position >= 0),
    account_id  uuid    NOT NULL REFERENCES accounts (id),
    -- Debit positive, credit negative, minor units of `currency`.
    amount      bigint  NOT NULL CHECK (amount <> 0),
    currency    char(3) NOT NULL REFERENCES currencies (code),
    -- Copied from the entry so that point-in-time balances are an index scan.
    entry_sequence bigint NOT NULL,
    PRIMARY KEY (entry_id, position)
);

CREATE INDEX postings_account_sequence ON postings (account_id, entry_sequence) INCLUDE (amount);

-- Immutability.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable: % on % refused (post a reversal instead)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- A posting's currency is its account's, and its sequence its entry's.
CREATE FUNCTION check_posting_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account_currency char(3);
    seq bigint;
BEGIN
    SELECT currency INTO account_currency FROM accounts WHERE id = NEW.account_id;
    IF account_currency IS DISTINCT FROM NEW.currency THEN
        RAISE EXCEPTION 'posting currency % differs from account currency %', NEW.currency, account_currency
            USING ERRCODE = 'check_violation', CONSTRAINT = 'posting_currency_matches_account';
    END IF;
    SELECT sequence INTO seq FROM entries WHERE id = NEW.entry_id;
    IF seq IS DISTINCT FROM NEW.entry_sequence THEN
        RAISE EXCEPTION 'posting sequence % differs from entry sequence %', NEW.entry_sequence, seq
            USING ERRCODE = 'check_violation', CONSTRAINT = 'posting_sequence_matches_entry';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER postings_row_check BEFORE INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION check_posting_row();

-- At commit: every entry touched has >= 2 postings, summing to zero per currency.
CREATE FUNCTION check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target uuid;
    n integer;
    unbalanced char(3);
BEGIN
    IF TG_TABLE_NAME = 'entries' THEN
        target := NEW.id;
    ELSE
        target := NEW.entry_id;
    END IF;
    SELECT count(*) INTO n FROM postings WHERE entry_id = target;
    IF n < 2 THEN
        RAISE EXCEPTION 'entry % has % posting(s); at least two are required', target, n
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_has_two_postings';
    END IF;
    SELECT currency INTO unbalanced FROM postings WHERE entry_id = target
        GROUP BY currency HAVING sum(amount) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'entry % does not balance in %', target, unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'entry_balances_per_currency';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER entries_balanced AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();
CREATE CONSTRAINT TRIGGER postings_balanced AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_entry_balanced();

-- A reversal cannot itself be reversed (correct it with a new entry).
CREATE FUNCTION check_reversal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reverses IS NOT NULL AND EXISTS (SELECT 1 FROM entries WHERE id = NEW.reverses AND reverses IS NOT NULL) THEN
        RAISE EXCEPTION 'entry % is itself a reversal and cannot be reversed', NEW.reverses
            USING ERRCODE = 'check_violation', CONSTRAINT = 'reversal_not_reversed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER entries_reversal_check BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION check_reversal();

-- The running balance moves with every posting, under the account row lock,
-- so concurrent postings to one account serialise and the bounds CHECK sees
-- every one of them.
CREATE FUNCTION apply_posting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    RETURN NULL;
END $$;

CREATE TRIGGER postings_apply AFTER INSERT ON postings
    FOR EACH ROW EXECUTE FUNCTION apply_posting();

-- Account balances may only change through postings.
CREATE FUNCTION guard_account_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.kind <> OLD.kind OR NEW.currency <> OLD.currency OR NEW.code <> OLD.code THEN
        RAISE EXCEPTION 'account identity, kind and currency are immutable'
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.balance <> OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'account balances change only through postings'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_guard BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION guard_account_update();
CREATE TRIGGER accounts_no_delete BEFORE DELETE OR TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
