//! The host's pieces of a token request, each alone: form and Basic header parsing, the client
//! lookup (from the record cache and from SQLite), the client secret check, and minting and
//! durably storing tokens on an SQLite file (through the group-commit writer, one caller: the
//! cost of one commit). The other hot-path pieces have their own benches: the ABI call in
//! `core/benches/abi_call.rs`, JWT validation in `plugins/jwks-validator/benches/validate.rs`.
//!
//! `cargo bench -p tollgate-host --bench hot_path`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tollgate_host::clock::SystemClock;
use tollgate_host::oauth::{basic, form};
use tollgate_host::secret::ServerSecret;
use tollgate_host::store::{ClientRecord, Store, StoreOptions};
use tollgate_host::tokens::{Issue, TokenFormat, TokenService, TokenSettings};

fn parsing(c: &mut Criterion) {
    // A JWT bearer request as clients send it: a 1 KiB assertion and a scope.
    let assertion = format!(
        "eyJ{}.eyJ{}.{}",
        "a".repeat(60),
        "b".repeat(500),
        "c".repeat(342)
    );
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}&scope=openid"
    );
    c.bench_function("form_parse/jwt_bearer_1KiB", |b| {
        b.iter(|| form::parse(black_box(body.as_bytes())).expect("a form"))
    });
    let header =
        "Basic YXFYZjJjY3JMMEh5QVBQSFFTUFRRdzpzM2NyZXQtczNjcmV0LXMzY3JldC1zM2NyZXQtczNjcmV0";
    c.bench_function("basic_header", |b| {
        b.iter(|| basic::credentials(black_box(Some(header))).expect("credentials"))
    });
    let secret = ServerSecret::from_bytes(&[7; 32]);
    let stored = secret.hash("s3cret-s3cret-s3cret-s3cret-s3cret");
    c.bench_function("client_secret_check", |b| {
        b.iter(|| secret.verify(black_box("s3cret-s3cret-s3cret-s3cret-s3cret"), &stored))
    });
}

fn client(now: i64) -> ClientRecord {
    ClientRecord {
        tenant: "carbon.super".into(),
        client_id: "bench".into(),
        client_name: "bench".into(),
        secret_hash: Some("00".repeat(32)),
        auth_method: "client_secret_basic".into(),
        grant_types: vec!["client_credentials".into()],
        scope: None,
        jwks_uri: None,
        jwks: None,
        access_token_format: None,
        metadata: json!({"client_name": "bench"}),
        created_at: now,
        updated_at: now,
    }
}

fn storage(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let open = |cache_ttl: Duration| {
        rt.block_on(Store::open(
            &url,
            &StoreOptions {
                cache_ttl,
                ..StoreOptions::default()
            },
        ))
        .expect("the store opens")
    };
    let cached = open(Duration::from_secs(3600));
    rt.block_on(cached.insert_client(&client(1)))
        .expect("insert");
    let uncached = open(Duration::ZERO);

    c.bench_function("client_lookup/cached", |b| {
        b.iter(|| {
            rt.block_on(cached.client("carbon.super", "bench"))
                .expect("found")
        })
    });
    c.bench_function("client_lookup/sqlite", |b| {
        b.iter(|| {
            rt.block_on(uncached.client("carbon.super", "bench"))
                .expect("found")
        })
    });

    let service = TokenService::new(
        cached.clone(),
        Arc::new(ServerSecret::from_bytes(&[7; 32])),
        None,
        Arc::new(SystemClock),
        TokenSettings {
            access_ttl: 3600,
            refresh_ttl: 86400,
        },
    );
    let issue = |refresh_token: bool| Issue {
        tenant: "carbon.super".into(),
        issuer: "https://localhost:9443/oauth2/token".into(),
        client_id: "bench".into(),
        subject: "alice".into(),
        scopes: vec!["openid".into()],
        refresh_token,
        format: TokenFormat::Opaque,
        claims: Default::default(),
        redeems: None,
        jtis: Vec::new(),
    };
    let mut group = c.benchmark_group("token_mint_and_store");
    group.sample_size(30);
    group.bench_function("opaque_access", |b| {
        b.iter(|| rt.block_on(service.issue(issue(false))).expect("issued"))
    });
    group.bench_function("opaque_access_and_refresh", |b| {
        b.iter(|| rt.block_on(service.issue(issue(true))).expect("issued"))
    });
    group.finish();
}

criterion_group!(benches, parsing, storage);
criterion_main!(benches);
