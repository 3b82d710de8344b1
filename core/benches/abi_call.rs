//! One component call in-process vs through the plugin ABI (FFI vtables, `FfiFuture`, the shared
//! request, JSON of the result). A loaded `.so` calls the very same vtables, so this
//! is the per-call overhead of a plugin; `dlopen` happens once, at start-up.
//!
//! cargo bench -p tollgate-core --bench abi_call

use criterion::{criterion_group, criterion_main, Criterion};
use futures::executor::block_on;
use std::sync::Arc;
use tollgate_core::abi::through_abi;
use tollgate_core::sdk::Plugin;
use tollgate_core::*;

/// A realistic small authenticator: looks at a header, answers a client.
struct HeaderAuth;

#[async_trait]
impl ClientAuthenticator for HeaderAuth {
    fn can_authenticate(&self, request: &TokenRequest) -> bool {
        request.header("x-api-key").is_some()
    }
    async fn authenticate(
        &self,
        request: &TokenRequest,
    ) -> Result<AuthenticatedClient, OAuthError> {
        match request.header("x-api-key") {
            Some("k") => Ok(AuthenticatedClient {
                client_id: "svc-a".into(),
                auth_method: "api_key".into(),
                jti: None,
            }),
            _ => Err(OAuthError::invalid_client("unknown API key")),
        }
    }
}

/// A token request the size of a real one: a form of four parameters, a handful of headers.
fn request() -> TokenRequest {
    TokenRequest::new("carbon.super", "https://localhost:9443/oauth2/token")
        .with_params([
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
            ("client_id", "svc-a"),
            ("resource", "https://api.example.com"),
        ])
        .with_headers([
            ("x-api-key", "k"),
            ("content-type", "application/x-www-form-urlencoded"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "*/*"),
            ("host", "localhost:9443"),
        ])
}

fn bench(c: &mut Criterion) {
    let plugin = Plugin::new()
        .client_authenticator(ComponentInfo::client_authenticator("header"), |_| {
            Ok(HeaderAuth)
        });
    let context = ComponentContext {
        properties: Properties::default(),
        settings: HostSettings::default(),
        host: tollgate_core::sdk::TestHost::new(0),
    };
    let in_process: Arc<dyn ClientAuthenticator> = Arc::new(HeaderAuth);
    let registrations = through_abi(plugin).expect("exports");
    let through: Arc<dyn ClientAuthenticator> = match (registrations[0].construct)(context) {
        Ok(Component::ClientAuthenticator(c)) => c,
        _ => panic!("constructs"),
    };
    let request = request();
    assert!(block_on(through.authenticate(&request)).is_ok());

    let mut group = c.benchmark_group("client_authenticator_call");
    group.bench_function("in_process", |b| {
        b.iter(|| {
            let r = std::hint::black_box(&request);
            in_process.can_authenticate(r) && block_on(in_process.authenticate(r)).is_ok()
        })
    });
    group.bench_function("through_abi", |b| {
        b.iter(|| {
            let r = std::hint::black_box(&request);
            through.can_authenticate(r) && block_on(through.authenticate(r)).is_ok()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
