-- The sync engine: jobs and their attempts, links, echo marks, poller cursors, leases,
-- rule state, OAuth tokens, secrets learned in handshakes. Times are unix microseconds.
CREATE INDEX deliveries_by_status ON deliveries (status, seq);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_seq INTEGER NOT NULL REFERENCES deliveries (seq),
    rule         TEXT    NOT NULL,
    subject      TEXT,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    locked_by    TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_runnable ON jobs (state, run_at);
CREATE INDEX jobs_by_subject ON jobs (rule, subject, id);
CREATE INDEX jobs_by_delivery ON jobs (delivery_seq);

CREATE TABLE job_attempts (
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    number      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    error       TEXT,
    actions     TEXT    NOT NULL, -- JSON array of strings
    PRIMARY KEY (job_id, number)
);

CREATE TABLE links (
    rule       TEXT    NOT NULL,
    a          TEXT    NOT NULL,
    b          TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rule, a)
);
CREATE INDEX links_by_b ON links (rule, b);

CREATE TABLE echo_marks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    target     TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX echo_marks_lookup ON echo_marks (target, field, value);
CREATE INDEX echo_marks_expiry ON echo_marks (expires_at);

CREATE TABLE cursors (
    source     TEXT PRIMARY KEY,
    cursor     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE rule_state (
    rule       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (rule, key)
);

CREATE TABLE oauth_tokens (
    connection    TEXT PRIMARY KEY,
    access_token  BLOB    NOT NULL,
    refresh_token BLOB,
    expires_at    INTEGER,
    scopes        TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE learned_secrets (
    endpoint   TEXT PRIMARY KEY,
    secret     BLOB    NOT NULL,
    learned_at INTEGER NOT NULL
);
