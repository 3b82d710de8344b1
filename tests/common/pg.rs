//! A PostgreSQL database of a test's own, on the server `TOLLGATE_TEST_POSTGRES_URL` names
//! (an admin URL; CI sets it). Tests that need one are skipped without it.
#![allow(dead_code)]

use sqlx::{Connection, Executor, PgConnection};

pub struct Database {
    admin: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl Database {
    /// Creates a fresh database; `None` when no server is configured.
    pub async fn create() -> Option<Database> {
        let admin = std::env::var("TOLLGATE_TEST_POSTGRES_URL").ok()?;
        let name = format!(
            "tollgate_e2e_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to TOLLGATE_TEST_POSTGRES_URL");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        let (base, query) = admin.split_once('?').unwrap_or((admin.as_str(), ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        };
        Some(Database { admin, name, url })
    }

    /// Drops the database (its connections are closed by force).
    pub async fn drop_now(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin).await {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
                .await;
        }
    }
}
