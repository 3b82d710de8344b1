//! Plugins built out of tree, loaded from a dropins directory, enabled in identity.xml and
//! called through the ABI — and every kind of file the loader must refuse, with its message.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tollgate_core::abi::{LoadError, ABI_VERSION};
use tollgate_core::{AuthenticatedClient, ErrorCode, TokenRequest};
use tollgate_host::app;
use tollgate_host::clock::ManualClock;
use tollgate_host::config::Config;
use tollgate_host::plugins::{self, Components, Host, NoKeySource, NoTrustSources};
use tollgate_host::store::{Store, StoreOptions};

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A base dir with conf/ (deployment.toml pointing at base/dropins and base/data) and dropins/.
fn setup(identity: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let base = tempfile::tempdir().expect("tempdir");
    let dropins = base.path().join("dropins");
    std::fs::create_dir_all(&dropins).expect("dropins");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dropins, std::fs::Permissions::from_mode(0o755));
    }
    let conf = conf_dir(
        base.path(),
        "[server]\nbind = \"127.0.0.1:0\"\n[server.tls]\nenabled = false\n[super_admin]\npassword = \"test-admin\"\n",
        identity,
    );
    (base, conf, dropins)
}

/// Loads the conf dir's plugins and activates them as `tollgate serve` would.
async fn activate(conf: &Path) -> Result<Components, String> {
    let config = Config::load_with_env(conf, Vec::new()).map_err(|e| e.to_string())?;
    let store = Store::open(&config.database_url(), &StoreOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let (registry, _) = app::registry(&config, Vec::new()).map_err(|e| e.to_string())?;
    let host = Host::new(
        store,
        Arc::new(ManualClock::new(1_000_000)),
        Arc::new(NoTrustSources),
        Arc::new(NoKeySource),
    );
    plugins::activate(
        &registry,
        &config.identity,
        &app::host_settings(&config),
        &host,
    )
    .map_err(|e| e.to_string())
}

fn api_key_listener(keys: &str, property_name: &str) -> String {
    identity_with(&format!(
        r#"    <EventListener type="org.wso2.carbon.identity.core.handler.AbstractIdentityHandler"
                   name="com.example.tollgate.ApiKeyAuthenticator" orderId="50" enable="true">
      <Property name="{property_name}">{keys}</Property>
    </EventListener>"#
    ))
}

fn request_with_key(key: &str) -> TokenRequest {
    TokenRequest::new("carbon.super", "")
        .with_headers([("x-api-key", key)])
        .with_params([("grant_type", "client_credentials")])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_out_of_tree_api_key_authenticator_works_through_the_abi() {
    let keys = format!(
        "svc-a={}, svc-b={}",
        sha256_hex("alpha-key"),
        sha256_hex("beta-key")
    );
    // The property name in another case than the plugin declares: names match case-insensitively.
    let (_base, conf, dropins) = setup(&api_key_listener(&keys, "apikeys"));
    api_key_plugin(&dropins);
    let components = activate(&conf).await.expect("activates");
    assert_eq!(components.client_authenticators.len(), 1);
    assert_eq!(components.auth_methods, vec!["api_key"]);
    let auth = &components.client_authenticators[0];
    assert_eq!(auth.name, "api-key");
    assert_eq!(auth.order_id, 50);

    let right = request_with_key("beta-key");
    assert!(auth.component.can_authenticate(&right));
    let client = auth
        .component
        .authenticate(&right)
        .await
        .expect("authenticated");
    assert_eq!(
        client,
        AuthenticatedClient {
            client_id: "svc-b".into(),
            auth_method: "api_key".into(),
            jti: None,
        }
    );

    let err = auth
        .component
        .authenticate(&request_with_key("gamma-key"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    assert!(!auth.component.can_authenticate(&TokenRequest::default()));

    let (ok, out, _) = run(&["plugins", "--conf", conf.to_str().unwrap()], &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("libapi_key_authenticator.so: ABI v{ABI_VERSION}")),
        "{out}"
    );
    assert!(out.contains("client-authenticator api-key"), "{out}");
    assert!(
        out.contains("aliases: com.example.tollgate.ApiKeyAuthenticator"),
        "{out}"
    );
    assert!(
        out.contains("enabled by") && out.contains("(orderId 50)"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_property_value_fails_start_up_naming_the_listener() {
    let (_base, conf, dropins) = setup(&api_key_listener("svc-a=nothex", "ApiKeys"));
    api_key_plugin(&dropins);
    let err = activate(&conf).await.err().expect("refused");
    assert!(
        err.contains("identity.xml: line 3: EventListener \"api-key\""),
        "{err}"
    );
    assert!(err.contains("not 64 hex digits"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_property_fails_start_up_naming_it() {
    let identity = identity_with(
        r#"    <EventListener name="api-key" orderId="50" enable="true">
      <Property name="ApiKeys">svc-a=00</Property>
      <Property name="PreventTokenReuse">true</Property>
    </EventListener>"#,
    );
    let (_base, conf, dropins) = setup(&identity);
    api_key_plugin(&dropins);
    let err = activate(&conf).await.err().expect("refused");
    assert!(err.contains("identity.xml: line 3"), "{err}");
    assert!(
        err.contains("unknown property \"PreventTokenReuse\" (known: ApiKeys)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enabled_listener_without_a_plugin_is_an_error_a_disabled_one_is_fine() {
    let disabled = identity_with(
        r#"    <EventListener name="org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler" orderId="100" enable="false"/>"#,
    );
    let (_base, conf, _dropins) = setup(&disabled);
    let components = activate(&conf)
        .await
        .expect("a disabled listener needs no plugin");
    assert!(components.grant_handlers.is_empty());

    let enabled = disabled.replace("enable=\"false\"", "enable=\"true\"");
    let (_base, conf, _dropins) = setup(&enabled);
    let err = activate(&conf).await.err().expect("refused");
    assert!(
        err.contains("identity.xml: line 3: EventListener \"org.wso2.carbon.identity.oauth2.grant.jwt.JWTBearerGrantHandler\" is enabled but no plugin provides it"),
        "{err}"
    );
}

fn test_grant_identity(order: &str) -> String {
    format!(
        r#"<Server>
  <OAuth><SupportedGrantTypes><SupportedGrantType>
    <GrantTypeName>urn:example:panicky</GrantTypeName>
    <GrantTypeHandlerImplClass>org.example.TestGrantHandler</GrantTypeHandlerImplClass>
  </SupportedGrantType></SupportedGrantTypes></OAuth>
  <EventListeners>
    <EventListener name="test-grant" orderId="{order}" enable="true"/>
  </EventListeners>
</Server>"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_in_a_plugin_is_server_error_and_the_next_call_works() {
    let (_base, conf, dropins) = setup(&test_grant_identity("7"));
    test_plugin(&dropins);
    let components = activate(&conf).await.expect("activates");
    // SupportedGrantType mapped the grant type; the handler's own `provides` is not used then.
    assert_eq!(
        components.grant_handlers.keys().collect::<Vec<_>>(),
        vec!["urn:example:panicky"]
    );
    let handler = &components.grant_handlers["urn:example:panicky"].component;
    let client = AuthenticatedClient {
        client_id: "c1".into(),
        auth_method: "client_secret_basic".into(),
        jti: None,
    };
    let mut request = TokenRequest::new("carbon.super", "");

    request.set_param("grant_type", "urn:example:panicky");
    let err = handler.validate_request(&request).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);

    request.set_param("assertion", "panic");
    let err = handler.handle(&request, &client).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ServerError);
    assert!(
        err.description.contains("test-grant was asked to panic"),
        "{err}"
    );

    request.set_param("assertion", "alice");
    request.set_param("jti", "j-1");
    let grant = handler
        .handle(&request, &client)
        .await
        .expect("works after the panic");
    assert_eq!(grant.subject, "alice");
    assert_eq!(grant.claims["client"], "c1");
    // The host's jti store, reached from inside the plugin through the ABI.
    assert_eq!(grant.claims["fresh"], true);
    let replay = handler.handle(&request, &client).await.expect("answers");
    assert_eq!(replay.claims["fresh"], false);
}

/// A copy of a shared library every Linux system has, that is not a plugin.
fn system_library() -> PathBuf {
    let candidates = [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("a system shared library")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_bad_file_is_refused_with_its_own_message() {
    let (base, conf, dropins) = setup(&identity_with(""));
    let build = base.path().join("build");
    let good = test_plugin(&build);
    build_plugin(
        "tests/fixtures/test-plugin/Cargo.toml",
        "tollgate_test_plugin",
        &["wrong-abi"],
        false,
        &dropins,
        "wrong-abi.so",
    );
    build_plugin(
        "tests/fixtures/test-plugin/Cargo.toml",
        "tollgate_test_plugin",
        &[],
        true,
        &dropins,
        "panic-abort.so",
    );
    std::fs::copy(system_library(), dropins.join("not-a-plugin.so")).expect("copy");
    std::fs::write(dropins.join("empty.so"), b"").expect("empty");
    let bytes = std::fs::read(&good).expect("read");
    std::fs::write(dropins.join("truncated.so"), &bytes[..bytes.len() / 3]).expect("truncate");
    std::fs::write(dropins.join("text.so"), b"#!/bin/sh\necho not a library\n").expect("text");
    std::fs::write(dropins.join("README.txt"), b"not a .so, ignored").expect("readme");

    let found = plugins::scan(&dropins).expect("scans");
    let loaded: Vec<_> = found
        .loaded
        .iter()
        .map(|p| p.path.display().to_string())
        .collect();
    assert!(loaded.is_empty(), "loaded: {loaded:?}");
    let reason = |name: &str| -> LoadError {
        found
            .refused
            .iter()
            .find(|r| r.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not refused"))
            .reason
            .clone()
    };
    assert_eq!(
        reason("wrong-abi.so"),
        LoadError::AbiVersion {
            found: ABI_VERSION + 1,
            expected: ABI_VERSION
        }
    );
    assert_eq!(reason("panic-abort.so"), LoadError::PanicAbort);
    assert_eq!(reason("not-a-plugin.so"), LoadError::NotAPlugin);
    assert_eq!(reason("empty.so"), LoadError::Empty);
    assert_eq!(reason("text.so"), LoadError::NotSharedLibrary);
    assert!(
        matches!(reason("truncated.so"), LoadError::Open(_)),
        "{:?}",
        reason("truncated.so")
    );
    assert_eq!(found.refused.len(), 6);

    // The operator's view: `tollgate plugins` names every file and why, and fails.
    let (ok, out, _) = run(&["plugins", "--conf", conf.to_str().unwrap()], &[]);
    assert!(!ok, "{out}");
    for (file, words) in [
        (
            "wrong-abi.so",
            &*format!(
                "built against Tollgate plugin ABI v{}, but this server speaks ABI v{ABI_VERSION}",
                ABI_VERSION + 1
            ),
        ),
        ("panic-abort.so", "built with panic = \"abort\""),
        ("not-a-plugin.so", "not a Tollgate plugin"),
        ("empty.so", "empty file"),
        ("text.so", "not a shared library"),
        ("truncated.so", "the dynamic loader refused it"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("{file} not named in:\n{out}"));
        assert!(line.contains("refused") && line.contains(words), "{line}");
    }

    // And `tollgate serve` refuses to start, naming them too.
    let (ok, _, err) = run(&["serve", "--conf", conf.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("wrong-abi.so: refused") && err.contains("truncated.so: refused"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_plugins_claiming_one_name_are_refused() {
    let (_base, conf, dropins) = setup(&identity_with(""));
    test_plugin(&dropins);
    std::fs::copy(
        dropins.join("libtollgate_test_plugin.so"),
        dropins.join("libcopy.so"),
    )
    .expect("copy");
    let err = activate(&conf).await.err().expect("refused");
    assert!(
        err.contains("component name \"test-grant\" is claimed twice"),
        "{err}"
    );
    assert!(
        err.contains("libcopy.so") && err.contains("libtollgate_test_plugin.so"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_world_writable_dropins_directory_is_warned_about() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let (_base, conf, dropins) = setup(&identity_with(""));
        std::fs::set_permissions(&dropins, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let warning = plugins::warn_if_writable_by_others(&dropins).expect("warned");
        assert!(warning.contains("writable by everyone"), "{warning}");
        let (_, out, _) = run(&["plugins", "--conf", conf.to_str().unwrap()], &[]);
        assert!(
            out.contains("warning:") && out.contains("chmod go-w"),
            "{out}"
        );
        std::fs::set_permissions(&dropins, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(plugins::warn_if_writable_by_others(&dropins).is_none());
    }
}
