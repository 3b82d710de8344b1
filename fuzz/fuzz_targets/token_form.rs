//! The token endpoint's request parsing: the `Authorization: Basic` header (RFC 6749 §2.3.1),
//! the form content type and body (bounded, no repeats), the `?tenantDomain=` query, and the
//! `TokenRequest` components see, built from them as `oauth/token.rs` does.
//!
//! Input: `AUTHORIZATION \n CONTENT-TYPE \n QUERY \n BODY` (the body is the rest, any bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use tollgate_core::TokenRequest;
use tollgate_host::oauth::exchange::Request;
use tollgate_host::oauth::{basic, form};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let mut text = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (authorization, content_type, query) = (text(), text(), text());
    let body = parts.next().unwrap_or_default();

    let credentials = basic::credentials(Some(&authorization));
    // Whatever `credentials` accepts, `is_basic` recognises as Basic.
    assert!(credentials.is_none() || basic::is_basic(Some(&authorization)));
    let _ = form::is_form(Some(&content_type));

    let request = Request {
        path_tenant: "carbon.super".into(),
        tenant_in_path: false,
        query: Some(query),
        headers: BTreeMap::from([
            ("authorization".to_string(), authorization),
            ("content-type".to_string(), content_type),
        ]),
        peer: None,
        body: body.to_vec().into(),
    };
    let Ok(tenant) = request.tenant() else { return };
    let Ok(params) = form::parse(&request.body) else {
        return;
    };
    assert!(params.len() <= form::MAX_PARAMS);
    assert!(params.iter().all(|(name, _)| !name.is_empty()));
    let token_request = TokenRequest::new(tenant, "https://localhost:9443/oauth2/token")
        .with_params(params)
        .with_headers(&request.headers);
    let _ = token_request.grant_type();
    let _ = token_request.scopes();
    let _ = token_request.param("client_id");
    let _ = basic::credentials(token_request.header("Authorization"));
});
