-- presenced schema, version 1. Applied by presenced at start-up and by
-- `presenced migrate`; see docs/reporting.md for what each table means.

-- Current presence: one row per online resource.
CREATE TABLE presence_current (
    user_jid   text        NOT NULL,
    resource   text        NOT NULL,
    show       text        NOT NULL,  -- '' (available), chat, away, xa, dnd
    status     text        NOT NULL,
    statuses   jsonb,                 -- other languages: {"de": "..."}
    priority   smallint    NOT NULL,
    idle_since timestamptz,           -- XEP-0319
    since      timestamptz NOT NULL,  -- online or last changed
    expires    timestamptz,           -- resources with a TTL (web sessions)
    PRIMARY KEY (user_jid, resource)
);

-- Every user ever seen, with its last activity (XEP-0012).
CREATE TABLE presence_users (
    user_jid    text PRIMARY KEY,
    online      boolean     NOT NULL,
    last_seen   timestamptz,          -- last resource went offline; NULL while online
    last_show   text        NOT NULL DEFAULT '',
    last_status text        NOT NULL DEFAULT ''
);

-- Append-only history of changes, one row per event.
CREATE TABLE presence_history (
    at       timestamptz NOT NULL,
    seq      bigint      NOT NULL,    -- the feed's number (restarts with presenced)
    user_jid text        NOT NULL,
    resource text        NOT NULL,
    event    text        NOT NULL,    -- online, changed, offline
    show     text        NOT NULL,
    status   text        NOT NULL,
    priority smallint    NOT NULL,
    reason   text                     -- offline only: client, server, timeout, ...
);
-- Time-range scans over an append-only table: BRIN is tiny and fits.
CREATE INDEX presence_history_at ON presence_history USING brin (at);
CREATE INDEX presence_history_user_at ON presence_history (user_jid, at);

-- Online intervals per resource.
CREATE TABLE presence_sessions (
    id         bigserial PRIMARY KEY,
    user_jid   text        NOT NULL,
    resource   text        NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,           -- NULL while online
    end_reason text
);
CREATE UNIQUE INDEX presence_sessions_open ON presence_sessions (user_jid, resource) WHERE ended_at IS NULL;
CREATE INDEX presence_sessions_started ON presence_sessions (started_at);
CREATE INDEX presence_sessions_ended ON presence_sessions (ended_at);
