//! The server secret: 32 random bytes in `data_dir/server-secret` (mode 0600), made at first
//! start. Keys for separate purposes are derived from it with HKDF-SHA-256, so one leaked key
//! says nothing about another:
//!
//! - the **hash key** (HMAC-SHA-256): client secrets and tokens are stored as HMACs under it.
//!   Both are server-generated with ≥ 256 bits of randomness, so a keyed fast hash is as strong
//!   as a password hash here, and a stolen database alone does not allow even a guess to be
//!   checked;
//! - the **key-encryption key** (AES-256-GCM): server signing keys are stored encrypted with it.
//!
//! Several hosts sharing one database must share this file (copy it to each host's data dir
//! before their first start). A host with another secret could neither check the client
//! secrets nor open the signing keys the others stored, so the first host records a
//! fingerprint of its secret in the database and a host whose secret differs refuses to start
//! ([`ServerSecret::check_shared`]).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};
use std::path::Path;

use crate::store::Store;

const FILE: &str = "server-secret";
/// The setting holding the fingerprint of the secret the database was set up with.
const FINGERPRINT_SETTING: &str = "server_secret_fingerprint";
const LEN: usize = 32;

/// Keys derived from the server secret.
pub struct ServerSecret {
    hash_key: hmac::Key,
    kek: LessSafeKey,
}

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

/// `N` random bytes for a token, an id or a nonce, from rand's `ThreadRng`: a CSPRNG
/// (ChaCha12) per thread, seeded from the operating system's generator and reseeded from it
/// after every 64 KiB it hands out and in a forked child. Asking the system for each token
/// instead (a `getrandom` call for the token and one for its family) was 1.5 % of a
/// client_credentials request's CPU. The server secret itself comes straight from the system
/// ([`ServerSecret::load_or_create`]).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// `bytes` in lower-case hex, appended to `out`. (`hex::encode` collects an iterator of `char`s
/// into a new `String`: 0.8 % of a client_credentials request, which hex-encodes four values.)
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for chunk in bytes.chunks(32) {
        let mut digits = [0u8; 64];
        let digits = &mut digits[..chunk.len() * 2];
        hex::encode_to_slice(chunk, digits).expect("two digits per byte");
        out.push_str(std::str::from_utf8(digits).expect("hex digits are ASCII"));
    }
}

/// A random token of 256 bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(prk: &hkdf::Prk, purpose: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let info = [purpose];
    // The output length (32) is far below HKDF-SHA-256's limit, so neither call can fail.
    prk.expand(&info, Len(32))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF expand of 32 bytes");
    out
}

impl ServerSecret {
    /// Loads `data_dir/server-secret`, making it at first start.
    pub fn load_or_create(data_dir: &Path) -> Result<ServerSecret, String> {
        let path = data_dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|e| format!("{}: {e}", data_dir.display()))?;
                let mut fresh = [0u8; LEN];
                SystemRandom::new()
                    .fill(&mut fresh)
                    .map_err(|_| "the system random number generator failed".to_string())?;
                crate::fsutil::write_private(&path, &fresh)?;
                fresh.to_vec()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if bytes.len() != LEN {
            return Err(format!(
                "{}: expected {LEN} bytes, found {} (damaged? restore it from a backup)",
                path.display(),
                bytes.len()
            ));
        }
        Ok(ServerSecret::from_bytes(&bytes))
    }

    /// Makes sure every host on one database uses the same secret: records this secret's
    /// fingerprint (an HMAC of a fixed label under the hash key: it tells nothing about the
    /// secret) when the database has none, and refuses a secret whose fingerprint differs.
    pub async fn check_shared(&self, store: &Store, data_dir: &Path) -> Result<(), String> {
        let mine = self.hash("tollgate server secret fingerprint");
        let stored = store
            .setting_get_or_insert(FINGERPRINT_SETTING, &mine)
            .await
            .map_err(|e| format!("cannot check it against the database: {e}"))?;
        if stored == mine {
            return Ok(());
        }
        Err(format!(
            "{} is not the secret this database was set up with: every host sharing a \
             database needs the same file — copy it from a host already using the database",
            data_dir.join(FILE).display()
        ))
    }

    /// From the raw secret (tests).
    pub fn from_bytes(secret: &[u8]) -> ServerSecret {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tollgate server secret v1").extract(secret);
        let hash_key = hmac::Key::new(hmac::HMAC_SHA256, &derive(&prk, b"hash"));
        let kek = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &derive(&prk, b"key-encryption"))
                .expect("a 32-byte AES-256 key"),
        );
        ServerSecret { hash_key, kek }
    }

    /// The stored form of a client secret or token: hex HMAC-SHA-256 under the hash key.
    pub fn hash(&self, value: &str) -> String {
        let mut hash = String::with_capacity(64);
        push_hex(
            &mut hash,
            hmac::sign(&self.hash_key, value.as_bytes()).as_ref(),
        );
        hash
    }

    /// Whether `value` hashes to `stored`, in constant time.
    pub fn verify(&self, value: &str, stored: &str) -> bool {
        // Decoded onto the stack: `hex::decode` collects an iterator into a `Vec`, ~2.4k
        // instructions a client_secret_basic request.
        let mut tag = [0u8; 32];
        hex::decode_to_slice(stored, &mut tag).is_ok()
            && hmac::verify(&self.hash_key, value.as_bytes(), &tag).is_ok()
    }

    /// Encrypts `plaintext` (AES-256-GCM, random nonce, `context` authenticated): base64url of
    /// nonce ‖ ciphertext ‖ tag.
    pub fn encrypt(&self, plaintext: &[u8], context: &str) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buffer = plaintext.to_vec();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .expect("AES-GCM sealing of a small buffer");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decrypts what [`ServerSecret::encrypt`] made with the same `context`.
    pub fn decrypt(&self, sealed: &str, context: &str) -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| "sealed value is not base64url".to_string())?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err("sealed value too short".into());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
        let mut buffer = rest.to_vec();
        let plain = self
            .kek
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| {
                "cannot decrypt (was data/server-secret replaced or not copied to this host?)"
                    .to_string()
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_secret() {
        let a = ServerSecret::from_bytes(&[1; 32]);
        let b = ServerSecret::from_bytes(&[2; 32]);
        let h = a.hash("s3cret");
        assert_eq!(h.len(), 64);
        assert!(a.verify("s3cret", &h));
        assert!(!a.verify("s3creT", &h));
        assert!(!b.verify("s3cret", &h));
        assert!(!a.verify("s3cret", "zz"));
        assert!(!a.verify("s3cret", &h[..62]), "a stored hash too short");
        assert!(
            !a.verify("s3cret", &format!("{h}00")),
            "a stored hash too long"
        );
        assert_ne!(a.hash("x"), b.hash("x"));
    }

    #[test]
    fn sealing_round_trips_and_binds_the_context() {
        let s = ServerSecret::from_bytes(&[7; 32]);
        let sealed = s.encrypt(b"private key", "signing-key:carbon.super:k1");
        assert_eq!(
            s.decrypt(&sealed, "signing-key:carbon.super:k1").unwrap(),
            b"private key"
        );
        assert!(s.decrypt(&sealed, "signing-key:acme:k1").is_err());
        assert!(ServerSecret::from_bytes(&[8; 32])
            .decrypt(&sealed, "signing-key:carbon.super:k1")
            .is_err());
    }

    #[test]
    fn the_file_is_made_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let one = ServerSecret::load_or_create(dir.path()).unwrap();
        let two = ServerSecret::load_or_create(dir.path()).unwrap();
        assert_eq!(one.hash("x"), two.hash("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(FILE), b"short").unwrap();
        assert!(ServerSecret::load_or_create(dir.path())
            .unwrap_err()
            .contains("expected 32 bytes"));
    }

    #[test]
    fn random_tokens_are_256_bits() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, random_token());
    }

    #[test]
    fn push_hex_is_hex_encode() {
        for len in [0, 1, 16, 31, 32, 33, 64, 100] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut out = String::from("x");
            push_hex(&mut out, &bytes);
            assert_eq!(out, format!("x{}", hex::encode(&bytes)));
        }
    }
}
