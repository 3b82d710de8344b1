-- The jti table keyed by one 16-byte digest of (scope, jti) instead of the two strings: smaller
-- index entries, and a row's size no longer depends on the jti a token carries (see Store's
-- jti_key). Keep in step with ../sqlite/0005_jti_key.sql. The key is computed as jti_key does:
-- SHA-256 over the scope's length in bytes (8, big-endian), the scope and the jti, cut to 16
-- bytes. The stored rows stay used, with their exp. Hosts of an earlier version use the old
-- columns: stop them before the first host of this version starts.
CREATE TABLE jti_keys (
    key BYTEA  NOT NULL PRIMARY KEY,
    exp BIGINT NOT NULL
);
INSERT INTO jti_keys (key, exp)
    SELECT substring(sha256(int8send(octet_length(convert_to(scope, 'UTF8'))::bigint)
                            || convert_to(scope, 'UTF8') || convert_to(jti, 'UTF8'))
                     FROM 1 FOR 16),
           exp
    FROM jti;
DROP TABLE jti;
ALTER TABLE jti_keys RENAME TO jti;
ALTER INDEX jti_keys_pkey RENAME TO jti_pkey;

-- For Store::purge_expired_jti.
CREATE INDEX jti_exp ON jti (exp);
