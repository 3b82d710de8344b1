//! The unverified claim reading every JWT consumer starts with (`peek_claims`, and
//! `peek_issuer`, which must find the same `iss` and `sub` wherever `peek_claims` reads the
//! claims) and the claim rules applied after verification: `TimeRules::check`, `numeric_date`,
//! `audience_contains`.
//!
//! Input: the JWT text (any bytes; not UTF-8 is read lossily).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::{
    audience_contains, numeric_date, peek_claims, peek_issuer, TimeRules, MAX_JWT_BYTES,
};

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let jwt = String::from_utf8_lossy(data);
    let issuer = peek_issuer(&jwt);
    let Some(claims) = peek_claims(&jwt) else {
        return;
    };
    assert!(jwt.len() <= MAX_JWT_BYTES);
    let issuer = issuer.expect("peek_issuer reads what peek_claims reads");
    assert_eq!(issuer.iss.as_ref(), claims.get("iss"));
    assert_eq!(issuer.sub.as_ref(), claims.get("sub"));
    for name in ["exp", "nbf", "iat"] {
        let _ = numeric_date(&claims, name);
    }
    let _ = audience_contains(&claims, "https://localhost:9443/oauth2/token");
    for rules in [
        TimeRules {
            skew: 300,
            max_lifetime: 3600,
            max_age: 30 * 60,
            max_age_property: "JWTValidityPeriod",
        },
        // Extreme settings: every bound must saturate, never overflow.
        TimeRules {
            skew: i64::MAX,
            max_lifetime: i64::MAX,
            max_age: i64::MAX,
            max_age_property: "p",
        },
        TimeRules {
            skew: 0,
            max_lifetime: 0,
            max_age: 0,
            max_age_property: "p",
        },
    ] {
        for now in [NOW, 0, i64::MIN, i64::MAX] {
            if let Ok(exp) = rules.check(&claims, now) {
                assert_eq!(numeric_date(&claims, "exp"), Ok(Some(exp)));
            }
        }
    }
});
