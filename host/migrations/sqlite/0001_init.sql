-- Tollgate schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql:
-- the two files differ only where the dialects force them to.

-- A tenant comes into being on first use (Store::ensure_tenant).
-- AUTOINCREMENT: ids of deleted tenants are never handed out again (as with a PostgreSQL identity).
CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

-- Replay protection: a (scope, jti) pair is remembered until exp (unix seconds).
-- WITHOUT ROWID: the primary key is the only lookup, so store the rows in its b-tree.
CREATE TABLE jti (
    scope TEXT   NOT NULL,
    jti   TEXT   NOT NULL,
    exp   BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
) WITHOUT ROWID;

-- For Store::purge_expired_jti.
CREATE INDEX jti_exp ON jti (exp);

-- Server-wide settings shared by every host on the database.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
