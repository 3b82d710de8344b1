//! SQLite allocates with the C library's malloc while mimalloc is the process's `malloc`, as in
//! the `tollgate` binary (host/src/store/sqlite_malloc.rs says why). Not end to end, and a test
//! binary of its own: the setting is the whole process's, and it must come before SQLite's
//! first use.

use rusqlite::ffi;
use std::ffi::c_void;
use tollgate_host::store;

/// As in `tollgate`: mimalloc, with its `override` feature, which makes it `malloc` too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's: whether `p` lies in memory that mimalloc manages.
    fn mi_is_in_heap_region(p: *const c_void) -> bool;
}

#[test]
fn sqlite_allocates_with_the_c_library_while_malloc_is_mimalloc() {
    store::sqlite_malloc::use_libc_malloc().expect("SQLite not yet in use");
    // SAFETY: blocks allocated and freed by the same allocator, each freed once.
    unsafe {
        // The process's malloc is mimalloc's, as the plugins find it in the server.
        let process = libc::malloc(4096);
        assert!(mi_is_in_heap_region(process), "malloc is not mimalloc's");
        libc::free(process);

        let block = ffi::sqlite3_malloc(4096);
        assert!(!block.is_null());
        assert!(
            !mi_is_in_heap_region(block),
            "SQLite allocated with mimalloc"
        );
        assert!(ffi::sqlite3_msize(block) >= 4096);
        let grown = ffi::sqlite3_realloc(block, 200_000);
        assert!(!grown.is_null() && !mi_is_in_heap_region(grown));
        assert!(ffi::sqlite3_msize(grown) >= 200_000);
        ffi::sqlite3_free(grown);
    }

    // SQLite works on it: a WAL database file with a page cache to fill, written and read back.
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA cache_size = -64;
         CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO t SELECT i, randomblob(1000) FROM n;",
    )
    .expect("write");
    let (rows, bytes): (i64, i64) = conn
        .query_row("SELECT count(*), sum(length(v)) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("read");
    assert_eq!((rows, bytes), (2000, 2_000_000));
    // SAFETY: only reads SQLite's counter.
    assert!(unsafe { ffi::sqlite3_memory_used() } > 0);

    // Once SQLite is in use it takes no other allocator, and says so.
    let refused = store::sqlite_malloc::use_libc_malloc().expect_err("SQLite in use");
    assert!(refused.contains("already in use"), "{refused}");
}
