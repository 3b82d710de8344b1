//! Bounded resources and secrets, end to end against the real binary over loopback TCP:
//! slow-loris headers and never-ending bodies time out, one address cannot hold more than
//! `max_connections_per_ip` connections, header count and size are bounded, failed super admin
//! logins are throttled per address and cost the same for an unknown user as for a wrong
//! password, and no secret, assertion or token appears in any log line at any level.

mod common;
use common::now;

use common::api::{deployment, Api, ADMIN};
use common::idp::{rsa, sign, JwksServer};
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tollgate_host::http::server::MAX_HEADERS;

/// A server without plugins: `server_extra` goes into `[server]`, `admin_extra` into
/// `[super_admin]` (the last table of [`deployment`]).
fn start(server_extra: &str, admin_extra: &str) -> (tempfile::TempDir, Server) {
    let base = tempfile::tempdir().unwrap();
    let text =
        deployment(admin_extra).replacen("[server]\n", &format!("[server]\n{server_extra}"), 1);
    let conf = conf_dir(base.path(), &text, "<Server/>");
    let server = Server::start(&conf, &[]);
    (base, server)
}

fn addr(server: &Server) -> SocketAddr {
    server
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("a loopback address")
}

/// Reads until the server closes the connection (or `within` passes); what it sent and
/// whether it closed.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn slow_headers_and_bodies_that_never_end_time_out() {
    let (_base, server) = start("header_timeout_secs = 1\nrequest_timeout_secs = 2\n", "");
    let addr = addr(&server);

    // Slow-loris: headers begun and never finished.
    let started = Instant::now();
    let mut loris = TcpStream::connect(addr).unwrap();
    loris
        .write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let (_, closed) = read_until_closed(&mut loris, Duration::from_secs(5));
    assert!(closed, "a slow-loris connection stayed open");
    assert!(started.elapsed() < Duration::from_secs(4));

    // A body announced and never sent: 408, then the connection closes.
    let started = Instant::now();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n\
              grant_type=",
        )
        .unwrap();
    let (answer, closed) = read_until_closed(&mut stalled, Duration::from_secs(6));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    assert!(closed);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A chunked body that trickles forever: the same.
    let started = Instant::now();
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(6) {
        if trickle.write_all(b"1\r\na\r\n").is_err() {
            break;
        }
        match trickle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !answer.is_empty() {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn one_address_holds_at_most_max_connections_per_ip() {
    let (_base, server) = start("max_connections_per_ip = 3\n", "");
    let addr = addr(&server);
    let mut held: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Let the server accept them before the fourth arrives.
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = TcpStream::connect(addr).unwrap();
    let (answer, closed) = read_until_closed(&mut fourth, Duration::from_secs(2));
    assert!(
        closed && answer.is_empty(),
        "the fourth was served: {answer:?}"
    );

    // The three still work.
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    held[0].write_all(health).unwrap();
    let (answer, _) = read_until_closed(&mut held[0], Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // One closed (the first, by its Connection: close): a new one is admitted.
    held.remove(0);
    let answer = once_admitted(addr, health);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    drop(held);
    let text = once_admitted(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("tollgate_connections_refused_total ") && !l.ends_with(" 0")),
        "{text}"
    );
}

/// Sends `request` on a new connection and returns the answer, retrying while
/// the server refuses the connection. The server frees a slot when the
/// connection's task ends, which can lag the client's close on a loaded
/// machine; a refusal past five seconds returns the empty answer.
fn once_admitted(addr: SocketAddr, request: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(addr).unwrap();
        let _ = stream.write_all(request);
        let (answer, _) = read_until_closed(&mut stream, Duration::from_secs(2));
        if !answer.is_empty() || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn header_count_and_size_are_bounded() {
    let (_base, server) = start("", "");
    let addr = addr(&server);
    let send = |headers: String| {
        let mut stream = TcpStream::connect(addr).unwrap();
        let request =
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        read_until_closed(&mut stream, Duration::from_secs(3)).0
    };
    // 100 headers in all (`Host` and `Connection` are two of them) pass, 101 do not.
    let headers = |n: usize| {
        (0..n - 2)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    };
    assert_eq!(MAX_HEADERS, 100);
    assert!(send(headers(MAX_HEADERS)).starts_with("HTTP/1.1 200"));
    assert!(send(headers(MAX_HEADERS + 1)).starts_with("HTTP/1.1 431"));
    let huge = format!("X-Big: {}\r\n", "a".repeat(80 * 1024));
    let answer = send(huge);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Within the bounds: fine.
    let some: String = (0..50).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert!(send(some).starts_with("HTTP/1.1 200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_logins_are_throttled_per_address() {
    let (_base, server) = start("", "max_failed_logins_per_minute = 3\n");
    let http = reqwest::Client::new();
    let list = format!("{}/api/server/v1/identity-providers", server.url);
    let login = |user: &'static str, password: &'static str| {
        let (http, list) = (http.clone(), list.clone());
        async move {
            http.get(list)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(login(ADMIN.0, ADMIN.1).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(login(ADMIN.0, "wrong").await.status(), 401);
    }
    // Used up: even the right password is refused, unchecked, until the minute is over.
    let throttled = login(ADMIN.0, ADMIN.1).await;
    assert_eq!(throttled.status(), 429);
    let wait: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // Missing credentials are not a login attempt; other endpoints are not affected.
    let health = http
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_costs_what_a_wrong_password_costs() {
    let (_base, server) = start("", "max_failed_logins_per_minute = 0\n");
    let http = reqwest::Client::new();
    let list = format!("{}/api/server/v1/identity-providers", server.url);
    let time = |user: &str, password: &str| {
        let (http, list) = (http.clone(), list.clone());
        let (user, password) = (user.to_string(), password.to_string());
        async move {
            let started = Instant::now();
            let r = http
                .get(list)
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
            started.elapsed()
        }
    };
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for _ in 0..7 {
        unknown.push(time("nobody", "wrong").await);
        wrong.push(time(ADMIN.0, "wrong").await);
    }
    unknown.sort();
    wrong.sort();
    let (u, w) = (unknown[3].as_secs_f64(), wrong[3].as_secs_f64());
    // Both run the password hash (milliseconds); an early return for an unknown user would be
    // an order of magnitude faster.
    assert!(
        u > 0.5 * w && w > 0.5 * u,
        "unknown {u:.4}s, wrong password {w:.4}s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_assertion_or_token_is_logged_at_any_level() {
    let base = tempfile::tempdir().unwrap();
    bundled_plugins(&base.path().join("dropins"));
    let identity = std::fs::read_to_string(root().join("conf/identity.xml")).unwrap();
    let conf = conf_dir(base.path(), &deployment(""), &identity);
    let mut child = Command::new(tollgate())
        .args(["serve", "--conf"])
        .arg(&conf)
        .env("TOLLGATE_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let url = Server::attach(&mut child).expect("ready");
    let server = Server { child, url };
    let api = Api::new(&server.url);

    // A full run: an IdP, clients of both kinds, every grant, introspection, revocation,
    // replays and failures.
    let key = rsa("rsa-2048", "k1");
    let jwks = JwksServer::start(common::idp::Answer::Status(404)).await;
    jwks.serve(&[&key.jwk], &[]);
    api.idp(None, "https://idp.example", json!({"jwksUri": jwks.uri}))
        .await;
    let app = api
        .client(
            None,
            json!({"client_name": "app", "grant_types":
                   ["urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token", "client_credentials"]}),
        )
        .await;
    let (id, secret) = (
        app["client_id"].as_str().unwrap().to_string(),
        app["client_secret"].as_str().unwrap().to_string(),
    );
    let svc = api
        .client(
            None,
            json!({"client_name": "svc", "token_endpoint_auth_method": "private_key_jwt",
                   "grant_types": ["client_credentials"], "jwks_uri": jwks.uri}),
        )
        .await["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let claims = |iss: &str, sub: &str, jti: &str| {
        json!({"iss": iss, "sub": sub, "aud": "https://localhost:9443/oauth2/token",
               "exp": now() + 300, "iat": now() - 5, "jti": jti})
    };
    let assertion = sign(
        &key,
        Some("k1"),
        &claims("https://idp.example", "alice", "j1"),
    );
    let client_assertion = sign(&key, Some("k1"), &claims(&svc, &svc, "j2"));
    let mut secrets = vec![
        secret.clone(),
        ADMIN.1.to_string(),
        assertion.clone(),
        client_assertion.clone(),
    ];
    let bearer = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
    ];
    let (status, body) = api.token(None, Some((&id, &secret)), &bearer).await;
    assert_eq!(status, 200, "{body}");
    let (access, refresh) = (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(api.token(None, Some((&id, &secret)), &bearer).await.0, 400);
    let (status, body) = api
        .token(
            None,
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &client_assertion),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    secrets.push(body["access_token"].as_str().unwrap().to_string());
    let (status, body) = api
        .token(
            None,
            Some((&id, &secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    secrets.push(body["access_token"].as_str().unwrap().to_string());
    secrets.push(body["refresh_token"].as_str().unwrap().to_string());
    // Reuse of the old refresh token; a wrong secret; introspection and revocation.
    assert_eq!(
        api.token(
            None,
            Some((&id, &secret)),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .0,
        400
    );
    assert_eq!(
        api.token(
            None,
            Some((&id, "not-the-secret-xyz")),
            &[("grant_type", "client_credentials")]
        )
        .await
        .0,
        401
    );
    secrets.push("not-the-secret-xyz".into());
    for path in ["/oauth2/introspect", "/oauth2/revoke"] {
        let r = api
            .http
            .post(format!("{}{path}", api.url))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    secrets.extend([access, refresh]);

    let status = server.terminate();
    assert!(status.success());
    let log = log.join().unwrap();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "logging ran at trace"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret of {} bytes was logged",
            secret.len()
        );
        // Nor any JWT segment (the signature alone lets nothing be forged, but the claims of an
        // assertion are its holder's).
        for segment in secret.split('.').filter(|s| s.len() > 20) {
            assert!(!log.contains(segment), "part of an assertion was logged");
        }
    }
}
