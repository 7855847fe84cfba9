//! The stores the integration tests run on: a SQLite file in a temporary directory, and a
//! migrated PostgreSQL schema of its own on the throwaway server that
//! `scripts/with-postgres.sh` starts (it exports `QUANTCORE_TEST_DATABASE_URL`).
//!
//! PostgreSQL tests never skip silently: without the variable they panic, unless
//! `QUANTCORE_SKIP_POSTGRES=1` asks to skip them, which is said on stderr.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::sync::Arc;

use quantcore_service::store::{self, PgStore, Store};

/// A migrated SQLite store in a fresh temporary directory (kept alive by the second value).
pub async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    (store::open(&url, 4).await.unwrap(), dir)
}

/// `QUANTCORE_TEST_DATABASE_URL`, or `None` when PostgreSQL tests are skipped explicitly.
///
/// # Panics
/// When the variable is unset and `QUANTCORE_SKIP_POSTGRES` is not `1`.
pub fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var("QUANTCORE_TEST_DATABASE_URL") {
        return Some(url);
    }
    if std::env::var("QUANTCORE_SKIP_POSTGRES").as_deref() == Ok("1") {
        // Straight to stderr, past the test harness capture: a skip is never silent.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: PostgreSQL test (QUANTCORE_SKIP_POSTGRES=1)\n",
        );
        return None;
    }
    panic!(
        "QUANTCORE_TEST_DATABASE_URL is not set. Run the tests through \
         `scripts/with-postgres.sh cargo test -p quantcore-service --locked`, which starts \
         a throwaway PostgreSQL, or set QUANTCORE_SKIP_POSTGRES=1 to skip them explicitly"
    );
}

/// A migrated PostgreSQL store in a schema of its own, or `None` when skipped (see
/// [`postgres_url`]).
pub async fn postgres_store() -> Option<Arc<PgStore>> {
    let url = postgres_url()?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::connect_in_schema(&url, &schema, 4).await.unwrap();
    store.migrate().await.unwrap();
    Some(Arc::new(store))
}

/// [`postgres_store`] as a `dyn Store`.
pub async fn postgres() -> Option<Arc<dyn Store>> {
    postgres_store().await.map(|store| store as Arc<dyn Store>)
}
