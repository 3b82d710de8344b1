-- Tollgate schema, PostgreSQL flavour. Keep in step with ../sqlite/0001_init.sql:
-- the two files differ only where the dialects force them to.

-- A tenant comes into being on first use (Store::ensure_tenant).
CREATE TABLE tenants (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- Replay protection: a (scope, jti) pair is remembered until exp (unix seconds).
CREATE TABLE jti (
    scope TEXT   NOT NULL,
    jti   TEXT   NOT NULL,
    exp   BIGINT NOT NULL,
    PRIMARY KEY (scope, jti)
);

-- For Store::purge_expired_jti.
CREATE INDEX jti_exp ON jti (exp);

-- Server-wide settings shared by every host on the database.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
