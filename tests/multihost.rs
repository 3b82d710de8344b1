//! Several hosts on one PostgreSQL, end to end: real `tollgate serve` processes (each with its
//! own conf and data dir, the same `server-secret`), the bundled plugins, a loopback JWKS
//! server, and one database of the test's own on the server `TOLLGATE_TEST_POSTGRES_URL` names
//! (skipped without it).
//!
//! What must hold across hosts is decided by the database: replays of one assertion or one
//! refresh token spread over three hosts win once; a revocation on one host is seen by the next
//! request on another; a disabled IdP is refused everywhere within `[database] cache_ttl_secs`.
//! Faults: the database refusing connections for a while (and every connection killed with
//! `pg_terminate_backend`: stopping the shared cluster is not allowed here) and `kill -9` of one
//! host under load — errors only while it lasts, no restart needed, no token lost or
//! half-written.

mod common;
use common::now;

use common::api::{deployment, Api, ADMIN};
use common::idp::{rsa, sign, JwksServer, TestKey};
use common::pg::Database;
use common::*;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Every host's issuer and token endpoint URL (the default `base_url`).
const ENDPOINT: &str = "https://localhost:9443/oauth2/token";
const IDP: &str = "https://idp.example";
/// `[database] cache_ttl_secs` of the cluster: how late a host sees another's change.
const STALENESS_SECS: u64 = 2;

/// Hosts on one database (4 connections each: every test's hosts together stay far below
/// PostgreSQL's default 100). Dropping it kills the hosts; [`Cluster::finish`] also drops the
/// database.
struct Cluster {
    db: Database,
    hosts: Vec<Option<Server>>,
    apis: Vec<Api>,
    jwks: JwksServer,
    key: TestKey,
    _base: tempfile::TempDir,
}

/// The conf dir of host `i` under `base`: its own data dir holding the cluster's secret.
fn host_conf(base: &Path, i: usize, url: &str, secret: &[u8]) -> std::path::PathBuf {
    let dir = base.join(format!("host-{i}"));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/server-secret"), secret).unwrap();
    let identity = std::fs::read_to_string(root().join("conf/identity.xml")).unwrap();
    let extra = format!(
        "[database]\nurl = \"{url}\"\ncache_ttl_secs = {STALENESS_SECS}\nacquire_timeout_ms = 1000\n\
         max_connections = 4\n\
         [plugins]\ndropins_dir = \"{}\"\n",
        base.join("dropins").display()
    );
    conf_dir(&dir, &deployment(&extra), &identity)
}

impl Cluster {
    /// `n` hosts started at the same moment on a new database; `None` without PostgreSQL.
    async fn start(n: usize) -> Option<Cluster> {
        let db = Database::create().await?;
        let base = tempfile::tempdir().unwrap();
        bundled_plugins(&base.path().join("dropins"));
        let secret: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a);
        let confs: Vec<_> = (0..n)
            .map(|i| host_conf(base.path(), i, &db.url, &secret))
            .collect();
        // Concurrent first start: one migration, one admin, one key set.
        let hosts: Vec<Server> = std::thread::scope(|s| {
            let started: Vec<_> = confs
                .iter()
                .map(|conf| s.spawn(move || Server::start(conf, &[("TOLLGATE_LOG", "error")])))
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let apis = hosts.iter().map(|h| Api::new(&h.url)).collect();
        let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
        let key = rsa("rsa-2048", "k1");
        jwks.serve(&[&key.jwk], &[]);
        Some(Cluster {
            db,
            hosts: hosts.into_iter().map(Some).collect(),
            apis,
            jwks,
            key,
            _base: base,
        })
    }

    fn api(&self, i: usize) -> &Api {
        &self.apis[i % self.apis.len()]
    }

    async fn finish(mut self) {
        self.hosts.clear();
        self.db.drop_now().await;
    }

    /// A client of the JWT bearer and refresh grants, registered on host `i`.
    async fn secret_client(&self, i: usize) -> (String, String) {
        let body = self
            .api(i)
            .client(
                None,
                json!({"client_name": "app",
                       "grant_types": [GRANT, "refresh_token", "client_credentials"]}),
            )
            .await;
        (
            body["client_id"].as_str().unwrap().into(),
            body["client_secret"].as_str().unwrap().into(),
        )
    }

    /// A private_key_jwt client trusted with the JWKS server's keys, registered on host `i`.
    async fn key_client(&self, i: usize) -> String {
        let body = self
            .api(i)
            .client(
                None,
                json!({"client_name": "svc", "token_endpoint_auth_method": "private_key_jwt",
                       "grant_types": ["client_credentials"], "jwks_uri": self.jwks.uri}),
            )
            .await;
        body["client_id"].as_str().unwrap().into()
    }

    fn assertion(&self, iss: &str, sub: &str, jti: &str) -> String {
        let now = now();
        sign(
            &self.key,
            Some("k1"),
            &json!({"iss": iss, "sub": sub, "aud": ENDPOINT, "exp": now + 300,
                    "iat": now - 5, "jti": jti}),
        )
    }

    /// The JWT bearer grant on host `i`.
    async fn exchange(&self, i: usize, client: &(String, String), jti: &str) -> (u16, Value) {
        let assertion = self.assertion(IDP, "alice", jti);
        self.api(i)
            .token(
                None,
                Some((&client.0, &client.1)),
                &[("grant_type", GRANT), ("assertion", &assertion)],
            )
            .await
    }

    /// A connection to the cluster's database.
    async fn sql(&self) -> PgConnection {
        PgConnection::connect(&self.db.url).await.unwrap()
    }

    /// The database's name.
    fn db_name(&self) -> String {
        self.db.url.rsplit('/').next().unwrap().to_string()
    }

    /// A connection to the server as its admin, and the statement that terminates every other
    /// connection to the cluster's database.
    async fn killer(&self) -> (PgConnection, String) {
        let admin_url = std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap();
        let admin = PgConnection::connect(&admin_url).await.unwrap();
        let kill = format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{}' AND pid <> pg_backend_pid()",
            self.db_name()
        );
        (admin, kill)
    }

    /// Registers the identity provider whose keys the JWKS server publishes, on host 0.
    async fn register_idp(&self) {
        self.api(0)
            .idp(None, IDP, json!({"jwksUri": self.jwks.uri}))
            .await;
    }

    /// The refresh grant on host `i`.
    async fn refresh(&self, i: usize, client: &(String, String), token: &str) -> (u16, Value) {
        self.api(i)
            .token(
                None,
                Some((&client.0, &client.1)),
                &[("grant_type", "refresh_token"), ("refresh_token", token)],
            )
            .await
    }
}

/// Sends `requests` concurrently; their (status, body).
async fn all<F: std::future::Future<Output = (u16, Value)>>(requests: Vec<F>) -> Vec<(u16, Value)> {
    futures::future::join_all(requests).await
}

/// Exactly one 200; every other answer is `code` with `status`.
fn exactly_one_wins(results: &[(u16, Value)], status: u16, code: &str) {
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    for (s, body) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*s, body["error"].as_str()), (status, Some(code)), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hosts_share_state_and_replays_win_once() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let c = &cluster;

    // The first JWT access tokens, one per host at the same moment: one signing key, which
    // every host publishes.
    let jwt_client = c
        .api(0)
        .client(
            None,
            json!({"client_name": "jwt", "grant_types": ["client_credentials"],
                   "access_token_format": "jwt"}),
        )
        .await;
    let jwt_client = (
        jwt_client["client_id"].as_str().unwrap().to_string(),
        jwt_client["client_secret"].as_str().unwrap().to_string(),
    );
    let issued = all((0..3)
        .map(|i| {
            let (api, client) = (c.api(i).clone(), jwt_client.clone());
            async move {
                api.token(
                    None,
                    Some((&client.0, &client.1)),
                    &[("grant_type", "client_credentials")],
                )
                .await
            }
        })
        .collect())
    .await;
    let kids: std::collections::BTreeSet<String> = issued
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            let jwt = body["access_token"].as_str().unwrap();
            jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
        })
        .collect();
    assert_eq!(kids.len(), 1, "{kids:?}");
    let sets = all((0..3)
        .map(|i| {
            let http = c.api(i).http.clone();
            let url = format!("{}/oauth2/jwks", c.api(i).url);
            async move {
                let r = http.get(url).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        })
        .collect())
    .await;
    assert_eq!(
        sets[0].1["keys"].as_array().map(Vec::len),
        Some(1),
        "{sets:?}"
    );
    assert_eq!(
        sets[0].1["keys"][0]["kid"].as_str(),
        kids.first().map(String::as_str)
    );
    assert!(sets.iter().all(|s| s == &sets[0]), "{sets:?}");

    // Registered on one host, usable on the others.
    c.register_idp().await;
    let client = c.secret_client(1).await;
    let key_client = c.key_client(2).await;

    // One JWT bearer assertion, 100 concurrent requests over 3 hosts: one token.
    let assertion = Arc::new(c.assertion(IDP, "alice", "bearer-once"));
    let results = all((0..100)
        .map(|i| {
            let (api, client, assertion) = (c.api(i).clone(), client.clone(), assertion.clone());
            async move {
                api.token(
                    None,
                    Some((&client.0, &client.1)),
                    &[("grant_type", GRANT), ("assertion", &assertion)],
                )
                .await
            }
        })
        .collect())
    .await;
    exactly_one_wins(&results, 400, "invalid_grant");
    let refresh = results.iter().find(|(s, _)| *s == 200).unwrap().1["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    // One client assertion, 100 concurrent requests over 3 hosts: one token.
    let assertion = Arc::new(c.assertion(&key_client, &key_client, "client-once"));
    let results = all((0..100)
        .map(|i| {
            let (api, assertion) = (c.api(i).clone(), assertion.clone());
            async move {
                api.token(
                    None,
                    None,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_assertion_type", ASSERTION_TYPE),
                        ("client_assertion", &assertion),
                    ],
                )
                .await
            }
        })
        .collect())
    .await;
    exactly_one_wins(&results, 401, "invalid_client");

    // One refresh token, 100 concurrent redemptions over 3 hosts: one successor.
    let results = all((0..100).map(|i| c.refresh(i, &client, &refresh)).collect()).await;
    exactly_one_wins(&results, 400, "invalid_grant");

    // Revoked on host 0 → inactive on host 1 at once.
    let (status, body) = c.exchange(2, &client, "to-revoke").await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let introspect = |i: usize| {
        let api = c.api(i).clone();
        let access = access.to_string();
        async move {
            let r = api
                .http
                .post(format!("{}/oauth2/introspect", api.url))
                .basic_auth(ADMIN.0, Some(ADMIN.1))
                .form(&[("token", access.as_str())])
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()["active"].clone()
        }
    };
    assert_eq!(introspect(1).await, true);
    let r = c
        .api(0)
        .http
        .post(format!("{}/oauth2/revoke", c.api(0).url))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(1).await, false);
    assert_eq!(introspect(2).await, false);

    // The IdP disabled on host 0: refused on host 1 within the staleness bound. Host 1 has
    // it cached (it served the exchanges above).
    let (status, body) = c.exchange(1, &client, "before-disable").await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = c
        .api(0)
        .admin(
            reqwest::Method::GET,
            None,
            "/api/server/v1/identity-providers",
            Value::Null,
        )
        .await;
    let id = list["identityProviders"][0]["id"].as_str().unwrap();
    let (status, body) = c
        .api(0)
        .admin(
            reqwest::Method::PUT,
            None,
            &format!("/api/server/v1/identity-providers/{id}"),
            json!({"name": IDP, "isEnabled": false, "certificate": {"jwksUri": c.jwks.uri}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Each host's cached record expires on its own clock (cached when it last read it), so
    // each host is held to the same deadline, counted from the change.
    let disabled = Instant::now();
    for host in [1, 2] {
        let mut n = 0;
        loop {
            n += 1;
            let jti = format!("after-disable-{host}-{n}");
            let (status, body) = c.exchange(host, &client, &jti).await;
            if status != 200 {
                assert_eq!(body["error"], "invalid_grant", "{body}");
                break;
            }
            assert!(
                disabled.elapsed() <= Duration::from_secs(STALENESS_SECS + 1),
                "host {host} still accepted after {:?}",
                disabled.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The client deleted on host 2: refused on hosts 0 and 1 within the bound.
    let (status, _) = c
        .api(2)
        .admin(
            reqwest::Method::DELETE,
            None,
            &format!("/api/identity/oauth2/dcr/v1.1/register/{}", client.0),
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_secs(STALENESS_SECS) + Duration::from_millis(200)).await;
    for i in 0..2 {
        let (status, body) = c
            .api(i)
            .token(
                None,
                Some((&client.0, &client.1)),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_another_secret_refuses_to_start() {
    let Some(db) = Database::create().await else {
        return;
    };
    let base = tempfile::tempdir().unwrap();
    bundled_plugins(&base.path().join("dropins"));
    let first = Server::start(&host_conf(base.path(), 0, &db.url, &[1; 32]), &[]);
    let out = std::process::Command::new(tollgate())
        .args(["serve", "--conf"])
        .arg(host_conf(base.path(), 1, &db.url, &[2; 32]))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = base.path().join("host-1/data/server-secret");
    assert!(
        stderr.contains(&format!(
            "{} is not the secret this database",
            file.display()
        )),
        "{stderr}"
    );
    // With the first host's file it starts.
    let second = Server::start(&host_conf(base.path(), 2, &db.url, &[1; 32]), &[]);
    drop((first, second));
    db.drop_now().await;
}

/// Counts answers of a load run by kind.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    server_error: AtomicU64,
    other: AtomicU64,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }
    fn errors(&self) -> u64 {
        self.server_error.load(Ordering::Relaxed)
    }
}

/// `workers` tasks sending client_credentials requests to the hosts in turn until `stop`;
/// every 200's access token is kept.
async fn load(
    apis: Vec<Api>,
    client: (String, String),
    workers: usize,
    tally: Arc<Tally>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<String> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (api, client, tally, stop) = (
            apis[w % apis.len()].clone(),
            client.clone(),
            tally.clone(),
            stop.clone(),
        );
        set.spawn(async move {
            let mut tokens = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = api
                    .token(
                        None,
                        Some((&client.0, &client.1)),
                        &[("grant_type", "client_credentials")],
                    )
                    .await;
                match (status, body["error"].as_str()) {
                    (200, _) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        tokens.push(body["access_token"].as_str().unwrap().to_string());
                    }
                    (500 | 503, Some("server_error")) => {
                        tally.server_error.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        tally.other.fetch_add(1, Ordering::Relaxed);
                        eprintln!("unexpected answer {status}: {body}");
                    }
                }
            }
            tokens
        });
    }
    set.join_all().await.concat()
}

/// Every token introspects active (asked by `client`): none of them was lost.
async fn all_active(api: &Api, client: &(String, String), tokens: &[String]) {
    for chunk in tokens.chunks(64) {
        let answers = all(chunk
            .iter()
            .map(|t| {
                let (api, t, client) = (api.clone(), t.clone(), client.clone());
                async move {
                    let r = api
                        .http
                        .post(format!("{}/oauth2/introspect", api.url))
                        .basic_auth(&client.0, Some(&client.1))
                        .form(&[("token", t.as_str())])
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), r.json::<Value>().await.unwrap())
                }
            })
            .collect())
        .await;
        for (status, body) in answers {
            assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
        }
    }
}

async fn health(api: &Api) -> u16 {
    api.http
        .get(format!("{}/health", api.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Rows in `tokens` of `client_id`.
async fn stored(conn: &mut PgConnection, client_id: &str) -> u64 {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tokens WHERE client_id = $1")
        .bind(client_id)
        .fetch_one(conn)
        .await
        .unwrap();
    n as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mid_load_fails_fast_and_recovers_without_restart() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let c = &cluster;
    let client = c.secret_client(0).await;
    let (mut admin, kill) = c.killer().await;
    let name = c.db_name();

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = tokio::spawn(load(
        c.apis.clone(),
        client.clone(),
        16,
        tally.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Every connection of both hosts killed at once, twice: the hosts reconnect by themselves.
    for _ in 0..2 {
        admin.execute(kill.as_str()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Then the database refuses connections for a while: a real outage.
    let before_outage = tally.ok();
    admin
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false").as_str())
        .await
        .unwrap();
    admin.execute(kill.as_str()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let errors_at_start = tally.errors();
    // Requests fail fast (within the 1 s acquire timeout, not piling up) and /health says so.
    let started = Instant::now();
    let (status, body) = c
        .api(1)
        .token(
            None,
            Some((&client.0, &client.1)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (500, Some("server_error"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(health(c.api(0)).await, 503);
    assert_eq!(health(c.api(1)).await, 503);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(tally.errors() > errors_at_start);
    let ok_during = tally.ok();

    // Back: service resumes without a restart.
    admin
        .execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true").as_str())
        .await
        .unwrap();
    let back = Instant::now();
    while health(c.api(0)).await != 200 || health(c.api(1)).await != 200 {
        assert!(back.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let tokens = running.await.unwrap();
    assert!(
        before_outage > 0 && tally.ok() > ok_during,
        "no traffic around the outage"
    );
    assert_eq!(tally.other.load(Ordering::Relaxed), 0);

    // Nothing issued twice, nothing lost: the 200s are distinct, each is stored and active.
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len());
    assert_eq!(tokens.len() as u64, tally.ok());
    all_active(c.api(1), &client, &tokens).await;
    // A commit whose answer a killed connection lost is a stored token nobody received: at
    // most one per failed request.
    let rows = stored(&mut cluster.sql().await, &client.0).await;
    assert!(
        rows >= tally.ok() && rows <= tally.ok() + tally.errors(),
        "{rows} rows, {} ok, {} errors",
        tally.ok(),
        tally.errors()
    );
    eprintln!(
        "outage: {} ok, {} server_error, {rows} rows",
        tally.ok(),
        tally.errors()
    );
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_host_mid_load_leaves_the_others_serving() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let client = cluster.secret_client(0).await;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Load on the two hosts that live, and on the one that dies.
    let survivors = cluster.apis[..2].to_vec();
    let running = tokio::spawn(load(
        survivors.clone(),
        client.clone(),
        12,
        tally.clone(),
        stop.clone(),
    ));
    let victim = cluster.apis[2].clone();
    let victim_load = tokio::spawn({
        let client = client.clone();
        async move {
            let mut answered = 0u64;
            let mut tokens = Vec::new();
            loop {
                let r = victim
                    .http
                    .post(format!("{}/oauth2/token", victim.url))
                    .basic_auth(&client.0, Some(&client.1))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(r) = r else { break };
                let Ok(body) = r.json::<Value>().await else {
                    break;
                };
                if let Some(t) = body["access_token"].as_str() {
                    answered += 1;
                    tokens.push(t.to_string());
                }
            }
            (answered, tokens)
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut victim_host = cluster.hosts[2].take().unwrap();
    victim_host.child.kill().unwrap(); // SIGKILL
    victim_host.child.wait().unwrap();
    let at_kill = tally.ok();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tokens = running.await.unwrap();
    let (victim_ok, victim_tokens) = victim_load.await.unwrap();
    assert!(tally.ok() > at_kill, "the other hosts stopped serving");
    assert_eq!(tally.errors() + tally.other.load(Ordering::Relaxed), 0);
    tokens.extend(victim_tokens);
    all_active(&survivors[1], &client, &tokens).await;

    // Nothing half-written: every row complete; at most the victim's in-flight requests (one
    // per connection) stored without an answer.
    let mut sql = cluster.sql().await;
    let rows = stored(&mut sql, &client.0).await;
    let ok = tally.ok() + victim_ok;
    assert!(rows >= ok && rows <= ok + 1, "{rows} rows for {ok} answers");
    eprintln!("kill -9: {ok} ok, {rows} rows");
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_rotation_is_all_or_nothing_when_connections_die() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let c = &cluster;
    c.register_idp().await;
    let client = c.secret_client(0).await;
    // 40 grants, each refreshed in a chain on alternating hosts, with connections killed
    // along the way: each chain ends with exactly one live refresh token, never zero.
    let mut refresh = Vec::new();
    for i in 0..40 {
        let (status, body) = c.exchange(i, &client, &format!("chain-{i}")).await;
        assert_eq!(status, 200, "{body}");
        refresh.push(body["refresh_token"].as_str().unwrap().to_string());
    }
    let (mut admin, kill) = c.killer().await;
    for round in 0..5 {
        let requests = all(refresh
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let client = &client;
                async move {
                    let (status, body) = c.refresh(i + round, client, r).await;
                    (status, json!({"body": body, "old": r}))
                }
            })
            .collect::<Vec<_>>());
        // Every connection killed while the rotations run.
        let kill = async {
            tokio::time::sleep(Duration::from_millis(3 * round as u64)).await;
            admin.execute(kill.as_str()).await.unwrap();
        };
        let (results, ()) = tokio::join!(requests, kill);
        refresh = results
            .into_iter()
            .map(|(status, v)| match status {
                200 => v["body"]["refresh_token"].as_str().unwrap().to_string(),
                // A failed rotation left the old token live: it may be presented again.
                _ => {
                    assert_eq!(v["body"]["error"], "server_error", "{v}");
                    v["old"].as_str().unwrap().to_string()
                }
            })
            .collect();
    }
    let mut sql = c.sql().await;
    let (broken,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT family FROM tokens WHERE kind = 'refresh' \
         GROUP BY family HAVING count(*) FILTER (WHERE NOT revoked) <> 1) f",
    )
    .fetch_one(&mut sql)
    .await
    .unwrap();
    assert_eq!(broken, 0, "a grant without exactly one live refresh token");
    // The tokens the chains ended with still work.
    for (i, r) in refresh.iter().enumerate() {
        let (status, body) = c.refresh(i, &client, r).await;
        assert_eq!(status, 200, "{body}");
    }
    drop(sql);
    cluster.finish().await;
}
