-- The delivery inbox: every acknowledged delivery, as received.
CREATE TABLE deliveries (
    seq         BIGSERIAL PRIMARY KEY,
    endpoint    TEXT   NOT NULL,
    provider    TEXT   NOT NULL,
    delivery_id TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    headers     TEXT   NOT NULL, -- JSON array of [name, value], credentials removed
    body        BYTEA  NOT NULL,
    received_at BIGINT NOT NULL, -- unix microseconds
    status      TEXT   NOT NULL DEFAULT 'received',
    UNIQUE (endpoint, delivery_id)
);
CREATE INDEX deliveries_by_received_at ON deliveries (received_at);
