//! The shared key service and the bundled JWKS validator, end to end below the token endpoint:
//! a loopback JWKS server the test controls (real HTTP, counted requests), the real key service
//! and fetcher, the registry of identity providers and clients on SQLite, and the real
//! `jwks-validator` plugin loaded from its `.so` through the ABI — exactly what a grant handler
//! or client authenticator reaches through `HostServices::validate_jwt`.

mod common;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate_core::{HostServices, JwtError, TrustSource};
use tollgate_host::app;
use tollgate_host::clock::ManualClock;
use tollgate_host::config::Config;
use tollgate_host::keys::{FetchSettings, Fetcher, KeyMetrics, KeyService, KeyServiceSettings};
use tollgate_host::oauth::parties::Parties;
use tollgate_host::plugins::{self, Host};
use tollgate_host::store::{ClientRecord, IdpRecord, Store, StoreOptions};

const TENANT: &str = "carbon.super";
const NOW: i64 = 1_800_000_000;

use common::idp::{ed25519, rsa, Answer, JwksServer, TestKey};

fn jwt(key: &TestKey, kid: Option<&str>) -> String {
    let claims = json!({"iss": "https://idp.example", "sub": "alice", "exp": NOW + 600});
    common::idp::sign(key, kid, &claims)
}

// ---------------------------------------------------------------------------------------------
// The host side: registry, key service, validator plugin.

struct Setup {
    host: Arc<dyn HostServices>,
    store: Store,
    clock: Arc<ManualClock>,
    metrics: KeyMetrics,
    _dir: tempfile::TempDir,
}

struct Limits {
    timeout_ms: u64,
    size_limit: usize,
    cooldown: u64,
    max_uris: usize,
}

const LIMITS: Limits = Limits {
    timeout_ms: 500,
    size_limit: 51_200,
    cooldown: 10,
    max_uris: 100,
};

/// The validator plugin's `.so`, built once per test binary.
fn plugin_so() -> std::path::PathBuf {
    static SO: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    SO.get_or_init(|| {
        let dir = common::root().join("target/plugin-fixtures/keys-test");
        common::build_plugin(
            "plugins/jwks-validator/Cargo.toml",
            "tollgate_jwks_validator",
            &[],
            false,
            &dir,
            "libtollgate_jwks_validator.so",
        )
    })
    .clone()
}

/// The listener of the shipped identity.xml, under WSO2's class name.
const VALIDATOR_LISTENER: &str = r#"    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"
                   orderId="10" enable="true"/>"#;

/// A conf dir whose identity.xml enables the validator, its `.so` in dropins, activated as
/// `tollgate serve` activates it, on a host with the real key service and registry.
async fn setup(limits: Limits) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let dropins = dir.path().join("dropins");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::copy(plugin_so(), dropins.join("libtollgate_jwks_validator.so")).unwrap();
    let conf = common::conf_dir(
        dir.path(),
        "[server]\nbind = \"127.0.0.1:0\"\n[server.tls]\nenabled = false\n",
        &common::identity_with(VALIDATOR_LISTENER),
    );
    let config = Config::load_with_env(&conf, Vec::new()).unwrap();
    let store = Store::open(&config.database_url(), &StoreOptions::default())
        .await
        .unwrap();
    store.ensure_tenant(TENANT, NOW).await.unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let metrics = KeyMetrics::default();
    let fetcher = Fetcher::new(FetchSettings {
        connection_timeout: Duration::from_millis(limits.timeout_ms),
        read_timeout: Duration::from_millis(limits.timeout_ms),
        size_limit_bytes: limits.size_limit,
        allow_insecure_http: false,
    });
    let keys = KeyService::new(
        Arc::new(fetcher),
        clock.clone(),
        KeyServiceSettings {
            refetch_cooldown_secs: limits.cooldown,
            default_max_age_secs: 300,
            max_cached_uris: limits.max_uris,
        },
        metrics.clone(),
    );
    let parties = Parties::new(store.clone(), clock.clone(), |t| {
        format!("https://tollgate/{t}")
    });
    let host = Host::new(
        store.clone(),
        clock.clone(),
        Arc::new(parties),
        Arc::new(keys),
    );
    let (registry, _) = app::registry(&config, Vec::new()).unwrap();
    let components = plugins::activate(
        &registry,
        &config.identity,
        &app::host_settings(&config),
        &host,
    )
    .unwrap();
    assert_eq!(components.jwt_validators.len(), 1);
    assert_eq!(components.jwt_validators[0].name, "jwks-validator");
    Setup {
        host: host.for_component("test"),
        store,
        clock,
        metrics,
        _dir: dir,
    }
}

impl Setup {
    async fn idp(&self, name: &str, jwks_uri: Option<&str>, certificates: Vec<String>) {
        let record = IdpRecord {
            tenant: TENANT.into(),
            id: format!("id-{name}"),
            name: name.into(),
            alias: None,
            enabled: true,
            jwks_uri: jwks_uri.map(str::to_string),
            certificates,
            record: json!({}),
            created_at: NOW,
            updated_at: NOW,
        };
        assert!(self.store.insert_idp(&record).await.unwrap());
    }

    async fn validate(&self, jwt: &str) -> Result<(), JwtError> {
        self.validate_as("https://idp.example", jwt).await
    }

    async fn validate_as(&self, idp: &str, jwt: &str) -> Result<(), JwtError> {
        let source = TrustSource::IdentityProvider {
            tenant: TENANT.into(),
            name: idp.into(),
        };
        self.host.validate_jwt(jwt, &source).await.map(|_| ())
    }
}

fn rejected(result: Result<(), JwtError>) -> String {
    match result {
        Err(JwtError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_validations_cost_one_fetch_and_rotation_one_refetch() {
    let (a, b) = (rsa("rsa-2048", "a"), rsa("rsa-2048-b", "b"));
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &[]);
    let s = setup(LIMITS).await;
    s.idp("https://idp.example", Some(&server.uri), vec![])
        .await;

    let token = jwt(&a, Some("a"));
    for _ in 0..1000 {
        s.validate(&token).await.unwrap();
    }
    assert_eq!(server.hits(), 1);
    assert_eq!(s.metrics.fetches.get(), 1);
    assert_eq!(s.metrics.cache_hits.get(), 999);

    // The IdP rotates to b without telling anyone: the first JWT with kid b costs one re-fetch.
    server.serve(&[&b.jwk], &[]);
    s.validate(&jwt(&b, Some("b"))).await.unwrap();
    assert_eq!(server.hits(), 2);
    for _ in 0..100 {
        s.validate(&jwt(&b, Some("b"))).await.unwrap();
    }
    assert_eq!(server.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_within_a_cooldown_cost_at_most_one_refetch() {
    let (a, b) = (rsa("rsa-2048", "a"), rsa("rsa-2048-b", "b"));
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &[]);
    let s = Arc::new(setup(LIMITS).await);
    s.idp("https://idp.example", Some(&server.uri), vec![])
        .await;
    s.validate(&jwt(&a, Some("a"))).await.unwrap();

    let floods = (0..500).map(|i| {
        let s = s.clone();
        let token = jwt(&b, Some(&format!("random-{i}")));
        tokio::spawn(async move { s.validate(&token).await })
    });
    for flood in futures::future::join_all(floods).await {
        assert!(rejected(flood.unwrap()).contains("kid"));
    }
    assert!(server.hits() <= 2, "{} fetches", server.hits());
    // Later ones within the cooldown are answered from the cache, and counted as suppressed.
    let (hits, suppressed) = (server.hits(), s.metrics.refetches_suppressed.get());
    for i in 0..100 {
        rejected(s.validate(&jwt(&b, Some(&format!("later-{i}")))).await);
    }
    assert_eq!(server.hits(), hits);
    assert_eq!(s.metrics.refetches_suppressed.get(), suppressed + 100);

    // After the cooldown, an unknown kid may re-fetch again (and finds b).
    server.serve(&[&a.jwk, &b.jwk], &[]);
    s.clock.advance(LIMITS.cooldown as i64);
    s.validate(&jwt(&b, Some("b"))).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_first_uses_share_one_fetch() {
    let a = ed25519("a");
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &[]);
    *server.delay.lock().unwrap() = Duration::from_millis(300);
    let s = Arc::new(setup(LIMITS).await);
    s.idp("https://idp.example", Some(&server.uri), vec![])
        .await;
    let token = jwt(&a, Some("a"));
    let uses = (0..100).map(|_| {
        let (s, token) = (s.clone(), token.clone());
        tokio::spawn(async move { s.validate(&token).await })
    });
    for r in futures::future::join_all(uses).await {
        r.unwrap().unwrap();
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_outlive_a_failing_jwks_server() {
    let a = rsa("rsa-2048", "a");
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &[]);
    let s = setup(LIMITS).await;
    s.idp("https://idp.example", Some(&server.uri), vec![])
        .await;
    let token = jwt(&a, Some("a"));
    s.validate(&token).await.unwrap();

    let failures = [
        Answer::Status(500),
        Answer::Garbage,
        Answer::Oversize(60_000, true),
        Answer::Oversize(60_000, false),
        Answer::Hang,
        Answer::Json("{\"keys\": 5}".into(), vec![]),
    ];
    let mut hits = server.hits();
    for failure in failures {
        server.answer(failure);
        // Past freshness and past any backoff: the next use re-fetches, fails, serves the cache.
        s.clock.advance(301 + 300);
        let started = Instant::now();
        s.validate(&token).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(server.hits(), hits + 1);
        hits += 1;
        // Within the backoff, no new fetch is tried.
        s.validate(&token).await.unwrap();
        assert_eq!(server.hits(), hits);
    }
    assert_eq!(s.metrics.fetch_failures.get(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_cached_a_failing_server_is_a_fast_rejection() {
    let a = rsa("rsa-2048", "a");
    let token = jwt(&a, Some("a"));
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks", l.local_addr().unwrap())
    };
    let server = JwksServer::start(Answer::Status(503)).await;
    let hanging = JwksServer::start(Answer::Hang).await;
    let garbage = JwksServer::start(Answer::Garbage).await;
    let s = setup(LIMITS).await;
    for (name, uri) in [
        ("closed", closed.as_str()),
        ("503", server.uri.as_str()),
        ("hang", hanging.uri.as_str()),
        ("garbage", garbage.uri.as_str()),
    ] {
        s.idp(name, Some(uri), vec![]).await;
        let started = Instant::now();
        let reason = rejected(s.validate_as(name, &token).await);
        // At most connection_timeout + read_timeout, whatever the server does.
        assert!(started.elapsed() < Duration::from_millis(1500), "{name}");
        assert!(reason.contains("not available"), "{name}: {reason}");
        // Until the backoff ends, the answer comes without a fetch.
        let started = Instant::now();
        rejected(s.validate_as(name, &token).await);
        assert!(started.elapsed() < Duration::from_millis(100), "{name}");
    }
    assert_eq!(server.hits(), 1);
    assert_eq!(hanging.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_bounds_freshness() {
    let (a, b) = (rsa("rsa-2048", "a"), rsa("rsa-2048-b", "b"));
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &["Cache-Control: public, max-age=60"]);
    let s = setup(LIMITS).await;
    s.idp("https://idp.example", Some(&server.uri), vec![])
        .await;
    let token = jwt(&a, Some("a"));
    s.validate(&token).await.unwrap();
    s.clock.advance(59);
    s.validate(&token).await.unwrap();
    assert_eq!(server.hits(), 1);
    // Stale after 60 s: the set is fetched again, and a key removed at the IdP is gone.
    server.serve(&[&b.jwk], &[]);
    s.clock.advance(1);
    assert!(rejected(s.validate(&token).await).contains("kid"));
    assert!(server.hits() >= 2);

    // Without max-age, default_max_age_secs (300) applies.
    let hits = server.hits();
    let token = jwt(&b, Some("b"));
    s.validate(&token).await.unwrap();
    s.clock.advance(299);
    s.validate(&token).await.unwrap();
    assert_eq!(server.hits(), hits);
    s.clock.advance(1);
    s.validate(&token).await.unwrap();
    assert_eq!(server.hits(), hits + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_loopback_may_be_plain_http_and_redirects_stay_on_the_host() {
    let a = rsa("rsa-2048", "a");
    let token = jwt(&a, Some("a"));
    let server = JwksServer::start(Answer::Status(404)).await;
    server.serve(&[&a.jwk], &[]);
    let s = setup(LIMITS).await;

    // A non-loopback http URI is refused without a connection (the store would refuse to
    // register it; the key service refuses it all the same).
    s.idp("plain", Some("http://idp.example.com/jwks"), vec![])
        .await;
    assert!(rejected(s.validate_as("plain", &token).await).contains("https"));

    // A redirect on the same host is followed; one to another host (or port) is not.
    s.idp("moved", Some(&format!("{}/moved", server.base)), vec![])
        .await;
    s.validate_as("moved", &token).await.unwrap();
    assert_eq!(server.hits(), 2);
    let elsewhere = JwksServer::start(Answer::Redirect(server.uri.clone())).await;
    s.idp("elsewhere", Some(&elsewhere.uri), vec![]).await;
    let reason = rejected(s.validate_as("elsewhere", &token).await);
    assert!(reason.contains("redirect"), "{reason}");
    assert_eq!((elsewhere.hits(), server.hits()), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_holds_a_bounded_number_of_uris() {
    let a = ed25519("a");
    let token = jwt(&a, Some("a"));
    let servers = [
        JwksServer::start(Answer::Status(404)).await,
        JwksServer::start(Answer::Status(404)).await,
        JwksServer::start(Answer::Status(404)).await,
    ];
    let s = setup(Limits {
        max_uris: 2,
        ..LIMITS
    })
    .await;
    for (i, server) in servers.iter().enumerate() {
        server.serve(&[&a.jwk], &[]);
        s.idp(&format!("idp-{i}"), Some(&server.uri), vec![]).await;
    }
    for i in [0, 1, 0, 1] {
        s.validate_as(&format!("idp-{i}"), &token).await.unwrap();
    }
    assert_eq!((servers[0].hits(), servers[1].hits()), (1, 1));
    // A third URI evicts the least recently used (idp-0), which is fetched again on its next use.
    s.validate_as("idp-2", &token).await.unwrap();
    s.validate_as("idp-1", &token).await.unwrap();
    s.validate_as("idp-0", &token).await.unwrap();
    assert_eq!(
        (servers[0].hits(), servers[1].hits(), servers[2].hits()),
        (2, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_inline_jwks_go_through_the_same_validator() {
    let s = setup(LIMITS).await;
    let now = time::OffsetDateTime::from_unix_timestamp(NOW).unwrap();
    let certificate = |not_after: time::OffsetDateTime| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["idp.example".into()]).unwrap();
        params.not_before = now - time::Duration::days(30);
        params.not_after = not_after;
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), EncodingKey::from_ec_der(&key.serialize_der()))
    };
    let (pem, signing) = certificate(now + time::Duration::days(30));
    s.idp("cert", None, vec![pem]).await;
    let es = TestKey {
        encoding: signing,
        jwk: json!({}),
        alg: Algorithm::ES256,
    };
    // WSO2-style: the certificate's key is used whatever kid the JWT names.
    s.validate_as("cert", &jwt(&es, None)).await.unwrap();
    s.validate_as("cert", &jwt(&es, Some("any"))).await.unwrap();
    let other = rsa("rsa-2048", "a");
    assert!(rejected(s.validate_as("cert", &jwt(&other, None)).await).contains("no RS256 key"));

    let (expired, signing) = certificate(now - time::Duration::days(1));
    s.idp("expired", None, vec![expired]).await;
    let es = TestKey {
        encoding: signing,
        jwk: json!({}),
        alg: Algorithm::ES256,
    };
    assert!(rejected(s.validate_as("expired", &jwt(&es, None)).await).contains("validity"));

    // A client's inline jwks.
    let key = rsa("rsa-2048-b", "k1");
    let client = ClientRecord {
        tenant: TENANT.into(),
        client_id: "svc".into(),
        client_name: "svc".into(),
        secret_hash: None,
        auth_method: "private_key_jwt".into(),
        grant_types: vec!["client_credentials".into()],
        scope: None,
        jwks_uri: None,
        jwks: Some(json!({"keys": [key.jwk]})),
        access_token_format: None,
        metadata: json!({}),
        created_at: NOW,
        updated_at: NOW,
    };
    assert!(s.store.insert_client(&client).await.unwrap());
    let source = TrustSource::Client {
        tenant: TENANT.into(),
        client_id: "svc".into(),
    };
    let verified = s
        .host
        .validate_jwt(&jwt(&key, Some("k1")), &source)
        .await
        .unwrap();
    assert_eq!(verified.claims["sub"], "alice");
    let other_tenant = TrustSource::Client {
        tenant: "other".into(),
        client_id: "svc".into(),
    };
    assert!(s
        .host
        .validate_jwt(&jwt(&key, Some("k1")), &other_tenant)
        .await
        .is_err());
    // A disabled or unknown IdP is refused by name.
    assert!(rejected(s.validate_as("nobody", &jwt(&key, None)).await).contains("no enabled"));
}

#[test]
fn the_shipped_identity_xml_starts_with_the_bundled_plugins_in_dropins() {
    let dir = tempfile::tempdir().unwrap();
    let dropins = dir.path().join("dropins");
    std::fs::create_dir_all(&dropins).unwrap();
    common::bundled_plugins(&dropins);
    let shipped = std::fs::read_to_string(common::root().join("conf/identity.xml")).unwrap();
    let conf = common::conf_dir(
        dir.path(),
        "[server]\nbind = \"127.0.0.1:0\"\n[server.tls]\nenabled = false\n[super_admin]\npassword = \"k\"\n",
        &shipped,
    );
    let (ok, out, err) = common::run(&["plugins", "--conf", conf.to_str().unwrap()], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("jwt-validator jwks-validator"), "{out}");
    assert!(
        out.contains("org.wso2.carbon.identity.oauth2.validators.jwt.JWKSBasedJWTValidator"),
        "{out}"
    );
    assert!(out.contains("(orderId 10)"), "{out}");
    assert!(out.contains("grant-handler jwt-bearer"), "{out}");
    assert!(
        out.contains("client-authenticator private-key-jwt"),
        "{out}"
    );
    let server = common::Server::start(&conf, &[]);
    assert!(server.url.starts_with("http://127.0.0.1:"));
    server.terminate();
}
