//! `application/x-www-form-urlencoded` bodies, bounded: RFC 6749 §3.2 says parameters must not
//! be repeated, so a repeated one is `invalid_request`, as are more than [`MAX_PARAMS`]
//! parameters, an empty name, and a body that is not UTF-8.

use std::collections::BTreeMap;
use tollgate_core::OAuthError;

/// More parameters than any OAuth request has, far fewer than an attacker would like.
pub const MAX_PARAMS: usize = 64;

/// Parses a form body into unique parameters.
pub fn parse(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    if std::str::from_utf8(body).is_err() {
        return Err(OAuthError::invalid_request("the form body is not UTF-8"));
    }
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if name.is_empty() {
            continue;
        }
        if params.len() == MAX_PARAMS {
            return Err(OAuthError::invalid_request(format!(
                "more than {MAX_PARAMS} parameters"
            )));
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
    }
    Ok(params)
}

/// Whether the content type is a form (parameters such as `charset` allowed).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::ErrorCode;

    #[test]
    fn parses_and_decodes() {
        let p = parse(b"grant_type=client_credentials&scope=a%20b+c&x=").unwrap();
        assert_eq!(p["grant_type"], "client_credentials");
        assert_eq!(p["scope"], "a b c");
        assert_eq!(p["x"], "");
    }

    #[test]
    fn refuses_repeats_floods_and_non_utf8() {
        let e = parse(b"scope=a&scope=b").unwrap_err();
        assert_eq!(
            (e.code, e.description.as_str()),
            (ErrorCode::InvalidRequest, "parameter scope is repeated")
        );
        let flood: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(
            parse(flood.join("&").as_bytes()).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse(b"a=\xff").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn knows_a_form_content_type() {
        assert!(is_form(Some("application/x-www-form-urlencoded")));
        assert!(is_form(Some(
            "application/x-www-form-urlencoded;charset=UTF-8"
        )));
        assert!(is_form(Some(
            "Application/X-WWW-Form-Urlencoded ; charset=ISO-8859-1"
        )));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
    }

    mod props {
        use super::*;
        use proptest::collection::{btree_map, vec};
        use proptest::prelude::*;

        /// Any text, newlines and `&`, `=`, `%`, `+` included.
        fn text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
            vec(any::<char>(), len).prop_map(String::from_iter)
        }

        proptest! {
            #[test]
            fn never_panics_and_stays_bounded(body in vec(any::<u8>(), 0..1024)) {
                if let Ok(params) = parse(&body) {
                    prop_assert!(params.len() <= MAX_PARAMS);
                    prop_assert!(params.keys().all(|name| !name.is_empty()));
                }
            }

            #[test]
            fn round_trips_encoded_pairs(
                params in btree_map(text(1..8), text(0..16), 0..=MAX_PARAMS),
            ) {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&params)
                    .finish();
                prop_assert_eq!(parse(body.as_bytes()).unwrap(), params);
            }

            #[test]
            fn refuses_any_repeat(
                params in btree_map(text(1..8), text(0..8), 1..16),
                pick in any::<prop::sample::Index>(),
                value in text(0..8),
            ) {
                let repeated = pick.get(&params.keys().collect::<Vec<_>>()).to_string();
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&params)
                    .append_pair(&repeated, &value)
                    .finish();
                let e = parse(body.as_bytes()).unwrap_err();
                prop_assert_eq!(e.code, ErrorCode::InvalidRequest);
            }
        }
    }
}
