//! An SQLite VFS for the group-commit writer's connection that hands each commit's WAL frames
//! to the kernel in one `pwrite`, not two per frame.
//!
//! Why: SQLite appends a frame to the WAL as two writes, its 24-byte header and then its page.
//! A batch of grants commits ~20 pages, so ~40 `pwrite`s land in ext4 back to back, each paying
//! the system call, the inode lock and the page-cache bookkeeping of its own: 8.5 `pwrite`s per
//! private_key_jwt grant, ~9 % of the server's CPU samples. Here the writes of one contiguous run
//! are gathered in memory and written together: 1.4 `pwrite`s per grant (most of them now the
//! checkpoints' copies into the database), and 6–7 % less server CPU per grant (2026-12-04).
//!
//! When: SQLite appends to the WAL only in a commit, and the writer's connection runs with
//! `cache_spill` off ([`super::sqlite_writer`]), so every frame belongs to the commit being
//! written, and the commit ends with the page of its commit frame — the one whose header carries
//! the database size (bytes 4..8; zero in every other frame, see
//! <https://sqlite.org/fileformat.html#walformat>). The run is written with that page, and the
//! write returns the `pwrite`'s outcome: a failure fails the commit before SQLite publishes it in
//! the wal-index (shared memory, which only the database file's methods touch), as an unbuffered
//! write would. So once a commit returns, whatever it wrote is in the file, and no other
//! connection ever sees a difference. The run is also written out before any other operation on
//! the file (read, size, truncate, sync, close), when a write does not continue it, and at
//! [`MAX_RUN`].
//!
//! Every other file (the database, journals) is the default VFS's own, untouched.

use rusqlite::ffi;
use std::ffi::{c_int, c_void, CStr};
use std::mem::{align_of, size_of};
use std::ptr;
use std::sync::OnceLock;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
const NAME: &CStr = c"tollgate-wal-buffer";

/// A run grows to at most this many bytes before it is written (a frame is 24 bytes and a page):
/// the unix VFS writes at most 128 KiB − 1 at once (`seekAndWriteFd` masks the length to 17
/// bits, and a longer write comes out short or empty, which SQLite reports as a full disk).
const MAX_RUN: usize = 0x1ffff;

/// Size of a WAL frame header; the one write SQLite makes of exactly this size at a frame's
/// start.
const FRAME_HEADER: usize = 24;

/// Registers the VFS (once) and returns its name; the default VFS stays the default.
pub(super) fn register() -> Result<&'static str, rusqlite::Error> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe once SQLite is
            // initialised (they initialise it themselves). The VFS is leaked, so it outlives
            // every connection; its methods other than xOpen are the default VFS's own, called
            // with the default VFS's pAppData, which is copied.
            unsafe {
                let base = ffi::sqlite3_vfs_find(ptr::null());
                if base.is_null() {
                    return Err("SQLite has no default VFS".to_string());
                }
                let mut vfs = *base;
                vfs.zName = NAME.as_ptr();
                vfs.pNext = ptr::null_mut();
                vfs.szOsFile = c_int::try_from(real_file_offset())
                    .ok()
                    .and_then(|offset| offset.checked_add((*base).szOsFile))
                    .ok_or("SQLite's file size does not fit")?;
                vfs.xOpen = Some(open);
                BASE.get_or_init(|| Base(base));
                let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0);
                if rc != ffi::SQLITE_OK {
                    return Err(format!("sqlite3_vfs_register: error {rc}"));
                }
                Ok(())
            }
        })
        .clone()
        .map(|()| NAME.to_str().expect("ASCII"))
        .map_err(|reason| {
            rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(reason))
        })
}

/// The default VFS, which opens every file and does every operation.
struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and lives as long as the process.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}
static BASE: OnceLock<Base> = OnceLock::new();

/// What SQLite allocates (`szOsFile` bytes) for a WAL file opened through this VFS: the buffer's
/// state, then at [`real_file_offset`] the default VFS's own file object.
#[repr(C)]
struct WalFile {
    /// Must come first: SQLite reads `pMethods` from here.
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The run not yet written, and the file offset of its first byte.
    run: Vec<u8>,
    start: i64,
    /// The previous write was a commit frame's header: the next one, its page, ends the commit.
    commit_page_next: bool,
}

fn real_file_offset() -> usize {
    size_of::<WalFile>().next_multiple_of(align_of::<u64>().max(align_of::<WalFile>()))
}

/// The default VFS's methods for `file`.
///
/// # Safety
/// `file` is a file the default VFS opened successfully and has not closed.
unsafe fn methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    &*(*file).pMethods
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = BASE.get().expect("registered before use").0;
    let Some(base_open) = (*base).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not a WAL: the default VFS's file object takes the whole allocation.
        return base_open(base, name, file, flags, out_flags);
    }
    let real = file.cast::<u8>().add(real_file_offset()).cast();
    let rc = base_open(base, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
        (*file).pMethods = ptr::null();
        return if rc == ffi::SQLITE_OK {
            ffi::SQLITE_CANTOPEN
        } else {
            rc
        };
    }
    ptr::write(
        file.cast::<WalFile>(),
        WalFile {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            real,
            run: Vec::new(),
            start: 0,
            commit_page_next: false,
        },
    );
    ffi::SQLITE_OK
}

/// # Safety
/// `file` was opened by [`open`] as a WAL (its methods are [`METHODS`]).
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

impl WalFile {
    /// Writes the run out (with as many `pwrite`s as the default VFS needs: one, bar a short
    /// write). On failure the run is dropped, as an unbuffered write's bytes would be lost.
    unsafe fn flush(&mut self) -> c_int {
        if self.run.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Some(write) = methods(self.real).xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let len = c_int::try_from(self.run.len()).expect("a run is at most MAX_RUN");
        #[cfg(test)]
        tests::count_write();
        let rc = write(self.real, self.run.as_ptr().cast(), len, self.start);
        self.run.clear();
        rc
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let flushed = wal.flush();
    let closed = methods(wal.real)
        .xClose
        .map_or(ffi::SQLITE_OK, |close| close(wal.real));
    ptr::drop_in_place(file.cast::<WalFile>());
    (*file).pMethods = ptr::null();
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let wal = wal(file);
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
    let run_end = wal.start + wal.run.len() as i64;
    if wal.run.is_empty() || offset != run_end || wal.run.len() + len > MAX_RUN {
        let rc = wal.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        if len > MAX_RUN {
            // Longer than any page: the default VFS's own write, as it came.
            return methods(wal.real)
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |write| {
                    write(wal.real, data, amount, offset)
                });
        }
        wal.start = offset;
    }
    wal.run.extend_from_slice(bytes);
    let ends_commit = std::mem::replace(
        &mut wal.commit_page_next,
        len == FRAME_HEADER && bytes[4..8] != [0; 4],
    );
    if ends_commit {
        wal.flush()
    } else {
        ffi::SQLITE_OK
    }
}

/// An operation of the default VFS that may look at the file: the run goes first.
macro_rules! flush_then {
    ($name:ident, $method:ident ( $($arg:ident : $ty:ty),* )) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let wal = wal(file);
            let rc = wal.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match methods(wal.real).$method {
                Some(method) => method(wal.real, $($arg),*),
                None => ffi::SQLITE_IOERR,
            }
        }
    };
}

flush_then!(read, xRead(data: *mut c_void, amount: c_int, offset: i64));
flush_then!(truncate, xTruncate(size: i64));
flush_then!(sync, xSync(flags: c_int));
flush_then!(file_size, xFileSize(size: *mut i64));
flush_then!(file_control, xFileControl(op: c_int, arg: *mut c_void));
flush_then!(lock, xLock(level: c_int));
flush_then!(unlock, xUnlock(level: c_int));
flush_then!(check_reserved_lock, xCheckReservedLock(out: *mut c_int));

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real).xSectorSize.map_or(4096, |size| size(real))
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let real = wal(file).real;
    methods(real)
        .xDeviceCharacteristics
        .map_or(0, |characteristics| characteristics(real))
}

/// Version 1: shared memory and memory-mapped access are the database file's, never the WAL's.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::cell::Cell;
    use std::path::Path;

    thread_local! {
        static WRITES: Cell<u64> = const { Cell::new(0) };
    }

    /// Counts a `pwrite` of a run on this thread (a test's connection runs on its thread).
    pub(super) fn count_write() {
        WRITES.with(|w| w.set(w.get() + 1));
    }

    fn writes() -> u64 {
        WRITES.with(Cell::get)
    }

    /// A connection through the buffer, as the writer's (WAL, no spill), and a table `t`.
    fn buffered(path: &Path) -> Connection {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, register().expect("vfs"))
            .expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA cache_spill = OFF; \
             PRAGMA wal_autocheckpoint = 0; CREATE TABLE IF NOT EXISTS t (n INTEGER, v BLOB)",
        )
        .expect("set up");
        conn
    }

    /// Inserts `rows` rows numbered from `first`, each with a blob of about a page, in one
    /// transaction.
    fn commit(conn: &Connection, first: i64, rows: i64) {
        conn.execute_batch("BEGIN").expect("begin");
        for n in first..first + rows {
            conn.execute("INSERT INTO t (n, v) VALUES (?1, zeroblob(4000))", [n])
                .expect("insert");
        }
        conn.execute_batch("COMMIT").expect("commit");
    }

    /// What `conn` reads of `t`: its rows and the sum of their numbers (each blob is checked).
    fn contents(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), coalesce(sum(n), 0), count(*) FILTER (WHERE v != zeroblob(4000)) \
             FROM t",
            [],
            |r| {
                assert_eq!(r.get::<_, i64>(2)?, 0, "every blob is as written");
                Ok((r.get(0)?, r.get(1)?))
            },
        )
        .expect("read")
    }

    fn integrity(conn: &Connection) -> String {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("check")
    }

    #[test]
    fn a_commit_reaches_the_wal_in_one_write_before_it_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = buffered(&dir.path().join("b.db"));
        commit(&conn, 0, 1);
        for rows in [1, 5, 20] {
            let before = writes();
            conn.execute_batch("BEGIN").expect("begin");
            for n in 0..rows {
                conn.execute("INSERT INTO t (n, v) VALUES (?1, zeroblob(4000))", [n])
                    .expect("insert");
            }
            assert_eq!(writes(), before, "nothing is written before the commit");
            conn.execute_batch("COMMIT").expect("commit");
            // `rows` pages and the ends of the table: at least twice as many writes unbuffered.
            assert_eq!(writes(), before + 1, "{rows} rows: one write");
        }
    }

    #[test]
    fn a_commit_larger_than_one_write_is_written_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("b.db");
        let conn = buffered(&path);
        let before = writes();
        commit(&conn, 0, 100);
        let frames = 100 * (4096 + 24);
        assert!(
            writes() - before >= (frames / MAX_RUN) as u64,
            "{} writes of at most {MAX_RUN} bytes",
            writes() - before
        );
        let other = Connection::open(&path).expect("open");
        assert_eq!(contents(&other), (100, (0..100).sum()));
        assert_eq!(integrity(&other), "ok");
    }

    #[test]
    fn every_commit_is_read_back_by_other_connections_and_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("b.db");
        let conn = buffered(&path);
        let other = Connection::open(&path).expect("open");
        let mut expected = (0, 0);
        for round in 0..30 {
            let (first, rows) = (expected.0, round % 7 + 1);
            commit(&conn, first, rows);
            expected = (
                first + rows,
                expected.1 + (first..first + rows).sum::<i64>(),
            );
            assert_eq!(
                contents(&other),
                expected,
                "round {round}: another connection"
            );
            if round % 10 == 9 {
                // The WAL starts over: its header and the next frames are one run.
                conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                    .expect("checkpoint");
            }
            // The other connection writes too, between the buffered connection's commits.
            other
                .execute("INSERT INTO t (n, v) VALUES (0, zeroblob(4000))", [])
                .expect("insert");
            expected.0 += 1;
            assert_eq!(contents(&conn), expected, "round {round}: the buffered one");
        }
        drop(conn);
        let reopened = buffered(&path);
        assert_eq!(contents(&reopened), expected);
        assert_eq!(integrity(&other), "ok");
    }
}
