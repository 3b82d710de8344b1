-- Keep in step with ../sqlite/0003_jti_rowid.sql, which makes SQLite's jti table a rowid table
-- so that a grant's jti row and its place in the index on exp are appended rather than put on
-- random pages. PostgreSQL already stores the rows in a heap beside the primary key's index,
-- and orders equal keys of jti_exp by their place in the heap: nothing to change.
SELECT 1;
