//! Shared by the end-to-end tests: the workspace, building plugins out of tree, throwaway conf
//! directories, and running the real `tollgate` binary.
#![allow(dead_code)]

pub mod api;
pub mod idp;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in unix seconds (for the claims of test assertions).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The `tollgate` binary cargo built for these tests.
pub fn tollgate() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tollgate"))
}

/// One build at a time: variants share a target dir and an output file name.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds the cdylib `lib` of the out-of-tree workspace at `manifest` (relative to the root),
/// with `features`, and with `panic = "abort"` when asked; returns a private copy of the `.so`
/// in `dest`, named `name`.
pub fn build_plugin(
    manifest: &str,
    lib: &str,
    features: &[&str],
    panic_abort: bool,
    dest: &Path,
    name: &str,
) -> PathBuf {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let target = root().join("target").join("plugin-fixtures");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(root().join(manifest))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    if panic_abort {
        cmd.env("CARGO_PROFILE_DEV_PANIC", "abort");
    }
    let status = cmd.status().expect("cargo runs");
    assert!(status.success(), "building {manifest} failed");
    let built = target
        .join("debug")
        .join(format!("lib{lib}{}", std::env::consts::DLL_SUFFIX));
    std::fs::create_dir_all(dest).expect("dest dir");
    let copy = dest.join(name);
    std::fs::copy(&built, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
    copy
}

/// The bundled plugins (`plugins/*`), built once per test binary, copied into `dropins`.
pub fn bundled_plugins(dropins: &Path) {
    static BUILT: std::sync::OnceLock<Vec<(PathBuf, String)>> = std::sync::OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = root().join("target/plugin-fixtures/bundled");
        ["jwks-validator", "jwt-bearer", "private-key-jwt"]
            .iter()
            .map(|name| {
                let lib = format!("tollgate_{}", name.replace('-', "_"));
                let file = format!("lib{lib}.so");
                let path = build_plugin(
                    &format!("plugins/{name}/Cargo.toml"),
                    &lib,
                    &[],
                    false,
                    &dir,
                    &file,
                );
                (path, file)
            })
            .collect()
    });
    std::fs::create_dir_all(dropins).expect("dropins");
    for (path, file) in built {
        std::fs::copy(path, dropins.join(file)).expect("copy a bundled plugin");
    }
}

/// The example X-API-Key authenticator, built out of tree.
pub fn api_key_plugin(dest: &Path) -> PathBuf {
    build_plugin(
        "examples/api-key-authenticator/Cargo.toml",
        "api_key_authenticator",
        &[],
        false,
        dest,
        "libapi_key_authenticator.so",
    )
}

/// The example GitHub Actions grant handler (docs/plugins.md), built out of tree.
pub fn github_actions_plugin(dest: &Path) -> PathBuf {
    build_plugin(
        "examples/github-actions-grant/Cargo.toml",
        "github_actions_grant",
        &[],
        false,
        dest,
        "libgithub_actions_grant.so",
    )
}

/// The example pinned-key JWT validator (docs/plugins.md), built out of tree.
pub fn pinned_key_plugin(dest: &Path) -> PathBuf {
    build_plugin(
        "examples/pinned-key-validator/Cargo.toml",
        "pinned_key_validator",
        &[],
        false,
        dest,
        "libpinned_key_validator.so",
    )
}

/// A loopback TCP port that was free a moment ago, for a server whose URL must be known before
/// it starts (its `base_url`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The loader-test plugin (`test-grant`), built out of tree.
pub fn test_plugin(dest: &Path) -> PathBuf {
    build_plugin(
        "tests/fixtures/test-plugin/Cargo.toml",
        "tollgate_test_plugin",
        &[],
        false,
        dest,
        "libtollgate_test_plugin.so",
    )
}

/// A conf dir `base/conf` with the given deployment.toml and identity.xml. Paths in them are
/// relative to `base`.
pub fn conf_dir(base: &Path, deployment: &str, identity: &str) -> PathBuf {
    let conf = base.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(conf.join("deployment.toml"), deployment).expect("deployment.toml");
    std::fs::write(conf.join("identity.xml"), identity).expect("identity.xml");
    conf
}

/// An identity.xml with these `EventListener` elements.
pub fn identity_with(listeners: &str) -> String {
    format!("<Server>\n  <EventListeners>\n{listeners}\n  </EventListeners>\n</Server>\n")
}

/// A `tollgate serve` process and the URL it announced.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `tollgate serve --conf conf` and waits for its "listening on" line.
    pub fn start(conf: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(tollgate());
        cmd.arg("serve")
            .arg("--conf")
            .arg(conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("tollgate starts");
        match Server::attach(&mut child) {
            Some(url) => Server { child, url },
            None => {
                let _ = child.kill();
                let status = child.wait();
                panic!("tollgate did not announce readiness: {status:?}");
            }
        }
    }

    /// Waits (up to 60 s) for a spawned server's "listening on" line; its URL.
    pub fn attach(child: &mut Child) -> Option<String> {
        let stdout = child.stdout.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Tollgate listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("tollgate did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate ARGS…` to completion: (success, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(tollgate());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("tollgate runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
