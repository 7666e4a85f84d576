-- Exports made from this store: what left, when, under which ledger head.

CREATE TABLE exports (
    id              INTEGER PRIMARY KEY,
    created_ns      INTEGER NOT NULL,
    formats         TEXT NOT NULL,
    out_name        TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    ledger_seq      INTEGER NOT NULL,
    events          INTEGER NOT NULL DEFAULT 0
);
