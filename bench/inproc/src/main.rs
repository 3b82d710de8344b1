//! `tollgate-inproc serve --conf DIR`: `tollgate serve`, with the bundled plugins (jwt-bearer,
//! private-key-jwt, jwks-validator) compiled in instead of loaded from dropins/.
//!
//! Not a way to deploy Tollgate: the bundled components are plugins, and the server loads them
//! through the plugin ABI like any other. This binary exists to measure what that costs them:
//! `INPROC=1 ./bench/load.sh private_key_jwt` runs a scenario against it, with the same
//! configuration and an empty dropins/, to compare with the same run against `tollgate`.

use std::path::PathBuf;
use std::process::ExitCode;
use tollgate_host::app;

/// The allocator `tollgate` uses (the process's `malloc` too, SQLite kept on the C library's),
/// so that the two binaries differ only in how the plugins are reached.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let conf = match args.as_slice() {
        [serve, flag, dir] if serve == "serve" && flag == "--conf" => PathBuf::from(dir),
        _ => return fail("usage: tollgate-inproc serve --conf DIR"),
    };
    let sqlite_malloc = tollgate_host::store::sqlite_malloc::use_libc_malloc();
    app::init_logging();
    if let Err(e) = sqlite_malloc {
        return fail(&e);
    }
    let linked = [
        tollgate_jwt_bearer::plugin(),
        tollgate_private_key_jwt::plugin(),
        tollgate_jwks_validator::plugin(),
    ]
    .into_iter()
    .flat_map(|p| p.into_registrations())
    .collect();
    match app::serve(&conf, linked) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tollgate-inproc: {message}");
    ExitCode::FAILURE
}
