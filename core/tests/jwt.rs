//! Properties of the JWT helpers every component uses on untrusted input: `peek_claims` and
//! `peek_issuer` (the unverified reads that find whom to verify against) and the claim rules
//! (`TimeRules`, `numeric_date`, `audience_contains`). fuzz/ has the coverage-guided counterparts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tollgate_core::{
    audience_contains, numeric_date, peek_claims, peek_issuer, HostSettings, TimeRules,
    MAX_JWT_BYTES,
};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// JSON values that survive a round trip exactly (no floats).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "(?s).{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(
        prop_oneof![
            proptest::sample::select(vec!["iss", "sub", "aud", "exp", "nbf", "iat", "jti"])
                .prop_map(str::to_owned),
            "(?s).{0,8}",
        ],
        json(),
        0..8,
    )
    .prop_map(|m| m.into_iter().collect())
}

/// A NumericDate claim as a token might carry it: any number, or not a number.
fn date() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        any::<i64>().prop_map(Value::from),
        (1_699_990_000i64..1_700_100_000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[0-9]{0,4}".prop_map(Value::from),
        Just(Value::Null),
    ])
}

/// A structurally valid compact JWS carrying `claims`.
fn token(claims: &Map<String, Value>) -> String {
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(Value::Object(claims.clone()).to_string().as_bytes()),
        b64(b"signature")
    )
}

/// `peek_issuer` finds the `iss` and `sub` that `peek_claims` reads, wherever it reads any.
fn peeks_agree(jwt: &str) -> Result<(), TestCaseError> {
    let issuer = peek_issuer(jwt);
    if let Some(claims) = peek_claims(jwt) {
        let issuer = issuer.expect("peek_issuer reads what peek_claims reads");
        prop_assert_eq!(issuer.iss.as_ref(), claims.get("iss"));
        prop_assert_eq!(issuer.sub.as_ref(), claims.get("sub"));
    }
    Ok(())
}

proptest! {
    #[test]
    fn peek_never_panics(text in "(?s).{0,128}", jwtish in "[A-Za-z0-9_=.-]{0,128}") {
        for jwt in [text, jwtish] {
            if peek_claims(&jwt).is_some() {
                prop_assert_eq!(jwt.split('.').count(), 3);
            }
            peeks_agree(&jwt)?;
        }
    }

    #[test]
    fn peek_reads_the_claims_of_a_well_formed_jwt(claims in claims()) {
        prop_assert_eq!(peek_claims(&token(&claims)), Some(claims.clone()));
        let issuer = peek_issuer(&token(&claims)).expect("an issuer");
        prop_assert_eq!(issuer.iss.as_ref(), claims.get("iss"));
        prop_assert_eq!(issuer.sub.as_ref(), claims.get("sub"));
    }

    #[test]
    fn peek_never_panics_on_mutated_segments(
        claims in claims(),
        at in any::<prop::sample::Index>(),
        with in "(?s).{0,3}",
        cut in 0usize..4,
    ) {
        let jwt = token(&claims);
        let mut at = at.index(jwt.len());
        while !jwt.is_char_boundary(at) {
            at -= 1;
        }
        let end = (at + cut).min(jwt.len());
        let mutated = format!("{}{with}{}", &jwt[..at], &jwt[end..]);
        peeks_agree(&mutated)?;
    }

    #[test]
    fn peek_refuses_oversized_jwts(claims in claims(), pad in 0usize..64) {
        let mut claims = claims;
        claims.insert("pad".into(), "x".repeat(MAX_JWT_BYTES + pad).into());
        prop_assert_eq!(peek_claims(&token(&claims)), None);
        prop_assert_eq!(peek_issuer(&token(&claims)), None);
    }

    #[test]
    fn time_rules_never_panic_and_hold_when_they_pass(
        exp in date(),
        nbf in date(),
        iat in date(),
        aud in json(),
        skew in any::<u64>(),
        max_lifetime in any::<u64>(),
        max_age_minutes in any::<i64>(),
        now in prop_oneof![any::<i64>(), Just(1_700_000_000i64)],
    ) {
        let mut claims = Map::new();
        for (name, value) in [("exp", exp), ("nbf", nbf), ("iat", iat), ("aud", Some(aud))] {
            if let Some(value) = value {
                claims.insert(name.into(), value);
            }
        }
        let settings = HostSettings {
            timestamp_skew_secs: skew,
            max_assertion_lifetime_secs: max_lifetime,
            ..HostSettings::default()
        };
        let rules = TimeRules::new(&settings, max_age_minutes, "IATValidityPeriodInMinutes");
        let _ = audience_contains(&claims, "https://localhost:9443/oauth2/token");
        if let Ok(exp) = rules.check(&claims, now) {
            prop_assert_eq!(numeric_date(&claims, "exp"), Ok(Some(exp)));
            prop_assert!(now <= exp.saturating_add(rules.skew));
            prop_assert!(exp <= now.saturating_add(rules.max_lifetime).saturating_add(rules.skew));
            if let Ok(Some(nbf)) = numeric_date(&claims, "nbf") {
                prop_assert!(nbf <= now.saturating_add(rules.skew));
            }
            if let Ok(Some(iat)) = numeric_date(&claims, "iat") {
                prop_assert!(iat <= now.saturating_add(rules.skew));
            }
        }
    }
}
