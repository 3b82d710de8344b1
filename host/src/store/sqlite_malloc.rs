//! SQLite allocates with the C library's malloc, not with the process's `malloc`.
//!
//! Why: the `tollgate` binary makes mimalloc the process's `malloc` (mimalloc's `override`
//! feature; see `main.rs`), so that the plugins — whose Rust code allocates with the system
//! allocator, and whose C code (aws-lc) calls `malloc` — allocate as fast as the server does.
//! SQLite, statically linked into the server, would follow. But under mimalloc SQLite's page
//! caches, emptied and refilled by every reading connection on a thread of its own, held on to
//! memory: the server's resident memory after a million stored tokens went from 59 to 127 MiB,
//! past the 100 MiB it must stay under (`bench/run.sh`'s `tokens_1m`, 2026-12-06). With glibc's
//! malloc for SQLite alone it stayed at 60 MiB.
//!
//! How: the C library's functions are the definitions of `malloc` and the rest that come
//! *after* the executable's own (`dlsym(RTLD_NEXT, …)`), handed to SQLite with
//! `SQLITE_CONFIG_MALLOC`, which SQLite accepts only before its first use. In a process where
//! nothing overrides `malloc`, they are the very functions SQLite would have called anyway.

use rusqlite::ffi;
use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

type Malloc = unsafe extern "C" fn(usize) -> *mut c_void;
type Free = unsafe extern "C" fn(*mut c_void);
type Realloc = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type UsableSize = unsafe extern "C" fn(*mut c_void) -> usize;

/// The C library's allocator, as found once.
struct CMalloc {
    malloc: Malloc,
    free: Free,
    realloc: Realloc,
    usable_size: UsableSize,
}

static C_MALLOC: OnceLock<CMalloc> = OnceLock::new();

/// Makes SQLite allocate with the C library's malloc. Call it before anything in the process
/// uses SQLite: afterwards SQLite refuses (an error, and SQLite keeps the process's `malloc`).
pub fn use_libc_malloc() -> Result<(), String> {
    if C_MALLOC.get().is_none() {
        // SAFETY: each symbol is the C standard function of that name, with this type.
        let found = unsafe {
            CMalloc {
                malloc: std::mem::transmute::<*mut c_void, Malloc>(next(c"malloc")?),
                free: std::mem::transmute::<*mut c_void, Free>(next(c"free")?),
                realloc: std::mem::transmute::<*mut c_void, Realloc>(next(c"realloc")?),
                usable_size: std::mem::transmute::<*mut c_void, UsableSize>(next(
                    c"malloc_usable_size",
                )?),
            }
        };
        let _ = C_MALLOC.set(found);
    }
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to sqlite3_mem_methods, which SQLite copies
    // before returning; it checks itself that it is not yet initialised (SQLITE_MISUSE if so).
    match unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) } {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(format!(
            "SQLite did not take the C library's malloc (error {rc}): it was already in use"
        )),
    }
}

/// The definition of `symbol` after the executable's own.
fn next(symbol: &CStr) -> Result<*mut c_void, String> {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only looks the symbol up.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, symbol.as_ptr()) };
    if found.is_null() {
        Err(format!("the C library's {symbol:?} was not found"))
    } else {
        Ok(found)
    }
}

fn c_malloc() -> &'static CMalloc {
    C_MALLOC
        .get()
        .expect("found before SQLite is given these functions")
}

// SQLite never asks for fewer than one byte; a negative size would fail as no memory.
unsafe extern "C" fn x_malloc(size: c_int) -> *mut c_void {
    usize::try_from(size).map_or(std::ptr::null_mut(), |size| (c_malloc().malloc)(size))
}

unsafe extern "C" fn x_free(block: *mut c_void) {
    (c_malloc().free)(block)
}

unsafe extern "C" fn x_realloc(block: *mut c_void, size: c_int) -> *mut c_void {
    usize::try_from(size).map_or(std::ptr::null_mut(), |size| {
        (c_malloc().realloc)(block, size)
    })
}

/// The size SQLite may use of a block: at least what it asked for.
unsafe extern "C" fn x_size(block: *mut c_void) -> c_int {
    if block.is_null() {
        return 0;
    }
    c_int::try_from((c_malloc().usable_size)(block)).unwrap_or(c_int::MAX)
}

/// What SQLite would be given for `size` bytes: malloc rounds to 8 at least.
unsafe extern "C" fn x_roundup(size: c_int) -> c_int {
    size.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}
