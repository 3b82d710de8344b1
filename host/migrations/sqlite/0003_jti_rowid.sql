-- The jti table as a rowid table. Keep in step with ../postgres/0003_jti_rowid.sql.
--
-- As WITHOUT ROWID, the rows lived in the b-tree of (scope, jti), and the index on exp held
-- (exp, scope, jti). A jti is random, and so is its place in both: the assertions of one second
-- share an exp, so within it the index is ordered by jti too. Every grant dirtied a random leaf
-- of each, and those two pages were 60 % of what a commit wrote to the WAL. Here the rows are
-- appended in rowid order, the index on exp holds (exp, rowid), which also only grows at its
-- end, and the unique index on (scope, jti) is the one random page a grant writes.
CREATE TABLE jti_rows (
    scope TEXT   NOT NULL,
    jti   TEXT   NOT NULL,
    exp   BIGINT NOT NULL,
    UNIQUE (scope, jti)
);
INSERT INTO jti_rows (scope, jti, exp) SELECT scope, jti, exp FROM jti ORDER BY exp;
DROP TABLE jti;
ALTER TABLE jti_rows RENAME TO jti;

-- For Store::purge_expired_jti.
CREATE INDEX jti_exp ON jti (exp);
