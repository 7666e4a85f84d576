-- The capture store: sessions, events, content-addressed blobs and gaps.
-- Events carry no secondary index on purpose: rows are appended in time
-- order, and every byte per event counts at millions of events a day.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- A readable copy of the registry's kind codes, refreshed on every open,
-- so that reviewers using the sqlite3 shell can join on names.
CREATE TABLE kinds (
    code  INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL
);

-- One row per writer run (a daemon run, an import or a synthetic session).
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    started_ns   INTEGER NOT NULL,
    ended_ns     INTEGER,              -- NULL while running, or after a crash
    last_ns      INTEGER,              -- wall time of the last committed batch
    clean_exit   INTEGER NOT NULL DEFAULT 0,
    source       TEXT NOT NULL,        -- 'daemon', 'synthetic', ...
    synthetic    INTEGER NOT NULL DEFAULT 0,
    tool_version TEXT NOT NULL,
    events       INTEGER NOT NULL DEFAULT 0,
    coalesced    INTEGER NOT NULL DEFAULT 0,
    dropped      INTEGER NOT NULL DEFAULT 0
);

-- Content stored once: zstd-compressed, then sealed. `hash` is a keyed hash
-- of the plaintext, so equal contents share a row without the hash
-- confirming a guess about the content.
CREATE TABLE blobs (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);

-- ts_ns: wall-clock ns since the Unix epoch; mono_ns: monotonic ns since the
-- session started. data: the registry codec's public fields; sealed: the
-- highly sensitive fields, AEAD-sealed.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    kind       INTEGER NOT NULL,
    ts_ns      INTEGER NOT NULL,
    mono_ns    INTEGER NOT NULL,
    data       BLOB,
    sealed     BLOB,
    blob_id    INTEGER REFERENCES blobs(id)
);
CREATE INDEX events_blob ON events(blob_id) WHERE blob_id IS NOT NULL;

-- Spans in which nothing (or less than everything) was captured, and why.
CREATE TABLE gaps (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    count      INTEGER NOT NULL DEFAULT 0,
    lost_kind  TEXT
);
CREATE INDEX gaps_start ON gaps(start_ns);
