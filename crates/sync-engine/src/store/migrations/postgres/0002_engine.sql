-- The sync engine: jobs and their attempts, links, echo marks, poller cursors, leases,
-- rule state, OAuth tokens, secrets learned in handshakes. Times are unix microseconds.
CREATE INDEX deliveries_by_status ON deliveries (status, seq);

CREATE TABLE jobs (
    id           BIGSERIAL PRIMARY KEY,
    delivery_seq BIGINT NOT NULL REFERENCES deliveries (seq),
    rule         TEXT   NOT NULL,
    subject      TEXT,
    state        TEXT   NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_until  BIGINT,
    locked_by    TEXT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX jobs_runnable ON jobs (state, run_at);
-- The per-subject order check only looks at unfinished jobs; finished ones pile up.
CREATE INDEX jobs_active_by_subject ON jobs (rule, subject, id)
    WHERE state IN ('pending', 'running');
CREATE INDEX jobs_by_delivery ON jobs (delivery_seq);

CREATE TABLE job_attempts (
    job_id      BIGINT NOT NULL REFERENCES jobs (id),
    number      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT   NOT NULL,
    error       TEXT,
    actions     TEXT   NOT NULL, -- JSON array of strings
    PRIMARY KEY (job_id, number)
);

CREATE TABLE links (
    rule       TEXT   NOT NULL,
    a          TEXT   NOT NULL,
    b          TEXT   NOT NULL,
    data       TEXT   NOT NULL, -- JSON
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rule, a)
);
CREATE INDEX links_by_b ON links (rule, b);

CREATE TABLE echo_marks (
    id         BIGSERIAL PRIMARY KEY,
    target     TEXT   NOT NULL,
    field      TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX echo_marks_lookup ON echo_marks (target, field, value);
CREATE INDEX echo_marks_expiry ON echo_marks (expires_at);

CREATE TABLE cursors (
    source     TEXT PRIMARY KEY,
    cursor     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE rule_state (
    rule       TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL, -- JSON
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rule, key)
);

CREATE TABLE oauth_tokens (
    connection    TEXT PRIMARY KEY,
    access_token  BYTEA  NOT NULL,
    refresh_token BYTEA,
    expires_at    BIGINT,
    scopes        TEXT   NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE learned_secrets (
    endpoint   TEXT PRIMARY KEY,
    secret     BYTEA  NOT NULL,
    learned_at BIGINT NOT NULL
);
