-- couponq/pgstore schema, version 1.
--
-- Idempotent: every statement is CREATE ... IF NOT EXISTS or CREATE OR
-- REPLACE, so applying it again (or after a partial failure) is safe. Apply
-- it in one transaction; pgstore.Migrate does, under an advisory lock so two
-- processes starting together do not race on the catalog. Hosts with their
-- own migration tool copy this file (or pgstore.Migration) into it.

-- One row per campaign: the stock counter, and the one row every issuance of
-- the campaign locks. Updating it with a single conditional statement is
-- what keeps the campaign from being over-issued; see doc.go.
CREATE TABLE IF NOT EXISTS couponq_counters (
    campaign text PRIMARY KEY,
    -- Units issued so far. Only ever grows, and never past stock.
    issued   bigint NOT NULL CHECK (issued >= 0),
    -- The Stock the latest grant was checked against. The requests carry the
    -- campaign's Stock; keeping the last one here shows operators issued
    -- against stock, and lets the granting upsert read it from EXCLUDED.
    stock    bigint NOT NULL CHECK (stock > 0),
    -- Holds by construction (a grant that would pass stock is not made);
    -- checked anyway, as the last line of defence against an over-issue.
    CHECK (issued <= stock)
)
-- Each grant rewrites the campaign's row; free space on its page keeps those
-- updates HOT (no index churn, quick pruning) for a row that is hot by design.
WITH (fillfactor = 50);

-- One row per issued unit. Rows are only ever inserted by pgstore, never
-- updated or deleted: the per-user numbering below relies on that.
CREATE TABLE IF NOT EXISTS couponq_issuances (
    campaign  text        NOT NULL,
    user_id   text        NOT NULL,
    -- Which of the user's issuances of the campaign this is: 1 for the first,
    -- up to PerUserLimit. The primary key makes a second issuance into the
    -- same slot (two calls racing for one user) a unique violation instead
    -- of a silent over-issue, without locking the user.
    n         bigint      NOT NULL CHECK (n >= 1),
    -- The request's idempotency key: a repeated key answers with this row.
    idem_key  text        NOT NULL,
    -- The issuance ID the Store returned: 96 random bits, hex. Not indexed:
    -- nothing here looks it up, and collisions are not a practical concern.
    -- A host that looks issuances up by ID adds its own index.
    id        text        NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    -- Also serves the per-user holdings count (a prefix scan).
    PRIMARY KEY (campaign, user_id, n),
    UNIQUE (campaign, idem_key)
);

-- couponq_require raises serialization_failure (SQLSTATE 40001) with msg
-- unless ok, and returns true otherwise. The issuing statement runs on its
-- own (autocommit) and calls it to fail itself, undoing its counter update,
-- when the database moved under the decision it carries: one of its inserts
-- hit a key or user slot a concurrent call took, or the stock it wanted was
-- gone. 40001 is the code pgstore (and most retry helpers) retry on.
CREATE OR REPLACE FUNCTION couponq_require(ok boolean, msg text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = msg;
    END IF;
    RETURN true;
END
$$;
