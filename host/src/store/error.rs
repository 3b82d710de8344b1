//! Errors of the storage layer.
//!
//! Opening a database is the one place where an operator's input (the URL from the
//! configuration) meets the database, so [`StoreError::Open`] carries the URL — with any
//! password redacted, because the message ends up in logs — and the reason in plain words.

/// An error of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened: bad URL, unreachable server, unwritable path, …
    #[error("cannot open database {url_redacted}: {reason}")]
    Open {
        /// The URL as configured, with any password replaced by `***`.
        url_redacted: String,
        /// Why it could not be opened.
        reason: String,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// A statement failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A statement of the SQLite group-commit writer failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store is shutting down: its group-commit writer has stopped.
    #[error("the database writer has stopped")]
    Closed,
}

impl StoreError {
    pub(crate) fn open(url: &str, reason: impl std::fmt::Display) -> Self {
        StoreError::Open {
            url_redacted: redact_url(url),
            reason: reason.to_string(),
        }
    }
}

/// Replaces the password of a database URL with `***`: the one in the user info
/// (`scheme://user:password@host`) and a `password=` query parameter.
///
/// Errs on the side of hiding too much: the user info is taken up to the *last* `@`, so a
/// password containing an unescaped `@` or `/` is hidden completely.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
        None => url.to_owned(),
    };
    if let Some((head, query)) = out.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}?{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        for (url, want) in [
            (
                "postgres://u:secret@127.0.0.1:1/x",
                "postgres://u:***@127.0.0.1:1/x",
            ),
            ("postgres://u@h/x", "postgres://u@h/x"),
            (
                "postgres://h/x?password=secret&sslmode=disable",
                "postgres://h/x?password=***&sslmode=disable",
            ),
            ("postgres://u:se@cr/et@h/x", "postgres://u:***@h/x"),
            (
                "sqlite:///var/lib/tollgate/t.db",
                "sqlite:///var/lib/tollgate/t.db",
            ),
            ("sqlite::memory:", "sqlite::memory:"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
