//! HTTP Basic credentials (RFC 7617) as RFC 6749 §2.3.1 uses them: the client id and secret are
//! form-urlencoded before being joined with `:` and base64-encoded, so they are decoded after
//! splitting.

use base64::{engine::general_purpose::STANDARD, Engine};

/// The user and password of an `Authorization: Basic …` header, if it is one and well formed.
pub fn credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let value = authorization?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((url_decode(user), url_decode(password)))
}

/// Whether the header uses the Basic scheme at all (well formed or not).
pub fn is_basic(authorization: Option<&str>) -> bool {
    authorization
        .and_then(|v| v.trim().split(' ').next())
        .is_some_and(|s| s.eq_ignore_ascii_case("basic"))
}

/// Undoes form-urlencoding: `+` is a space, `%XX` a byte (invalid UTF-8 replaced). Any other
/// character stands for itself, `&` and `=` included, which a client that did not encode may
/// send.
fn url_decode(s: &str) -> String {
    if !s.contains(['+', '%']) {
        return s.to_owned();
    }
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    #[test]
    fn decodes_rfc_6749_basic_credentials() {
        assert_eq!(
            credentials(Some(&header("c1:s3cret"))),
            Some(("c1".into(), "s3cret".into()))
        );
        // ':' in the secret survives, and %-escapes are undone (RFC 6749 §2.3.1).
        assert_eq!(
            credentials(Some(&header("c%3A1:a:b%2Bc"))),
            Some(("c:1".into(), "a:b+c".into()))
        );
        // Characters a client should have encoded but did not stand for themselves.
        assert_eq!(
            credentials(Some(&header("c1:a&b=c d"))),
            Some(("c1".into(), "a&b=c d".into()))
        );
        assert_eq!(
            credentials(Some(&format!("basic  {}", STANDARD.encode("a:b")))),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(credentials(Some("Bearer abc")), None);
        assert_eq!(credentials(Some("Basic !!!")), None);
        assert_eq!(credentials(Some(&header("no-colon"))), None);
        assert_eq!(credentials(None), None);
        assert!(is_basic(Some("Basic !!!")));
        assert!(!is_basic(Some("Bearer x")));
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        /// `Basic` credentials as RFC 6749 §2.3.1 builds them: each part form-urlencoded.
        fn encoded(id: &[u8], secret: &[u8]) -> String {
            let enc = |b: &[u8]| form_urlencoded::byte_serialize(b).collect::<String>();
            header(&format!("{}:{}", enc(id), enc(secret)))
        }

        proptest! {
            #[test]
            fn never_panics(value in "(?s).{0,256}", bytes in vec(any::<u8>(), 0..256)) {
                for header in [value.clone(), format!("Basic {}", STANDARD.encode(&bytes))] {
                    if credentials(Some(&header)).is_some() {
                        prop_assert!(is_basic(Some(&header)));
                    }
                }
            }

            #[test]
            fn round_trips_id_and_secret(id in "(?s).{0,64}", secret in "(?s).{0,64}") {
                prop_assert_eq!(
                    credentials(Some(&encoded(id.as_bytes(), secret.as_bytes()))),
                    Some((id, secret))
                );
            }

            #[test]
            fn round_trips_arbitrary_bytes_as_utf8_lossy(
                id in vec(any::<u8>(), 0..64),
                secret in vec(any::<u8>(), 0..64),
            ) {
                prop_assert_eq!(
                    credentials(Some(&encoded(&id, &secret))),
                    Some((
                        String::from_utf8_lossy(&id).into_owned(),
                        String::from_utf8_lossy(&secret).into_owned()
                    ))
                );
            }
        }
    }
}
