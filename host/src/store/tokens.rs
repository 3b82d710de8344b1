//! Issued access and refresh tokens, stored only under a key derived from the token
//! (`crate::tokens::opaque::key`).
//!
//! A token issued with a refresh token belongs to a *family*: the chain of refresh rotations of
//! one grant, together with the access tokens issued along it. A token issued alone has none
//! (`family` is `''`, and it stays out of the index on families). Revoking a family (refresh
//! token reuse, RFC 7009 revocation of a refresh token) marks its rows revoked **and** records
//! the family in `revoked_families`. Reads honour both, so a token that a rotation racing with
//! the revocation commits just after it (its `UPDATE` of the family's rows did not see them) is
//! born revoked.

use std::fmt::Write as _;

use serde_json::Value;

use super::batch::{Issue, Outcome};
use super::clients::{from_json, to_json};
use super::{JtiRecord, Pool, Store, StoreError};

/// Access or refresh token; stored as `'access'` / `'refresh'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            other => Err(StoreError::Database(sqlx::Error::Decode(
                format!("tokens.kind holds unknown kind {other:?}").into(),
            ))),
        }
    }
}

/// A token, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// `crate::tokens::opaque::key` of the token: never the token itself.
    pub hash: String,
    pub tenant: String,
    pub kind: TokenKind,
    pub client_id: String,
    pub subject: String,
    /// Space-separated; `None` when no scope was granted.
    pub scope: Option<String>,
    /// The family ([`crate::tokens::service`]): `''` for a token issued without a refresh
    /// token, which no revocation of a family reaches.
    pub family: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Revoked, by its own row or because its family was revoked.
    pub revoked: bool,
    /// `"opaque"` or `"jwt"`.
    pub format: String,
    /// JSON object of claims beyond the columns.
    pub claims: Value,
}

/// The state of a presented refresh token ([`Store::refresh_state`], [`Store::rotate_refresh`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshState {
    /// The token is live (for [`Store::rotate_refresh`]: was, and this call rotated it).
    Live(Box<TokenRecord>),
    /// No such refresh token in the tenant.
    Unknown,
    /// The token was issued to another client (it is left alone).
    WrongClient,
    Expired,
    /// The token had already been rotated or revoked: its whole family is now revoked.
    Reused,
}

/// The columns of `tokens`, in [`TokenRow`] order.
const COLUMNS: &str = "hash, tenant, kind, client_id, subject, scope, family, issued_at, \
     expires_at, revoked, format, claims";

pub(super) type TokenRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    bool,
    String,
    String,
);

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        let (
            hash,
            tenant,
            kind,
            client_id,
            subject,
            scope,
            family,
            issued_at,
            expires_at,
            revoked,
            format,
            claims,
        ) = row;
        Ok(TokenRecord {
            hash,
            tenant,
            kind: TokenKind::parse(&kind)?,
            client_id,
            subject,
            scope,
            family,
            issued_at,
            expires_at,
            revoked,
            format,
            claims: from_json(&claims, "tokens.claims")?,
        })
    }
}

/// One refresh rotation of [`Store::rotate_refresh`], as the group commit carries it.
#[derive(Debug)]
pub(super) struct Rotation {
    pub hash: String,
    pub tenant: String,
    pub client_id: String,
    pub now: i64,
    /// Stored in the rotated token's family if it was live.
    pub successors: Vec<TokenRecord>,
}

impl Rotation {
    /// The successors to store when the rotation found its token live: in the family of the
    /// token's `row`.
    pub(super) fn successors_of<'a>(
        &'a self,
        row: &'a TokenRow,
    ) -> impl Iterator<Item = TokenRecord> + 'a {
        self.successors.iter().map(|s| TokenRecord {
            family: row.6.clone(),
            ..s.clone()
        })
    }
}

/// Revokes the tokens of family `$1`. Each statement that looks a family up says
/// `family <> ''`: the index on families holds only those (migration 0004), and the planners
/// use such a partial index only for a statement that names its condition.
const REVOKE_FAMILY: &str =
    "UPDATE tokens SET revoked = TRUE WHERE family = $1 AND family <> '' AND revoked = FALSE";
/// Forgets the revoked families none of whose tokens are left.
const FORGET_FAMILIES: &str = "DELETE FROM revoked_families WHERE NOT EXISTS \
     (SELECT 1 FROM tokens t WHERE t.family = revoked_families.family AND t.family <> '')";

/// `INSERT INTO tokens … VALUES ($1, …), …` for `rows` rows of [`COLUMNS`].
pub(super) fn insert_sql(rows: usize) -> String {
    const PER_ROW: usize = 12;
    let mut insert = format!("INSERT INTO tokens ({COLUMNS}) VALUES ");
    for row in 0..rows {
        insert.push_str(if row == 0 { "(" } else { ", (" });
        for col in 1..=PER_ROW {
            let sep = if col == PER_ROW { ")" } else { ", " };
            write!(insert, "${}{sep}", row * PER_ROW + col).expect("writing to a String");
        }
    }
    insert
}

/// Binds the [`COLUMNS`] of each token of `$tokens` to `$query` (of [`insert_sql`]).
macro_rules! bind_tokens {
    ($query:expr, $tokens:expr) => {{
        let mut query = $query;
        for t in $tokens {
            query = query
                .bind(t.hash.as_str())
                .bind(t.tenant.as_str())
                .bind(t.kind.as_str())
                .bind(t.client_id.as_str())
                .bind(t.subject.as_str())
                .bind(t.scope.as_deref())
                .bind(t.family.as_str())
                .bind(t.issued_at)
                .bind(t.expires_at)
                .bind(t.revoked)
                .bind(t.format.as_str())
                .bind(to_json(&t.claims));
        }
        query
    }};
}

/// Revokes the live refresh token `$1` of tenant `$2` and client `$3` at time `$4`, returning
/// its row (see [`Store::rotate_refresh`]); no row when it was not live.
pub(super) fn rotate_sql() -> String {
    format!(
        "UPDATE tokens SET revoked = TRUE \
         WHERE hash = $1 AND kind = 'refresh' AND tenant = $2 AND client_id = $3 \
         AND revoked = FALSE AND expires_at > $4 \
         AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family = tokens.family) \
         RETURNING {COLUMNS}"
    )
}

impl Store {
    /// Checks and records `jtis` in order (each as [`Store::check_and_store_jti`] does) and,
    /// if every one was fresh, stores `tokens`, all or none — in one transaction of the group
    /// commit ([`super::batch`]); the call returns once it is committed. `Some(i)`: jti `i` had
    /// been used (those before it are recorded) and no token was stored.
    pub async fn insert_tokens(
        &self,
        jtis: Vec<JtiRecord>,
        tokens: Vec<TokenRecord>,
    ) -> Result<Option<usize>, StoreError> {
        let issue = Issue { jtis, tokens };
        match &self.writer {
            _ if issue.jtis.is_empty() && issue.tokens.is_empty() => Ok(None),
            Some(writer) => writer.issue(issue).await,
            None => Ok(self.write_batch(&[&issue], &[]).await?.0[0]),
        }
    }

    /// In one transaction: each rotation of `rotations` (a conditional `UPDATE … RETURNING` of
    /// its refresh token, see [`Store::rotate_refresh`]); each jti of `issues` in order; then,
    /// in one multi-row `INSERT`, the tokens of the issues whose jtis were all fresh and the
    /// successors of the rotations that found their token live. Returns, in order, each
    /// issue's first used jti (see [`Store::insert_tokens`]) and each rotated token's row
    /// (`None`: not live).
    pub(super) async fn write_batch(
        &self,
        issues: &[&Issue],
        rotations: &[&Rotation],
    ) -> Result<Outcome, StoreError> {
        let rotate = rotate_sql();
        let jtis: Vec<&JtiRecord> = issues.iter().flat_map(|i| &i.jtis).collect();
        // The distinct jtis in batch order, whether each entry is the first of its key, and one
        // multi-row upsert for them (the oldest `now` of the batch decides what has expired).
        let mut seen = std::collections::HashSet::new();
        let first: Vec<bool> = jtis.iter().map(|j| seen.insert(j.key)).collect();
        let unique: Vec<&JtiRecord> = jtis
            .iter()
            .zip(&first)
            .filter(|(_, f)| **f)
            .map(|(j, _)| *j)
            .collect();
        let now = jtis.iter().map(|j| j.now).min().unwrap_or(0);
        let mut upsert = String::from("INSERT INTO jti (key, exp) VALUES ");
        for i in 0..unique.len() {
            let sep = if i == 0 { "" } else { ", " };
            write!(upsert, "{sep}(${}, ${})", 2 * i + 1, 2 * i + 2).expect("writing to a String");
        }
        write!(
            upsert,
            " ON CONFLICT (key) DO UPDATE SET exp = excluded.exp WHERE jti.exp < ${} \
             RETURNING key",
            2 * unique.len() + 1
        )
        .expect("writing to a String");
        let done = with_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            // Rotations first: a live token is revoked by exactly one UPDATE, and its
            // successors join the batch's INSERT in its family.
            let mut rotated = Vec::with_capacity(rotations.len());
            let mut successors = Vec::new();
            for r in rotations {
                let row: Option<TokenRow> = sqlx::query_as(&rotate)
                    .bind(r.hash.as_str())
                    .bind(r.tenant.as_str())
                    .bind(r.client_id.as_str())
                    .bind(r.now)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = &row {
                    successors.extend(r.successors_of(row));
                }
                rotated.push(row);
            }
            // All jtis in one statement; RETURNING names those stored (new, or replacing an
            // expired row). A jti twice in one batch goes in once: the repeat is a replay.
            let mut fresh = vec![true; jtis.len()];
            if !unique.is_empty() {
                let mut query = sqlx::query_scalar::<_, Vec<u8>>(&upsert);
                for j in &unique {
                    query = query.bind(&j.key[..]).bind(j.exp);
                }
                let stored: std::collections::HashSet<Vec<u8>> =
                    query.bind(now).fetch_all(&mut *tx).await?.into_iter().collect();
                for (i, j) in jtis.iter().enumerate() {
                    fresh[i] = first[i] && stored.contains(&j.key[..]);
                }
            }
            let mut fresh = fresh.into_iter();
            let used: Vec<Option<usize>> = issues
                .iter()
                .map(|issue| {
                    let verdicts: Vec<bool> = fresh.by_ref().take(issue.jtis.len()).collect();
                    verdicts.iter().position(|f| !f)
                })
                .collect();
            let tokens = issues
                .iter()
                .zip(&used)
                .filter(|(_, used)| used.is_none())
                .flat_map(|(issue, _)| &issue.tokens);
            let rows: Vec<&TokenRecord> = tokens.chain(&successors).collect();
            if !rows.is_empty() {
                let insert = insert_sql(rows.len());
                bind_tokens!(sqlx::query(&insert), rows)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>((used, rotated))
        }
        .await)?;
        Ok(done)
    }

    /// The token whose hash is `hash`, whatever its tenant or state; `revoked` is also set when
    /// its family was revoked.
    pub async fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        const SELECT: &str = "SELECT t.hash, t.tenant, t.kind, t.client_id, t.subject, t.scope, \
             t.family, t.issued_at, t.expires_at, t.revoked, t.format, t.claims, f.family \
             FROM tokens t LEFT JOIN revoked_families f ON f.family = t.family \
             WHERE t.hash = $1";
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            i64,
            i64,
            bool,
            String,
            String,
            Option<String>,
        );
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(SELECT).bind(hash).fetch_optional(pool).await
        })?;
        let Some((a, b, c, d, e, f, g, h, i, revoked, k, l, revoked_family)) = row else {
            return Ok(None);
        };
        let revoked = revoked || revoked_family.is_some();
        TokenRecord::try_from((a, b, c, d, e, f, g, h, i, revoked, k, l)).map(Some)
    }

    /// What a presented refresh token is, by the same rules as [`Store::rotate_refresh`], and
    /// without rotating it. A reused token revokes its family here too.
    pub async fn refresh_state(
        &self,
        hash: &str,
        tenant: &str,
        client_id: &str,
        now: i64,
    ) -> Result<RefreshState, StoreError> {
        let token = self.token(hash).await?;
        self.classify(token, tenant, client_id, now).await
    }

    /// Refresh rotation, atomic: revokes the live refresh token `hash` and stores its
    /// `successors` (their `family` set to its family) in one transaction — the group commit's
    /// ([`super::batch`]), shared with other grants' writes. Of any number of
    /// concurrent callers (on any host) presenting the same token, exactly one gets
    /// [`RefreshState::Live`]: a single conditional `UPDATE … RETURNING` revokes it. A crash
    /// cannot leave a rotated token without successors, so a client that saw no answer may
    /// present its token again.
    ///
    /// When it was not live, nothing is stored and a `SELECT` says why: unknown (or another
    /// tenant's, or an access token) → `Unknown`; another client's → `WrongClient`; expired →
    /// `Expired`; already revoked — a rotated or revoked token presented again, RFC 9700
    /// §4.14.2 — → its whole family is revoked and the answer is `Reused`. So the losers of a
    /// concurrent race also revoke the winner's new tokens: two parties holding one refresh
    /// token is what reuse detection exists to catch.
    pub async fn rotate_refresh(
        &self,
        hash: &str,
        tenant: &str,
        client_id: &str,
        now: i64,
        successors: Vec<TokenRecord>,
    ) -> Result<RefreshState, StoreError> {
        let rotation = Rotation {
            hash: hash.to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            now,
            successors,
        };
        let rotated = match &self.writer {
            Some(writer) => writer.rotate(rotation).await?,
            None => self.write_batch(&[], &[&rotation]).await?.1.remove(0),
        };
        match rotated {
            Some(row) => Ok(RefreshState::Live(Box::new(row.try_into()?))),
            None => {
                let token = self.token(hash).await?;
                self.classify(token, tenant, client_id, now).await
            }
        }
    }

    /// The state of `token` as presented by `client_id` of `tenant` at `now`; revokes the
    /// family of a token presented again after its revocation.
    async fn classify(
        &self,
        token: Option<TokenRecord>,
        tenant: &str,
        client_id: &str,
        now: i64,
    ) -> Result<RefreshState, StoreError> {
        let Some(t) = token else {
            return Ok(RefreshState::Unknown);
        };
        Ok(if t.tenant != tenant || t.kind != TokenKind::Refresh {
            RefreshState::Unknown
        } else if t.client_id != client_id {
            RefreshState::WrongClient
        } else if t.expires_at <= now {
            RefreshState::Expired
        } else if t.revoked {
            self.revoke_family(&t.family).await?;
            RefreshState::Reused
        } else {
            RefreshState::Live(Box::new(t))
        })
    }

    /// RFC 7009 revocation by a client. A refresh token revokes its whole family (the grant:
    /// every refresh token of it and the access tokens issued with and after it); an access
    /// token revokes only itself.
    ///
    /// Returns whether the token is this client's in this tenant (it is revoked afterwards,
    /// even if it was before); another client's or an unknown token is left alone: `false`.
    pub async fn revoke_token(
        &self,
        hash: &str,
        tenant: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        const REVOKE_ONE: &str = "UPDATE tokens SET revoked = TRUE WHERE hash = $1";
        let Some(t) = self.token(hash).await? else {
            return Ok(false);
        };
        if t.tenant != tenant || t.client_id != client_id {
            return Ok(false);
        }
        if t.kind == TokenKind::Refresh && !t.family.is_empty() {
            self.revoke_family(&t.family).await?;
        } else {
            execute!(self, REVOKE_ONE, hash)?;
        }
        Ok(true)
    }

    /// Revokes every token of `family`, now and any inserted later. The marker goes first, so
    /// the family is revoked as soon as it is written, whatever happens to the second statement.
    /// `''` is no family (a token issued without a refresh token): nothing is revoked.
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        const MARK: &str =
            "INSERT INTO revoked_families (family) VALUES ($1) ON CONFLICT (family) DO NOTHING";
        if family.is_empty() {
            return Ok(());
        }
        execute!(self, MARK, family)?;
        execute!(self, REVOKE_FAMILY, family)?;
        Ok(())
    }

    /// Deletes the tokens that expired before `now`, revoked or not, in chunks
    /// ([`Store::purge_in_chunks`]); returns how many. Then forgets revoked families none of
    /// whose tokens are left.
    pub async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        const DELETE: &str = "DELETE FROM tokens WHERE hash IN \
             (SELECT hash FROM tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)";
        let purged = self.purge_in_chunks(DELETE, now).await?;
        execute!(self, FORGET_FAMILIES)?;
        Ok(purged)
    }

    /// Every stored token row and every revoked family, for tests that check what is stored.
    #[cfg(test)]
    pub(crate) async fn dump_tokens(&self) -> (Vec<TokenRecord>, Vec<String>) {
        let select = format!("SELECT {COLUMNS} FROM tokens");
        let rows: Vec<TokenRow> = with_pool!(self, pool => {
            sqlx::query_as(&select).fetch_all(pool).await
        })
        .expect("select tokens");
        let families: Vec<(String,)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT family FROM revoked_families").fetch_all(pool).await
        })
        .expect("select revoked_families");
        (
            rows.into_iter()
                .map(|row| row.try_into().expect("token row"))
                .collect(),
            families.into_iter().map(|(f,)| f).collect(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::super::tests::{
        commit_figures, concurrently, on_both_backends, postgres_fixture, sqlite_fixture, Fixture,
    };
    use super::*;

    /// A live token issued at 0, expiring at `expires_at`.
    pub(crate) fn token(
        hash: &str,
        tenant: &str,
        client_id: &str,
        kind: TokenKind,
        family: &str,
        expires_at: i64,
    ) -> TokenRecord {
        TokenRecord {
            hash: hash.into(),
            tenant: tenant.into(),
            kind,
            client_id: client_id.into(),
            subject: "alice".into(),
            scope: Some("read".into()),
            family: family.into(),
            issued_at: 0,
            expires_at,
            revoked: false,
            format: "opaque".into(),
            claims: json!({"iss": "https://localhost:9443/oauth2/token", "idp": "x"}),
        }
    }

    fn revoked(mut t: TokenRecord) -> TokenRecord {
        t.revoked = true;
        t
    }

    on_both_backends!(
        tokens_round_trip,
        rotate_once_then_reuse_revokes_the_family,
        rotate_classifies_failures,
        rotate_concurrently_exactly_one_wins,
        tokens_inserted_after_family_revocation_are_revoked,
        revoke_by_kind_and_owner,
        purge_counts_and_forgets_families,
        purge_takes_several_chunks,
        tokens_with_a_jti_are_stored_once,
        a_call_that_cannot_be_stored_fails_alone,
        family_lookups_use_the_index,
    );

    /// A call whose token is already stored fails the batch it is in; the others of that batch
    /// are committed regardless, and the failed commits are counted.
    async fn a_call_that_cannot_be_stored_fails_alone(fx: &Fixture) {
        let store = &fx.store;
        let stored = |hash: &str| token(hash, "t", "c", TokenKind::Access, "f", 1_000);
        store
            .insert_tokens(vec![], vec![stored("taken")])
            .await
            .expect("the first");
        let failures = commit_figures(store).3;
        let results = concurrently(store, 20, |store, i| async move {
            let hash = if i == 7 {
                "taken".to_string()
            } else {
                format!("new-{i}")
            };
            (i, store.insert_tokens(vec![], vec![stored(&hash)]).await)
        })
        .await;
        for (i, result) in results {
            match result {
                Err(_) if i == 7 => {}
                Ok(None) if i != 7 => {
                    let found = store.token(&format!("new-{i}")).await.expect("read");
                    assert!(found.is_some(), "call {i} is stored");
                }
                other => panic!("call {i}: {other:?}"),
            }
        }
        assert!(
            commit_figures(store).3 > failures,
            "the failed commit is counted"
        );
    }

    fn jti(jti: &str) -> JtiRecord {
        JtiRecord::new("s", jti, 1_000, 500)
    }

    /// Tokens stored with the jtis they depend on: of concurrent issues presenting one jti,
    /// exactly one stores its tokens (the others store nothing and learn which jti was used);
    /// a fresh jti beside a used one stays recorded.
    async fn tokens_with_a_jti_are_stored_once(fx: &Fixture) {
        let results = concurrently(&fx.store, 30, |store, i| async move {
            let t = token(&format!("h{i}"), "t", "c", TokenKind::Access, "f", 900);
            store.insert_tokens(vec![jti("same")], vec![t]).await
        })
        .await;
        let used: Vec<Option<usize>> = results.into_iter().map(|r| r.expect("insert")).collect();
        assert_eq!(used.iter().filter(|u| u.is_none()).count(), 1, "{used:?}");
        assert!(used.iter().all(|u| matches!(u, None | Some(0))), "{used:?}");
        assert_eq!(fx.store.dump_tokens().await.0.len(), 1);

        let store = &fx.store;
        let t = token("x", "t", "c", TokenKind::Access, "f", 900);
        let found = store.insert_tokens(vec![jti("new"), jti("same")], vec![t]);
        assert_eq!(found.await.expect("insert"), Some(1));
        assert_eq!(store.token("x").await.expect("token"), None);
        assert!(!store
            .check_and_store_jti("s", "new", 1_000, 500)
            .await
            .expect("recorded"));
        // No jti: the tokens alone.
        let t = token("y", "t", "c", TokenKind::Access, "f", 900);
        assert_eq!(store.insert_tokens(vec![], vec![t]).await.expect("y"), None);
        assert!(store.token("y").await.expect("token").is_some());
    }

    async fn tokens_round_trip(fx: &Fixture) {
        let store = &fx.store;
        let a = token("a", "t", "c", TokenKind::Access, "f", 100);
        let r = TokenRecord {
            scope: None,
            format: "jwt".into(),
            claims: json!({}),
            ..token("r", "t", "c", TokenKind::Refresh, "f", 200)
        };
        store
            .insert_tokens(vec![], vec![])
            .await
            .expect("insert nothing");
        store
            .insert_tokens(vec![], vec![a.clone(), r.clone()])
            .await
            .expect("insert");
        assert_eq!(store.token("a").await.expect("a"), Some(a.clone()));
        assert_eq!(store.token("r").await.expect("r"), Some(r));
        assert_eq!(store.token("x").await.expect("x"), None);
        // All or none: a duplicate hash fails the whole batch.
        let fresh = token("fresh", "t", "c", TokenKind::Access, "g", 100);
        assert!(store.insert_tokens(vec![], vec![fresh, a]).await.is_err());
        assert_eq!(store.token("fresh").await.expect("fresh"), None);
    }

    async fn rotate_once_then_reuse_revokes_the_family(fx: &Fixture) {
        let store = &fx.store;
        let a1 = token("a1", "t", "c", TokenKind::Access, "f", 100);
        let r1 = token("r1", "t", "c", TokenKind::Refresh, "f", 200);
        let other = token("o", "t", "c", TokenKind::Refresh, "g", 200);
        store
            .insert_tokens(vec![], vec![a1.clone(), r1.clone(), other.clone()])
            .await
            .expect("insert");
        // The successors are stored with the rotation, in the old token's family.
        let a2 = token("a2", "t", "c", TokenKind::Access, "f", 150);
        let r2 = token("r2", "t", "c", TokenKind::Refresh, "f", 250);
        let mut successors = [a2.clone(), r2.clone()];
        for s in &mut successors {
            s.family = "whatever the caller had".into();
        }
        assert_eq!(
            store
                .rotate_refresh("r1", "t", "c", 50, successors.to_vec())
                .await
                .expect("rotate"),
            RefreshState::Live(Box::new(revoked(r1.clone())))
        );
        assert_eq!(store.token("a2").await.expect("a2"), Some(a2.clone()));
        assert_eq!(store.token("r2").await.expect("r2"), Some(r2.clone()));
        // A failed rotation stores nothing.
        let late = [token("a3", "t", "c", TokenKind::Access, "f", 150)];
        assert_eq!(
            store
                .rotate_refresh("nope", "t", "c", 50, late.to_vec())
                .await
                .expect("unknown"),
            RefreshState::Unknown
        );
        assert_eq!(store.token("a3").await.expect("a3"), None);
        assert!(!store.token("a1").await.expect("a1").expect("a1").revoked);

        // r1 again: reuse; the whole family goes, other families stay.
        assert_eq!(
            store
                .rotate_refresh("r1", "t", "c", 60, vec![])
                .await
                .expect("reuse"),
            RefreshState::Reused
        );
        for hash in ["a1", "r1", "a2", "r2"] {
            assert!(
                store.token(hash).await.expect("t").expect("t").revoked,
                "{hash}"
            );
        }
        assert_eq!(store.token("o").await.expect("o"), Some(other));
        assert_eq!(
            store
                .rotate_refresh("r2", "t", "c", 60, vec![])
                .await
                .expect("r2"),
            RefreshState::Reused
        );
    }

    async fn rotate_classifies_failures(fx: &Fixture) {
        let store = &fx.store;
        store
            .insert_tokens(
                vec![],
                vec![
                    token("r", "t", "c", TokenKind::Refresh, "f", 100),
                    token("a", "t", "c", TokenKind::Access, "f", 100),
                ],
            )
            .await
            .expect("insert");
        for (hash, tenant, client, now, want) in [
            ("nope", "t", "c", 50, RefreshState::Unknown),
            ("r", "other", "c", 50, RefreshState::Unknown),
            ("a", "t", "c", 50, RefreshState::Unknown),
            ("r", "t", "d", 50, RefreshState::WrongClient),
            ("r", "t", "c", 100, RefreshState::Expired),
        ] {
            assert_eq!(
                store
                    .refresh_state(hash, tenant, client, now)
                    .await
                    .expect("state"),
                want,
                "{hash} {tenant} {client} {now}"
            );
            assert_eq!(
                store
                    .rotate_refresh(hash, tenant, client, now, vec![])
                    .await
                    .expect("rotate"),
                want,
                "{hash} {tenant} {client} {now}"
            );
        }
        // None of those touched the token.
        assert!(matches!(
            store
                .rotate_refresh("r", "t", "c", 99, vec![])
                .await
                .expect("rotate"),
            RefreshState::Live(_)
        ));
    }

    async fn rotate_concurrently_exactly_one_wins(fx: &Fixture) {
        fx.store
            .insert_tokens(
                vec![],
                vec![token("r", "t", "c", TokenKind::Refresh, "f", 100)],
            )
            .await
            .expect("insert");
        let outcomes = concurrently(&fx.store, 30, |store, _| async move {
            store.rotate_refresh("r", "t", "c", 50, vec![]).await
        })
        .await;
        let mut rotated = 0;
        for outcome in outcomes {
            match outcome.expect("rotate") {
                RefreshState::Live(_) => rotated += 1,
                RefreshState::Reused => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(rotated, 1);
    }

    async fn tokens_inserted_after_family_revocation_are_revoked(fx: &Fixture) {
        let store = &fx.store;
        store
            .insert_tokens(
                vec![],
                vec![token("r1", "t", "c", TokenKind::Refresh, "f", 100)],
            )
            .await
            .expect("insert");
        // A wins the rotation; B presents r1 too and revokes the family before A has stored
        // its new tokens.
        assert!(matches!(
            store
                .rotate_refresh("r1", "t", "c", 10, vec![])
                .await
                .expect("A"),
            RefreshState::Live(_)
        ));
        assert_eq!(
            store
                .rotate_refresh("r1", "t", "c", 10, vec![])
                .await
                .expect("B"),
            RefreshState::Reused
        );
        store
            .insert_tokens(
                vec![],
                vec![
                    token("a2", "t", "c", TokenKind::Access, "f", 100),
                    token("r2", "t", "c", TokenKind::Refresh, "f", 100),
                ],
            )
            .await
            .expect("A inserts late");
        assert!(store.token("a2").await.expect("a2").expect("a2").revoked);
        assert_eq!(
            store
                .rotate_refresh("r2", "t", "c", 20, vec![])
                .await
                .expect("r2"),
            RefreshState::Reused
        );
    }

    async fn revoke_by_kind_and_owner(fx: &Fixture) {
        let store = &fx.store;
        store
            .insert_tokens(
                vec![],
                vec![
                    token("a1", "t", "c", TokenKind::Access, "f", 100),
                    token("a2", "t", "c", TokenKind::Access, "f", 100),
                    token("r", "t", "c", TokenKind::Refresh, "f", 100),
                    token("g", "t", "c", TokenKind::Access, "g", 100),
                    // Issued without a refresh token: no family.
                    token("l1", "t", "c", TokenKind::Access, "", 100),
                    token("l2", "t", "c", TokenKind::Access, "", 100),
                    token("lr", "t", "c", TokenKind::Refresh, "", 100),
                ],
            )
            .await
            .expect("insert");
        let is_revoked = |hash: &'static str| async move {
            store
                .token(hash)
                .await
                .expect("token")
                .expect("exists")
                .revoked
        };
        // Another client, another tenant, unknown: nothing happens.
        assert!(!store
            .revoke_token("r", "t", "d")
            .await
            .expect("other client"));
        assert!(!store
            .revoke_token("r", "u", "c")
            .await
            .expect("other tenant"));
        assert!(!store.revoke_token("zz", "t", "c").await.expect("unknown"));
        assert!(!is_revoked("r").await);

        // An access token: only itself.
        assert!(store.revoke_token("a1", "t", "c").await.expect("access"));
        assert!(is_revoked("a1").await);
        assert!(!is_revoked("a2").await);
        assert!(!is_revoked("r").await);

        // A refresh token: its family.
        assert!(store.revoke_token("r", "t", "c").await.expect("refresh"));
        assert!(is_revoked("a2").await);
        assert!(is_revoked("r").await);
        assert!(!is_revoked("g").await);

        // Tokens without a family are no family: each is revoked alone, a refresh token too.
        assert!(!is_revoked("l1").await);
        assert!(store.revoke_token("l1", "t", "c").await.expect("lone"));
        assert!(is_revoked("l1").await);
        assert!(!is_revoked("l2").await);
        assert!(store
            .revoke_token("lr", "t", "c")
            .await
            .expect("lone refresh"));
        assert!(is_revoked("lr").await);
        assert!(!is_revoked("l2").await);
        assert_eq!(store.dump_tokens().await.1, vec!["f".to_string()]);
    }

    /// The statements that look families up use the index on families, which holds only
    /// tokens that have one: without it, revoking a family reads every token.
    async fn family_lookups_use_the_index(fx: &Fixture) {
        let store = &fx.store;
        let plans: Vec<String> = match &store.pool {
            Pool::Sqlite(pool) => {
                let mut plans = Vec::new();
                for sql in [REVOKE_FAMILY, FORGET_FAMILIES] {
                    let rows: Vec<(i64, i64, i64, String)> =
                        sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                            .bind("f")
                            .fetch_all(pool)
                            .await
                            .expect("explain");
                    plans.push(rows.into_iter().map(|r| r.3 + "\n").collect());
                }
                plans
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await.expect("connection");
                // On a table this small a scan is cheapest: ask whether the index can serve, in
                // the plan made for any `$1` (one made for 'f' could use it regardless).
                sqlx::raw_sql(&format!(
                    "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan; \
                     PREPARE revoke_family(text) AS {REVOKE_FAMILY}; \
                     PREPARE forget_families AS {FORGET_FAMILIES}"
                ))
                .execute(&mut *conn)
                .await
                .expect("prepare");
                let mut plans = Vec::new();
                for sql in [
                    "EXPLAIN EXECUTE revoke_family('f')",
                    "EXPLAIN EXECUTE forget_families",
                ] {
                    let rows: Vec<(String,)> = sqlx::query_as(sql)
                        .fetch_all(&mut *conn)
                        .await
                        .expect("explain");
                    plans.push(rows.into_iter().map(|r| r.0 + "\n").collect());
                }
                sqlx::raw_sql("DEALLOCATE ALL; RESET ALL")
                    .execute(&mut *conn)
                    .await
                    .expect("reset");
                plans
            }
        };
        for plan in plans {
            assert!(plan.contains("tokens_family"), "{plan}");
        }
    }

    async fn purge_counts_and_forgets_families(fx: &Fixture) {
        let store = &fx.store;
        store
            .insert_tokens(
                vec![],
                vec![
                    token("a", "t", "c", TokenKind::Access, "f", 10),
                    token("r", "t", "c", TokenKind::Refresh, "f", 20),
                    token("b", "t", "c", TokenKind::Access, "g", 30),
                ],
            )
            .await
            .expect("insert");
        assert!(store.revoke_token("r", "t", "c").await.expect("revoke"));
        assert_eq!(store.purge_expired_tokens(10).await.expect("purge"), 0);
        assert_eq!(store.purge_expired_tokens(15).await.expect("purge"), 1);
        assert_eq!(store.dump_tokens().await.1, vec!["f".to_string()]);
        assert_eq!(store.purge_expired_tokens(25).await.expect("purge"), 1);
        assert_eq!(store.dump_tokens().await.1, Vec::<String>::new());
        assert_eq!(store.purge_expired_tokens(25).await.expect("again"), 0);
        assert!(store.token("b").await.expect("b").is_some());
    }

    async fn purge_takes_several_chunks(fx: &Fixture) {
        let store = &fx.store;
        let expired = 2 * crate::store::PURGE_CHUNK as usize + 1;
        let tokens = (0..expired)
            .map(|i| token(&format!("old-{i}"), "t", "c", TokenKind::Access, "", 10))
            .chain([token("live", "t", "c", TokenKind::Access, "", 100)])
            .collect();
        store.insert_tokens(vec![], tokens).await.expect("insert");
        assert_eq!(
            store.purge_expired_tokens(50).await.expect("purge"),
            expired as u64
        );
        assert!(store.token("live").await.expect("live").is_some());
        assert!(store.token("old-0").await.expect("old").is_none());
        assert_eq!(store.purge_expired_tokens(50).await.expect("again"), 0);
    }
}
