//! The super admin's credentials.
//!
//! With `[super_admin] password` set, that is the password. Without it, a random one is made at
//! first start: its argon2 hash goes into the database (so every host sharing it agrees), and
//! the plaintext is written once to `data_dir/admin-password` (mode 0600) and printed once.
//!
//! Argon2 is slow on purpose (tens of milliseconds, 19 MiB), which is right for a guess and
//! wrong for a script registering ten thousand clients with the right password: a password
//! that passed argon2 is remembered for [`REMEMBER`] as an HMAC under a key made at start-up
//! and never stored (the password itself is not kept), and checked against it in constant
//! time. Only a password that was right is remembered, so a wrong one always costs argon2.

use super::throttle::LoginThrottle;
use crate::store::Store;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::distributions::Alphanumeric;
use rand::Rng;
use ring::hmac;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a password that passed argon2 is accepted again without argon2.
pub const REMEMBER: Duration = Duration::from_secs(60);

const HASH_KEY: &str = "super_admin_password_hash";
const PASSWORD_FILE: &str = "admin-password";

/// The super admin's name and password hash (PHC string).
#[derive(Clone)]
pub struct SuperAdmin {
    pub username: String,
    hash: String,
    throttle: Arc<LoginThrottle>,
    remembered: Arc<Remembered>,
}

/// The last password that passed argon2, as an HMAC under a per-process random key, and when.
struct Remembered {
    /// `None` when the system gave no randomness: then nothing is remembered.
    key: Option<hmac::Key>,
    last: Mutex<Option<(hmac::Tag, Instant)>>,
    /// Argon2 checks made (the tests count them).
    argon2_checks: AtomicU64,
}

impl Remembered {
    fn new() -> Remembered {
        let rng = ring::rand::SystemRandom::new();
        Remembered {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng).ok(),
            last: Mutex::new(None),
            argon2_checks: AtomicU64::new(0),
        }
    }

    /// Whether `password` is the one remembered at most [`REMEMBER`] before `now`; compared
    /// in constant time.
    fn knows(&self, password: &str, now: Instant) -> bool {
        let Some(key) = &self.key else { return false };
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|(tag, at)| {
            now.saturating_duration_since(at) < REMEMBER
                && hmac::verify(key, password.as_bytes(), tag.as_ref()).is_ok()
        })
    }

    fn remember(&self, password: &str, now: Instant) {
        if let Some(key) = &self.key {
            let tag = hmac::sign(key, password.as_bytes());
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((tag, now));
        }
    }
}

/// What [`SuperAdmin::login`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Granted,
    Denied,
    /// Too many failures from this address: refused unchecked; retry after this many seconds.
    Throttled(u64),
}

impl std::fmt::Debug for SuperAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuperAdmin")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SuperAdmin {
    fn new(username: &str, hash: String) -> SuperAdmin {
        SuperAdmin {
            username: username.to_string(),
            hash,
            throttle: Arc::new(LoginThrottle::new(0)),
            remembered: Arc::new(Remembered::new()),
        }
    }

    /// Limits failed logins to `per_minute` per client address (0: no limit).
    pub fn with_login_limit(mut self, per_minute: u32) -> SuperAdmin {
        self.throttle = Arc::new(LoginThrottle::new(per_minute));
        self
    }

    /// A login attempt from `peer`: checked unless the address failed too often lately.
    pub async fn login(&self, peer: Option<IpAddr>, username: &str, password: &str) -> Login {
        if let Some(wait) = self.throttle.blocked(peer, Instant::now()) {
            return Login::Throttled(wait);
        }
        if self.verify(username, password).await {
            self.throttle.succeeded(peer);
            Login::Granted
        } else {
            self.throttle.failed(peer, Instant::now());
            Login::Denied
        }
    }

    /// Whether `username`/`password` are the super admin's. Argon2 is constant-time in the
    /// password and runs for every attempt, whatever the username, so a wrong username answers
    /// as slowly as a wrong password — except for the right password passed within
    /// [`REMEMBER`] (see the module doc); the remembered HMAC is checked whatever the username,
    /// so that check costs every attempt the same too. Argon2 is deliberately costly, so it
    /// runs on a thread of its own ([`argon2_check`]) rather than on a worker that other
    /// requests wait for.
    pub async fn verify(&self, username: &str, password: &str) -> bool {
        self.verify_at(username, password, Instant::now()).await
    }

    async fn verify_at(&self, username: &str, password: &str, now: Instant) -> bool {
        let name_ok = constant_time_eq(username.as_bytes(), self.username.as_bytes());
        let known = self.remembered.knows(password, now);
        if name_ok && known {
            return true;
        }
        self.remembered
            .argon2_checks
            .fetch_add(1, Ordering::Relaxed);
        let hash_ok = argon2_check(self.hash.clone(), password.to_owned()).await;
        if name_ok && hash_ok {
            self.remembered.remember(password, now);
        }
        name_ok & hash_ok
    }

    /// Whether Basic credentials name the super admin (and so are checked as the super admin's,
    /// not as a client's): the username is not a secret.
    pub fn is_named(&self, username: &str) -> bool {
        username == self.username
    }
}

/// One argon2 check: `password` against the PHC string `hash`.
type Check = (String, String, oneshot::Sender<bool>);

/// Checks `password` against `hash` on the one argon2 thread, in turn with other checks.
///
/// Each check allocates argon2's working memory (19 MiB with the default parameters), and
/// glibc keeps freed memory in the arena of the thread that used it: checks spread over the
/// blocking pool's threads left up to 19 MiB behind on each of them (2.9 GiB after 600 admin
/// calls, 16 at a time). One thread keeps one such block. Checks queue behind each other,
/// which also bounds the CPU that password guessing can take.
async fn argon2_check(hash: String, password: String) -> bool {
    static CHECKS: OnceLock<Mutex<mpsc::Sender<Check>>> = OnceLock::new();
    let checks = CHECKS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Check>();
        let spawned = std::thread::Builder::new()
            .name("argon2".into())
            .spawn(move || {
                for (hash, password, reply) in rx {
                    let ok = PasswordHash::new(&hash).is_ok_and(|h| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &h)
                            .is_ok()
                    });
                    let _ = reply.send(ok);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the argon2 thread: {e}");
        }
        Mutex::new(tx)
    });
    let (reply, answer) = oneshot::channel();
    let sent = checks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((hash, password, reply));
    // No thread: every check fails closed.
    sent.is_ok() && answer.await.unwrap_or(false)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hash(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the admin password: {e}"))
}

/// The super admin, making and announcing a password at first start when none is configured.
pub async fn bootstrap(
    username: &str,
    configured: Option<&str>,
    store: &Store,
    data_dir: &Path,
) -> Result<SuperAdmin, String> {
    if let Some(password) = configured {
        return Ok(SuperAdmin::new(username, hash(password)?));
    }
    if let Some(hash) = store.setting(HASH_KEY).await.map_err(|e| e.to_string())? {
        return Ok(SuperAdmin::new(username, hash));
    }
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let candidate = hash(&password)?;
    // Two hosts starting at once: the first hash stored wins, and only its host announces.
    let stored = store
        .setting_get_or_insert(HASH_KEY, &candidate)
        .await
        .map_err(|e| e.to_string())?;
    if stored == candidate {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let file = data_dir.join(PASSWORD_FILE);
        crate::fsutil::write_private(&file, format!("{password}\n").as_bytes())?;
        // Printed once, on purpose, to the terminal — never through the log.
        eprintln!(
            "Generated a password for super admin {username:?}: {password}\n(also in {}, mode 0600; set [super_admin] password to choose your own)",
            file.display()
        );
    }
    Ok(SuperAdmin::new(username, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(admin: &SuperAdmin) -> u64 {
        admin.remembered.argon2_checks.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_right_password_is_remembered_for_a_while_a_wrong_one_never() {
        let admin = SuperAdmin::new("admin", hash("s3cret").expect("hash"));
        let t0 = Instant::now();
        assert!(admin.verify_at("admin", "s3cret", t0).await);
        assert_eq!(checks(&admin), 1);
        // Within REMEMBER: no argon2.
        assert!(admin.verify_at("admin", "s3cret", t0 + REMEMBER / 2).await);
        assert_eq!(checks(&admin), 1);
        // Wrong passwords and wrong names are checked, and refused, every time.
        assert!(!admin.verify_at("admin", "s3creT", t0).await);
        assert!(!admin.verify_at("admin", "s3creT", t0).await);
        assert!(!admin.verify_at("root", "s3cret", t0).await);
        assert_eq!(checks(&admin), 4);
        // After REMEMBER the right password costs argon2 again (and is remembered anew).
        let later = t0 + REMEMBER;
        assert!(admin.verify_at("admin", "s3cret", later).await);
        assert_eq!(checks(&admin), 5);
        assert!(admin.verify_at("admin", "s3cret", later).await);
        assert_eq!(checks(&admin), 5);
    }
}
