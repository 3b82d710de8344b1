-- Only the tokens of a family that has a refresh token in the index on families. Keep in step
-- with ../sqlite/0004_family_index.sql.
--
-- A family is what revoking a refresh token revokes, and only a refresh token's family is ever
-- revoked. A token issued without a refresh token (client_credentials, mostly) now has no
-- family: its `family` is '' and it stays out of this index. On SQLite that spares such a
-- grant one of the five b-trees its row went into, and its commit that b-tree's pages in the
-- WAL: client_credentials + client_secret_basic went from 40.6k/40.8k to 43.8k/45.8k grants/s,
-- from 30-31 to 26-27 us of server CPU each, commits from 93-96 to 78-82 us (2026-12-04).
--
-- Every statement that looks a family up says `family <> ''`: a planner uses a partial index
-- only for a statement that names its condition. No family '' is ever revoked
-- (Store::revoke_family).
DROP INDEX tokens_family;
CREATE INDEX tokens_family ON tokens (family) WHERE family <> '';
