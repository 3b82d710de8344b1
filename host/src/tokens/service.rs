//! [`TokenService`]: mints, stores (as hashes), rotates, introspects and revokes tokens.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};
use tollgate_core::{OAuthError, SingleUse};

use super::opaque;
use crate::clock::Clock;
use crate::config::TokenFormat;
use crate::secret::{push_hex, random_token, ServerSecret};
use crate::store::{JtiRecord, RefreshState, Store, StoreError, TokenKind, TokenRecord};

/// Claim names the service sets itself (RFC 9068 §2.2, RFC 7662 §2.2): an extra claim with one
/// of these names is dropped rather than allowed to override or duplicate them.
const RESERVED_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "exp",
    "iat",
    "nbf",
    "jti",
    "scope",
    "active",
    "token_type",
];

/// Signs JWT access tokens with the tenant's current server key.
#[async_trait]
pub trait AccessTokenSigner: Send + Sync {
    /// Signs an RFC 9068 JWT access token (header `typ` `at+jwt`) with the tenant's current key;
    /// returns the compact JWT.
    async fn sign(&self, tenant: &str, claims: Map<String, Value>) -> Result<String, String>;
}

/// Token lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

/// What to issue. Scopes are final: the caller has already checked them against the client.
#[derive(Debug, Clone)]
pub struct Issue {
    pub tenant: String,
    /// The tenant's token endpoint URL: `iss` of JWT access tokens and of introspection.
    pub issuer: String,
    pub client_id: String,
    pub subject: String,
    /// Empty: no scope (omitted from the response, NULL in the row).
    pub scopes: Vec<String>,
    /// Whether to issue a refresh token as well.
    pub refresh_token: bool,
    pub format: TokenFormat,
    /// Extra claims (of the JWT, and reported by introspection); reserved names are dropped.
    pub claims: Map<String, Value>,
    /// `Some`: the stored hash of the refresh token this issue redeems (refresh grant): it is
    /// rotated and the new tokens join its family, in one transaction. `None`: a new family.
    pub redeems: Option<String>,
    /// Assertion jtis to record in the transaction that stores the tokens; if one was already
    /// used, nothing is issued and the answer is its refusal.
    pub jtis: Vec<JtiCheck>,
}

/// An assertion's `jti` to record once, and the answer to a request that presents it again.
#[derive(Debug, Clone)]
pub struct JtiCheck {
    pub jti: SingleUse,
    pub if_used: OAuthError,
}

/// The RFC 6749 §5.1 response body.
#[derive(Clone, PartialEq, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Leaves the tokens out, so that logging a response cannot leak them.
impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("access_token", &"…")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// An RFC 7662 introspection response: `{"active":false}`, or `active` with the token's details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    pub token: Option<ActiveToken>,
}

/// What introspection tells about an active token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub client_id: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    /// `"Bearer"` for access tokens, `"refresh_token"` for refresh tokens.
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The extra claims the token was issued with.
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Introspection {
            active: false,
            token: None,
        }
    }
}

/// A failure of the token service itself (not of the client's request). Never names a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot sign the access token: {0}")]
    Sign(String),
    /// The refresh token to redeem was no longer live when it was to be rotated.
    #[error("{0}")]
    Refused(OAuthError),
}

impl TokenError {
    /// The answer to the client: a refusal as it is, any failure as a logged `server_error`.
    pub fn into_oauth(self) -> OAuthError {
        match self {
            TokenError::Refused(refusal) => refusal,
            failure => {
                tracing::error!("issuing tokens: {failure}");
                OAuthError::server_error("could not issue tokens")
            }
        }
    }
}

/// Issues and manages tokens; shared by the token, introspection and revocation endpoints.
pub struct TokenService {
    store: Store,
    secret: Arc<ServerSecret>,
    signer: Option<Arc<dyn AccessTokenSigner>>,
    clock: Arc<dyn Clock>,
    settings: TokenSettings,
}

impl TokenService {
    /// `signer` may be `None` when no JWT access token is ever issued.
    pub fn new(
        store: Store,
        secret: Arc<ServerSecret>,
        signer: Option<Arc<dyn AccessTokenSigner>>,
        clock: Arc<dyn Clock>,
        settings: TokenSettings,
    ) -> Self {
        TokenService {
            store,
            secret,
            signer,
            clock,
            settings,
        }
    }

    /// Mints the access token — opaque: [`opaque::mint`]; JWT: signed claims `iss`, `sub`,
    /// `aud` (= `client_id`), `client_id`, `exp`, `iat`, `jti`, `scope` (if any) and the extra
    /// claims (RFC 9068 §2.2) — and, when asked, an opaque refresh token in the same family.
    /// Stores both only under their [`opaque::key`], all or nothing, and returns the response body.
    pub async fn issue(&self, issue: Issue) -> Result<Issued, TokenError> {
        let Issue {
            tenant,
            issuer,
            client_id,
            subject,
            scopes,
            refresh_token,
            format,
            mut claims,
            redeems,
            jtis,
        } = issue;
        claims.retain(|name, _| !RESERVED_CLAIMS.contains(&name.as_str()));
        let now = self.clock.now();
        let expires_at = now.saturating_add(self.settings.access_ttl);
        let scope = (!scopes.is_empty()).then(|| scopes.join(" "));
        // Only a refresh token makes a family (one is what revoking a refresh token revokes);
        // a redeemed token's family replaces this one when the rotation stores the rows.
        let family = if refresh_token && redeems.is_none() {
            new_family()
        } else {
            String::new()
        };

        let (access_token, format) = match format {
            TokenFormat::Opaque => (opaque::mint(), "opaque"),
            TokenFormat::Jwt => {
                let signer = self.signer.as_ref().ok_or_else(|| {
                    TokenError::Sign("no signer is configured for JWT access tokens".into())
                })?;
                let mut jwt = claims.clone();
                jwt.insert("iss".into(), issuer.clone().into());
                jwt.insert("sub".into(), subject.clone().into());
                jwt.insert("aud".into(), client_id.clone().into());
                jwt.insert("client_id".into(), client_id.clone().into());
                jwt.insert("exp".into(), expires_at.into());
                jwt.insert("iat".into(), now.into());
                jwt.insert("jti".into(), random_token().into());
                if let Some(scope) = &scope {
                    jwt.insert("scope".into(), scope.clone().into());
                }
                let jwt = signer.sign(&tenant, jwt).await.map_err(TokenError::Sign)?;
                (jwt, "jwt")
            }
        };

        // Introspection reports `iss` for opaque tokens too, so it is kept with the claims.
        claims.insert("iss".into(), issuer.into());
        let access = TokenRecord {
            hash: opaque::key(&self.secret, &access_token),
            tenant,
            kind: TokenKind::Access,
            client_id,
            subject,
            scope: scope.clone(),
            family,
            issued_at: now,
            expires_at,
            revoked: false,
            format: format.into(),
            claims: Value::Object(claims),
        };
        let refresh_token = refresh_token.then(opaque::mint);
        let refresh = refresh_token.as_deref().map(|token| TokenRecord {
            hash: opaque::key(&self.secret, token),
            kind: TokenKind::Refresh,
            expires_at: now.saturating_add(self.settings.refresh_ttl),
            format: "opaque".into(),
            ..access.clone()
        });
        let mut rows = vec![access];
        rows.extend(refresh);
        match redeems {
            None => self.store_once(&jtis, rows, now).await?,
            Some(hash) => {
                // A rotation carries no jti of its own (the refresh grant has none): any are
                // recorded first.
                self.store_once(&jtis, Vec::new(), now).await?;
                let client_id = rows[0].client_id.clone();
                let tenant = rows[0].tenant.clone();
                let state = self
                    .store
                    .rotate_refresh(&hash, &tenant, &client_id, now, rows)
                    .await?;
                if !matches!(state, RefreshState::Live(_)) {
                    return Err(TokenError::Refused(refusal(state, &tenant, &client_id)));
                }
            }
        }

        Ok(Issued {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_ttl,
            scope,
            refresh_token,
        })
    }

    /// Records `jtis` in one commit: `Err` with the refusal of the first that was already
    /// used (the fresh ones are recorded all the same).
    pub async fn check_jtis(&self, jtis: &[JtiCheck]) -> Result<(), TokenError> {
        self.store_once(jtis, Vec::new(), self.clock.now()).await
    }

    /// Records `jtis` at `now` and, if every one was fresh, stores `rows`, in one commit; else
    /// nothing is stored and the answer is the refusal of the first that was already used.
    async fn store_once(
        &self,
        jtis: &[JtiCheck],
        rows: Vec<TokenRecord>,
        now: i64,
    ) -> Result<(), TokenError> {
        let records = jtis
            .iter()
            .map(|c| JtiRecord::new(&c.jti.scope, &c.jti.jti, c.jti.expires_at, now))
            .collect();
        match self.store.insert_tokens(records, rows).await? {
            Some(used) => Err(TokenError::Refused(jtis[used].if_used.clone())),
            None => Ok(()),
        }
    }

    /// For the `refresh_token` grant: the live refresh token's record, from which the caller
    /// re-issues with [`Issue::redeems`] set to its `hash` — the issue rotates it, atomically
    /// (exactly one of concurrent redemptions succeeds). Every refusal is `invalid_grant`
    /// naming the rule, never the token; a reused token also revokes its whole grant.
    ///
    /// With `narrow_to` (the request's `scope`), every scope must have been granted with the
    /// token (RFC 6749 §6), else `invalid_scope`; a bad request does not cost the client its
    /// refresh token.
    pub async fn redeem_refresh(
        &self,
        tenant: &str,
        client_id: &str,
        refresh_token: &str,
        narrow_to: Option<&[&str]>,
    ) -> Result<TokenRecord, OAuthError> {
        let hash = opaque::key(&self.secret, refresh_token);
        let state = self
            .store
            .refresh_state(&hash, tenant, client_id, self.clock.now())
            .await
            .map_err(|e| {
                tracing::error!("refresh token lookup: {e}");
                OAuthError::server_error("token storage is unavailable")
            })?;
        let RefreshState::Live(record) = state else {
            return Err(refusal(state, tenant, client_id));
        };
        let granted = record.scope.as_deref().unwrap_or_default();
        if let Some(extra) = narrow_to
            .unwrap_or_default()
            .iter()
            .find(|s| !granted.split(' ').any(|g| g == **s))
        {
            return Err(OAuthError::invalid_scope(format!(
                "scope {extra} was not granted with this refresh token"
            )));
        }
        Ok(*record)
    }

    /// RFC 7662: an unknown, expired or revoked token, or another tenant's, is just inactive.
    pub async fn introspect(&self, tenant: &str, token: &str) -> Result<Introspection, TokenError> {
        let now = self.clock.now();
        let Some(record) = self.store.token(&opaque::key(&self.secret, token)).await? else {
            return Ok(Introspection::inactive());
        };
        if record.tenant != tenant || record.revoked || record.expires_at <= now {
            return Ok(Introspection::inactive());
        }
        let mut claims = match record.claims {
            Value::Object(claims) => claims,
            _ => Map::new(),
        };
        let iss = match claims.remove("iss") {
            Some(Value::String(iss)) => Some(iss),
            _ => None,
        };
        claims.retain(|name, _| !RESERVED_CLAIMS.contains(&name.as_str()));
        Ok(Introspection {
            active: true,
            token: Some(ActiveToken {
                scope: record.scope,
                client_id: record.client_id,
                sub: record.subject,
                exp: record.expires_at,
                iat: record.issued_at,
                token_type: match record.kind {
                    TokenKind::Access => "Bearer",
                    TokenKind::Refresh => "refresh_token",
                },
                iss,
                claims,
            }),
        })
    }

    /// RFC 7009: revokes `token` if it is this client's (a refresh token with its whole grant);
    /// another client's or an unknown token is left alone, and that is not an error (§2.2).
    pub async fn revoke(
        &self,
        tenant: &str,
        client_id: &str,
        token: &str,
    ) -> Result<(), TokenError> {
        self.store
            .revoke_token(&opaque::key(&self.secret, token), tenant, client_id)
            .await?;
        Ok(())
    }

    /// Deletes the tokens that have expired; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, TokenError> {
        Ok(self.store.purge_expired_tokens(self.clock.now()).await?)
    }
}

/// Why a refresh token that is not live is refused.
fn refusal(state: RefreshState, tenant: &str, client_id: &str) -> OAuthError {
    match state {
        RefreshState::Live(_) | RefreshState::Unknown => {
            OAuthError::invalid_grant("refresh token unknown")
        }
        RefreshState::WrongClient => {
            OAuthError::invalid_grant("refresh token was issued to another client")
        }
        RefreshState::Expired => OAuthError::invalid_grant("refresh token expired"),
        RefreshState::Reused => {
            tracing::warn!(
                tenant,
                client_id,
                "refresh token presented again; its grant is revoked"
            );
            OAuthError::invalid_grant("refresh token was already used; its grant is revoked")
        }
    }
}

/// A new refresh-token family id: an opaque token's sequence (µs, increasing), so that the
/// index on families grows at its end instead of at random places, then 128 random bits, which
/// keep ids of families that hosts start in the same microsecond apart. (A prefix of whole
/// seconds left the thousands of families of each second on random leaves of that second's
/// range: 1.1 of the ~6.8 pages an SQLite commit wrote per jwt-bearer grant.)
fn new_family() -> String {
    let mut family = String::with_capacity(48);
    push_hex(&mut family, &opaque::next_sequence().to_be_bytes());
    push_hex(&mut family, &crate::secret::random_bytes::<16>());
    family
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;
    use tollgate_core::ErrorCode;

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::tests::{on_both_backends, postgres_fixture, sqlite_fixture, Fixture};

    const T0: i64 = 1_700_000_000;
    const ISS: &str = "https://localhost:9443/t/acme/oauth2/token";

    /// "Signs" by encoding the claims: `{tenant}.{base64url(claims JSON)}`.
    struct FakeSigner;

    #[async_trait]
    impl AccessTokenSigner for FakeSigner {
        async fn sign(&self, tenant: &str, claims: Map<String, Value>) -> Result<String, String> {
            let json = Value::Object(claims).to_string();
            Ok(format!("{tenant}.{}", URL_SAFE_NO_PAD.encode(json)))
        }
    }

    fn signed_claims(jwt: &str) -> Value {
        let (_, payload) = jwt.split_once('.').expect("fake JWT");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("claims JSON")
    }

    struct Env {
        service: Arc<TokenService>,
        clock: Arc<ManualClock>,
        store: Store,
    }

    fn env(fx: &Fixture) -> Env {
        let clock = Arc::new(ManualClock::new(T0));
        let service = TokenService::new(
            fx.store.clone(),
            Arc::new(ServerSecret::from_bytes(&[9; 32])),
            Some(Arc::new(FakeSigner)),
            clock.clone(),
            TokenSettings {
                access_ttl: 3600,
                refresh_ttl: 86400,
            },
        );
        Env {
            service: Arc::new(service),
            clock,
            store: fx.store.clone(),
        }
    }

    fn issue(format: TokenFormat, refresh_token: bool) -> Issue {
        let mut claims = Map::new();
        claims.insert("idp".into(), "https://idp.example".into());
        // Reserved names cannot be smuggled in as extra claims.
        claims.insert("sub".into(), "mallory".into());
        claims.insert("active".into(), false.into());
        Issue {
            tenant: "acme".into(),
            issuer: ISS.into(),
            client_id: "app".into(),
            subject: "alice".into(),
            scopes: vec!["read".into(), "write".into()],
            refresh_token,
            format,
            claims,
            redeems: None,
            jtis: Vec::new(),
        }
    }

    impl Env {
        async fn introspect(&self, tenant: &str, token: &str) -> Introspection {
            self.service
                .introspect(tenant, token)
                .await
                .expect("introspect")
        }

        async fn active(&self, token: &str) -> bool {
            self.introspect("acme", token).await.active
        }

        /// Redeems `refresh` and issues its successors, as the refresh grant does.
        async fn refresh(&self, refresh: &str) -> Result<Issued, OAuthError> {
            let old = self
                .service
                .redeem_refresh("acme", "app", refresh, None)
                .await?;
            let Value::Object(claims) = old.claims else {
                panic!("claims are an object")
            };
            self.service
                .issue(Issue {
                    redeems: Some(old.hash),
                    claims,
                    ..issue(TokenFormat::Opaque, true)
                })
                .await
                .map_err(TokenError::into_oauth)
        }
    }

    on_both_backends!(
        issue_stores_only_hashes,
        jwt_access_token_carries_rfc_9068_claims,
        introspection_reports_only_live_tokens,
        refresh_rotates_and_reuse_revokes_the_grant,
        refresh_refusals_name_the_rule,
        concurrent_redemptions_one_wins,
        revocation_by_owner_only,
        purge_counts_expired_tokens,
    );

    async fn issue_stores_only_hashes(fx: &Fixture) {
        let env = env(fx);
        let opaque = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let jwt = env
            .service
            .issue(issue(TokenFormat::Jwt, true))
            .await
            .expect("issue jwt");
        let no_refresh = env
            .service
            .issue(Issue {
                scopes: vec![],
                ..issue(TokenFormat::Opaque, false)
            })
            .await
            .expect("issue");
        assert_eq!(opaque.token_type, "Bearer");
        assert_eq!(opaque.expires_in, 3600);
        assert_eq!(opaque.scope.as_deref(), Some("read write"));
        assert_eq!(opaque.access_token.len(), 54);
        assert_eq!(no_refresh.refresh_token, None);
        assert_eq!(
            serde_json::to_value(&no_refresh).expect("json"),
            json!({"access_token": no_refresh.access_token, "token_type": "Bearer", "expires_in": 3600})
        );

        let secrets: Vec<String> = [&opaque, &jwt, &no_refresh]
            .into_iter()
            .flat_map(|i| [Some(i.access_token.clone()), i.refresh_token.clone()])
            .flatten()
            .collect();
        assert_eq!(secrets.len(), 5);
        let (rows, families) = env.store.dump_tokens().await;
        assert_eq!(rows.len(), 5);
        assert!(families.is_empty());
        for row in &rows {
            let columns = [
                row.hash.clone(),
                row.tenant.clone(),
                row.kind.as_str().into(),
                row.client_id.clone(),
                row.subject.clone(),
                row.scope.clone().unwrap_or_default(),
                row.family.clone(),
                row.format.clone(),
                row.claims.to_string(),
            ];
            for secret in &secrets {
                assert!(
                    !columns.iter().any(|c| c.contains(secret.as_str())),
                    "{row:?}"
                );
            }
            let key_len = if row.format == "jwt" { 64 } else { 80 };
            assert_eq!(row.hash.len(), key_len);
            assert_eq!((row.issued_at, row.revoked), (T0, false));
        }
        let stored = |token: &str| {
            let hash = opaque::key(&ServerSecret::from_bytes(&[9; 32]), token);
            rows.iter()
                .find(|r| r.hash == hash)
                .cloned()
                .expect("stored")
        };
        let access = stored(&opaque.access_token);
        let refresh = stored(opaque.refresh_token.as_deref().expect("refresh"));
        assert_eq!(
            (access.kind, access.expires_at, access.format.as_str()),
            (TokenKind::Access, T0 + 3600, "opaque")
        );
        assert_eq!(
            (refresh.kind, refresh.expires_at, refresh.format.as_str()),
            (TokenKind::Refresh, T0 + 86400, "opaque")
        );
        assert_eq!(access.family, refresh.family);
        assert_eq!(access.scope.as_deref(), Some("read write"));
        assert_eq!(
            access.claims,
            json!({"iss": ISS, "idp": "https://idp.example"})
        );
        assert_eq!(stored(&jwt.access_token).format, "jwt");
        assert_ne!(stored(&jwt.access_token).family, access.family);
        assert_eq!(stored(&no_refresh.access_token).scope, None);
        // Families come in increasing order, so the index on them grows at its end, also
        // within one second (the clock stands at T0 here).
        let families = [&opaque, &jwt].map(|i| stored(&i.access_token).family);
        assert!(families.windows(2).all(|w| w[0] < w[1]), "{families:?}");
        assert!(families.iter().all(|f| f.len() == 48));
        // A token issued without a refresh token has none (and no place in that index).
        assert_eq!(stored(&no_refresh.access_token).family, "");
    }

    async fn jwt_access_token_carries_rfc_9068_claims(fx: &Fixture) {
        let env = env(fx);
        let issued = env
            .service
            .issue(issue(TokenFormat::Jwt, false))
            .await
            .expect("issue");
        assert!(
            issued.access_token.starts_with("acme."),
            "signed for the tenant"
        );
        let mut claims = signed_claims(&issued.access_token);
        let jti = claims
            .as_object_mut()
            .and_then(|c| c.remove("jti"))
            .expect("jti");
        assert_eq!(jti.as_str().map(str::len), Some(43));
        assert_eq!(
            claims,
            json!({
                "iss": ISS, "sub": "alice", "aud": "app", "client_id": "app",
                "exp": T0 + 3600, "iat": T0, "scope": "read write",
                "idp": "https://idp.example",
            })
        );
        // Unscoped: no scope claim; a fresh jti each time.
        let unscoped = env
            .service
            .issue(Issue {
                scopes: vec![],
                ..issue(TokenFormat::Jwt, false)
            })
            .await
            .expect("issue");
        let unscoped = signed_claims(&unscoped.access_token);
        assert_eq!(unscoped.get("scope"), None);
        assert_ne!(unscoped.get("jti"), Some(&jti));
        // A JWT is introspectable like an opaque token.
        assert!(env.active(&issued.access_token).await);

        // Without a signer, a JWT cannot be issued, and nothing is stored.
        let unsigned = TokenService::new(
            env.store.clone(),
            Arc::new(ServerSecret::from_bytes(&[9; 32])),
            None,
            env.clock.clone(),
            TokenSettings {
                access_ttl: 1,
                refresh_ttl: 1,
            },
        );
        let err = unsigned
            .issue(issue(TokenFormat::Jwt, true))
            .await
            .expect_err("no signer");
        assert!(matches!(err, TokenError::Sign(_)), "{err}");
        assert_eq!(env.store.dump_tokens().await.0.len(), 2);
    }

    async fn introspection_reports_only_live_tokens(fx: &Fixture) {
        let env = env(fx);
        let issued = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let refresh = issued.refresh_token.clone().expect("refresh");
        let active = env.introspect("acme", &issued.access_token).await;
        assert_eq!(
            serde_json::to_value(&active).expect("json"),
            json!({
                "active": true, "scope": "read write", "client_id": "app", "sub": "alice",
                "exp": T0 + 3600, "iat": T0, "token_type": "Bearer", "iss": ISS,
                "idp": "https://idp.example",
            })
        );
        let refresh_info = env.introspect("acme", &refresh).await;
        assert_eq!(
            refresh_info.token.map(|t| (t.token_type, t.exp)),
            Some(("refresh_token", T0 + 86400))
        );

        let inactive = json!({"active": false});
        for (tenant, token) in [
            ("other", issued.access_token.as_str()),
            ("acme", "garbage"),
            ("acme", ""),
        ] {
            let got = env.introspect(tenant, token).await;
            assert_eq!(serde_json::to_value(&got).expect("json"), inactive);
        }

        // Expiry: live up to exp, not at it.
        env.clock.set(T0 + 3599);
        assert!(env.active(&issued.access_token).await);
        env.clock.set(T0 + 3600);
        assert!(!env.active(&issued.access_token).await);
        assert!(env.active(&refresh).await);

        // Revoked.
        env.service
            .revoke("acme", "app", &refresh)
            .await
            .expect("revoke");
        assert!(!env.active(&refresh).await);
    }

    async fn refresh_rotates_and_reuse_revokes_the_grant(fx: &Fixture) {
        let env = env(fx);
        let first = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let r1 = first.refresh_token.clone().expect("refresh");
        env.clock.advance(10);

        let second = env.refresh(&r1).await.expect("first redemption");
        let r2 = second.refresh_token.clone().expect("rotated");
        assert_ne!(r2, r1);
        assert!(
            !env.active(&r1).await,
            "the old refresh token stops working"
        );
        for token in [&first.access_token, &second.access_token, &r2] {
            assert!(env.active(token).await);
        }
        // The successors keep subject, scope and extra claims, with fresh times.
        let info = env.introspect("acme", &second.access_token).await;
        let info = info.token.expect("active");
        assert_eq!((info.sub.as_str(), info.iat), ("alice", T0 + 10));
        assert_eq!(info.claims.get("idp"), Some(&json!("https://idp.example")));

        // r1 again: reuse. Every token of the grant is revoked, the new ones included.
        let err = env.refresh(&r1).await.expect_err("reuse");
        assert_eq!(err.code, ErrorCode::InvalidGrant);
        assert_eq!(
            err.description,
            "refresh token was already used; its grant is revoked"
        );
        for token in [&first.access_token, &second.access_token, &r2] {
            assert!(!env.active(token).await);
        }
        let err = env.refresh(&r2).await.expect_err("r2 is revoked too");
        assert_eq!(err.code, ErrorCode::InvalidGrant);

        // Other grants are untouched.
        let other = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        assert!(env
            .refresh(other.refresh_token.as_deref().expect("refresh"))
            .await
            .is_ok());
    }

    async fn refresh_refusals_name_the_rule(fx: &Fixture) {
        let env = env(fx);
        let issued = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let refresh = issued.refresh_token.clone().expect("refresh");
        let refuse = |tenant: &'static str, client: &'static str, token: String| {
            let service = env.service.clone();
            async move {
                let err = service
                    .redeem_refresh(tenant, client, &token, None)
                    .await
                    .expect_err("refused");
                assert_eq!(err.code, ErrorCode::InvalidGrant);
                assert!(!err.description.contains(&token), "{err}");
                err.description
            }
        };
        assert_eq!(
            refuse("acme", "app", "garbage".into()).await,
            "refresh token unknown"
        );
        assert_eq!(
            refuse("other", "app", refresh.clone()).await,
            "refresh token unknown"
        );
        assert_eq!(
            refuse("acme", "app", issued.access_token.clone()).await,
            "refresh token unknown"
        );
        assert_eq!(
            refuse("acme", "thief", refresh.clone()).await,
            "refresh token was issued to another client"
        );
        env.clock.advance(86400);
        assert_eq!(
            refuse("acme", "app", refresh.clone()).await,
            "refresh token expired"
        );
    }

    async fn concurrent_redemptions_one_wins(fx: &Fixture) {
        let env = env(fx);
        let issued = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let refresh = Arc::new(issued.refresh_token.expect("refresh"));
        let env = Arc::new(env);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let (env, refresh) = (env.clone(), refresh.clone());
            tasks.spawn(async move { env.refresh(&refresh).await });
        }
        let results = tasks.join_all().await;
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        for err in results.into_iter().filter_map(Result::err) {
            assert_eq!(
                err.description,
                "refresh token was already used; its grant is revoked"
            );
        }
    }

    async fn revocation_by_owner_only(fx: &Fixture) {
        let env = env(fx);
        let first = env
            .service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        let second = env
            .refresh(first.refresh_token.as_deref().expect("refresh"))
            .await
            .expect("refresh");
        let r2 = second.refresh_token.clone().expect("refresh");

        // Another client's, another tenant's, unknown: accepted, nothing happens.
        env.service
            .revoke("acme", "other", &r2)
            .await
            .expect("revoke");
        env.service
            .revoke("beta", "app", &r2)
            .await
            .expect("revoke");
        env.service
            .revoke("acme", "app", "garbage")
            .await
            .expect("revoke");
        assert!(env.active(&r2).await);

        // An access token alone.
        env.service
            .revoke("acme", "app", &second.access_token)
            .await
            .expect("revoke");
        assert!(!env.active(&second.access_token).await);
        assert!(env.active(&first.access_token).await);
        assert!(env.active(&r2).await);

        // The refresh token: the access tokens issued with it and before it go too.
        env.service
            .revoke("acme", "app", &r2)
            .await
            .expect("revoke");
        assert!(!env.active(&r2).await);
        assert!(!env.active(&first.access_token).await);
        let err = env.refresh(&r2).await.expect_err("revoked");
        assert_eq!(err.code, ErrorCode::InvalidGrant);
    }

    async fn purge_counts_expired_tokens(fx: &Fixture) {
        let env = env(fx);
        env.service
            .issue(issue(TokenFormat::Opaque, true))
            .await
            .expect("issue");
        env.service
            .issue(issue(TokenFormat::Opaque, false))
            .await
            .expect("issue");
        assert_eq!(env.service.purge_expired().await.expect("purge"), 0);
        env.clock.advance(3601);
        assert_eq!(env.service.purge_expired().await.expect("purge"), 2);
        env.clock.advance(86400);
        assert_eq!(env.service.purge_expired().await.expect("purge"), 1);
        assert!(env.store.dump_tokens().await.0.is_empty());
    }

    #[test]
    fn responses_serialize_per_rfc_and_debug_hides_tokens() {
        let issued = Issued {
            access_token: "AT-secret".into(),
            token_type: "Bearer",
            expires_in: 60,
            scope: Some("a b".into()),
            refresh_token: Some("RT-secret".into()),
        };
        assert_eq!(
            serde_json::to_value(&issued).expect("json"),
            json!({"access_token": "AT-secret", "token_type": "Bearer", "expires_in": 60,
                   "scope": "a b", "refresh_token": "RT-secret"})
        );
        let debug = format!("{issued:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert_eq!(
            serde_json::to_string(&Introspection::inactive()).expect("json"),
            r#"{"active":false}"#
        );
    }
}
