-- OAuth state: clients, identity providers, tokens, server signing keys. SQLite flavour; keep in
-- step with ../postgres/0002_oauth.sql (booleans are INTEGER 0/1 here, BOOLEAN there).
-- Times are unix seconds. `tenant` is the tenant's name; JSON is stored as TEXT.

-- Registered clients (RFC 7591). The secret is stored only as ServerSecret::hash.
CREATE TABLE clients (
    tenant              TEXT   NOT NULL,
    client_id           TEXT   NOT NULL,
    client_name         TEXT   NOT NULL,
    secret_hash         TEXT,
    auth_method         TEXT   NOT NULL,
    grant_types         TEXT   NOT NULL,  -- JSON array of strings
    scope               TEXT,             -- space-separated; NULL = any
    jwks_uri            TEXT,
    jwks                TEXT,             -- JSON
    access_token_format TEXT,             -- 'opaque' | 'jwt' | NULL = server default
    metadata            TEXT   NOT NULL,  -- JSON: registered metadata as DCR returns it, never the secret
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant, client_id)
);

-- Trusted identity providers (WSO2 REST shape in `record`).
CREATE TABLE identity_providers (
    tenant       TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    alias        TEXT,
    enabled      INTEGER NOT NULL,
    jwks_uri     TEXT,
    certificates TEXT    NOT NULL,  -- JSON array of PEM strings
    record       TEXT    NOT NULL,  -- JSON: the record as the API returns it
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, name)
);

-- Issued tokens, keyed by ServerSecret::hash of the token: the token itself is never stored.
-- `family` is one grant's chain of refresh rotations; an access token belongs to the family it
-- was issued in.
CREATE TABLE tokens (
    hash       TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,  -- 'access' | 'refresh'
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    scope      TEXT,
    family     TEXT    NOT NULL,
    issued_at  BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    format     TEXT    NOT NULL,  -- 'opaque' | 'jwt'
    claims     TEXT    NOT NULL   -- JSON object: iss and the extra claims
);
CREATE INDEX tokens_family ON tokens (family);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
CREATE INDEX tokens_client ON tokens (tenant, client_id);

-- Families revoked as a whole (refresh token reuse, revocation of a refresh token). A token whose
-- family is listed here is revoked whatever its own row says: this also catches tokens that a
-- rotation racing with the revocation inserts after it. A row goes once no token of its family
-- is left.
CREATE TABLE revoked_families (
    family TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The server's signing keys per tenant; private_key is sealed with the server secret.
CREATE TABLE signing_keys (
    tenant      TEXT   NOT NULL,
    kid         TEXT   NOT NULL,
    alg         TEXT   NOT NULL,
    private_key TEXT   NOT NULL,  -- sealed PKCS#8
    public_jwk  TEXT   NOT NULL,  -- JSON
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,           -- NULL = the current signing key
    PRIMARY KEY (tenant, kid)
);
-- At most one current key per tenant, so hosts starting at once agree on it.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (tenant) WHERE retired_at IS NULL;
