-- The consent ledger: append-only and hash-chained. Each row keeps the
-- canonical JSON it was hashed from, the previous row's hash and its own.
-- It never holds captured content.

CREATE TABLE consent_ledger (
    seq       INTEGER PRIMARY KEY,
    ts_ns     INTEGER NOT NULL,
    action    TEXT NOT NULL,
    body      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL UNIQUE
);

CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger
BEGIN
    SELECT RAISE(ABORT, 'consent_ledger is append-only');
END;

CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
BEGIN
    SELECT RAISE(ABORT, 'consent_ledger is append-only');
END;
