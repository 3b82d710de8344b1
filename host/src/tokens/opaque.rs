//! Opaque tokens, and the key each token's row is stored under.
//!
//! A token is found by a key derived from it, and the database keeps only that key. An HMAC is
//! uniformly random, so a key that is nothing but the HMAC puts every new token on a random leaf
//! of the key's B-tree: each grant dirtied a page of its own per token, and every commit wrote
//! (and a checkpoint copied back) one 4 KiB page per token, besides splitting pages all over
//! the index. So an opaque token starts with a *sequence*: 8 bytes, big-endian, of the
//! microseconds since 1970 at minting, kept strictly increasing within the process. The key is
//! that sequence in hex followed by the token's HMAC, and keys of new tokens — from every host,
//! whose clocks roughly agree — land at the end of the index, a few per leaf.
//!
//! The sequence is no secret and needs none: it is the time the token was issued, which its
//! holder knows anyway. The 256 random bits that follow carry the token's strength, and the
//! HMAC of the whole token keeps it unguessable from the database. Any other token — a JWT
//! access token, or an opaque token of 32 bytes minted before the sequence existed — is keyed
//! by its HMAC alone, so tokens stored earlier are still found.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::secret::{push_hex, random_bytes, ServerSecret};

/// Bytes of the sequence at the start of an opaque token.
const SEQUENCE_LEN: usize = 8;
/// Random bytes after it.
const RANDOM_LEN: usize = 32;
/// A token's length in bytes, before base64url.
const TOKEN_LEN: usize = SEQUENCE_LEN + RANDOM_LEN;

/// The last sequence handed out by this process.
static LAST: AtomicU64 = AtomicU64::new(0);

/// The next sequence: the microseconds since 1970, or one more than the last if the clock has
/// not moved on (or went back). Refresh-token families start with one too (`tokens::service`).
pub(super) fn next_sequence() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A new opaque access or refresh token: base64url, without padding, of the sequence and 256
/// random bits (54 characters).
pub fn mint() -> String {
    let mut token = [0u8; TOKEN_LEN];
    token[..SEQUENCE_LEN].copy_from_slice(&next_sequence().to_be_bytes());
    token[SEQUENCE_LEN..].copy_from_slice(&random_bytes::<RANDOM_LEN>());
    URL_SAFE_NO_PAD.encode(token)
}

/// The key `token`'s row is stored under: the sequence of an opaque token in hex, then the
/// token's `ServerSecret::hash`; for any other token the hash alone.
pub fn key(secret: &ServerSecret, token: &str) -> String {
    let hash = secret.hash(token);
    let mut decoded = [0u8; TOKEN_LEN];
    match URL_SAFE_NO_PAD.decode_slice(token, &mut decoded) {
        Ok(TOKEN_LEN) => {
            let mut key = String::with_capacity(2 * SEQUENCE_LEN + hash.len());
            push_hex(&mut key, &decoded[..SEQUENCE_LEN]);
            key + &hash
        }
        _ => hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_their_keys_grow() {
        let secret = ServerSecret::from_bytes(&[3; 32]);
        let tokens: Vec<String> = (0..1000).map(|_| mint()).collect();
        let keys: Vec<String> = tokens.iter().map(|t| key(&secret, t)).collect();
        for (token, key) in tokens.iter().zip(&keys) {
            assert_eq!(token.len(), 54);
            assert_eq!(key.len(), 16 + 64);
            let decoded = URL_SAFE_NO_PAD.decode(token).expect("base64url");
            assert_eq!(key[..16], hex::encode(&decoded[..8]), "the sequence");
            assert_eq!(key[16..], secret.hash(token), "the HMAC of the whole token");
        }
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        let mut distinct = tokens.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), tokens.len());
    }

    #[test]
    fn other_tokens_are_keyed_by_their_hash() {
        let secret = ServerSecret::from_bytes(&[3; 32]);
        let legacy = crate::secret::random_token();
        for token in [legacy.as_str(), "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "", "!!!"] {
            assert_eq!(key(&secret, token), secret.hash(token));
        }
        // 54 characters that are not base64url: no sequence is read from them.
        let junk = "#".repeat(54);
        assert_eq!(key(&secret, &junk), secret.hash(&junk));
    }

    #[test]
    fn the_sequence_never_repeats_across_threads() {
        let seen: Vec<u64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5000).map(|_| next_sequence()).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("thread"))
                .collect()
        });
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len());
    }
}
