//! The database schema, in numbered migrations applied at open.
//!
//! Plain SQL only (no advisory locks or other PostgreSQL-only features), so
//! the same schema can serve PostgreSQL-compatible databases. Instances
//! that start together on an empty database agree through the ledger's
//! primary key: each migration's ledger row is inserted in the migration's
//! own transaction, first; a second instance's insert waits for the first
//! to commit, then finds the version taken and moves on.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::{Pg, StoreError};

/// The migrations this build knows, in order.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE IF NOT EXISTS drawbridge_kv (
        tree TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (tree, key)
    )",
)];

/// The newest schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS drawbridge_schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
)";

/// Brings the schema to [`SCHEMA_VERSION`]; refuses a database already at
/// a newer one. Returns the version found afterwards.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<i32, StoreError> {
    create_ledger(client).await?;
    let found = version(client).await?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Engine(format!(
            "the database schema is version {found}, newer than this build of Drawbridge knows ({SCHEMA_VERSION}): run the newer release"
        )));
    }
    for (number, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > found) {
        let tx = client.transaction().await.pg("migration")?;
        let claimed = tx
            .execute(
                "INSERT INTO drawbridge_schema_migrations (version) VALUES ($1)",
                &[number],
            )
            .await;
        match claimed {
            Ok(_) => {
                tx.batch_execute(sql).await.pg("migration")?;
                tx.commit().await.pg("migration")?;
                tracing::info!(version = number, "database schema migrated");
            }
            // Another instance applied it meanwhile.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                tx.rollback().await.pg("migration")?;
            }
            Err(e) => return Err(e).pg("migration"),
        }
    }
    version(client).await
}

/// The ledger table. Two `CREATE TABLE IF NOT EXISTS` at the same moment
/// can still collide in the catalog; the loser tries again.
async fn create_ledger(client: &deadpool_postgres::Client) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match client.batch_execute(LEDGER).await {
            Ok(()) => return Ok(()),
            Err(e)
                if attempt < 10
                    && (e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                        || e.code() == Some(&SqlState::DUPLICATE_TABLE)) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e).pg("creating the migrations table"),
        }
    }
}

async fn version(client: &deadpool_postgres::Client) -> Result<i32, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM drawbridge_schema_migrations",
            &[],
        )
        .await
        .pg("reading the schema version")?;
    Ok(row.get(0))
}
