-- The jti table keyed by one 16-byte digest of (scope, jti) instead of the two strings: the
-- unique index a grant writes a random leaf of holds ~5 times more keys per page, and a row's
-- size no longer depends on the jti a token carries (see Store's jti_key). Keep in step with
-- ../postgres/0005_jti_key.sql. tollgate_jti_key is defined on every connection Tollgate opens
-- (store/open.rs): these rows stay used, with their exp.
CREATE TABLE jti_keys (
    key BLOB   NOT NULL UNIQUE,
    exp BIGINT NOT NULL
);
INSERT INTO jti_keys (key, exp) SELECT tollgate_jti_key(scope, jti), exp FROM jti ORDER BY exp;
DROP TABLE jti;
ALTER TABLE jti_keys RENAME TO jti;

-- For Store::purge_expired_jti.
CREATE INDEX jti_exp ON jti (exp);
