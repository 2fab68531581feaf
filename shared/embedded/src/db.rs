//! The one SQLite connection: opening, pragmas, migrations, and running calls off the async
//! workers.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madoguchi_ports::{PortError, PortResult};
use rusqlite::Connection;

/// Schema migrations, applied in order; `migrations.version` records the last one applied.
/// Never edit an applied migration: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: items and queue messages.
    r#"
    CREATE TABLE items (
        pk         TEXT    NOT NULL,
        sk         TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        data       TEXT    NOT NULL,
        gsi1pk     TEXT,
        gsi1sk     TEXT,
        expires_at INTEGER,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk);

    CREATE TABLE queue_messages (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        queue         TEXT    NOT NULL,
        id            TEXT    NOT NULL UNIQUE,
        body          TEXT    NOT NULL,
        visible_at    INTEGER NOT NULL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt       TEXT UNIQUE,
        created_at    INTEGER NOT NULL
    );
    CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at);
    "#,
];

#[cfg(test)]
pub(crate) const MIGRATION_COUNT: usize = MIGRATIONS.len();

/// Shared handle on the connection. Cloning shares the connection.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Arc<Mutex<Connection>>,
}

pub(crate) fn sql_err(e: rusqlite::Error) -> PortError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            PortError::Unavailable("sqlite busy".into())
        }
        // rusqlite's messages carry SQL text and codes, never bound values.
        _ => PortError::Backend(format!("sqlite: {e}")),
    }
}

impl Db {
    pub(crate) fn open(path: &Path) -> PortResult<Self> {
        // Create the file owner-only; SQLite gives the -wal and -shm files the same mode.
        match crate::fsutil::create_new_with_mode(path, 0o600) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(crate::fsutil::io_err("create database file", e)),
        }
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(sql_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(PortError::Backend(format!(
                "sqlite refused WAL mode (got {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql_err)?;
        // Deleted content is overwritten with zeros, not left in free pages: data that must be
        // gone once deleted (a pre-application after its QR is issued, expired sessions) is
        // gone from the file too. (Old WAL frames go at the next checkpoint.)
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(sql_err)?;
        // Checkpoints (copying the WAL back into the database, with an fsync) run on their
        // own connection in the background, not inside whichever request happens to cross
        // the WAL's size threshold: that request would wait for the disk.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sql_err)?;
        let mut conn = conn;
        migrate(&mut conn)?;
        let conn = Arc::new(Mutex::new(conn));
        spawn_checkpointer(path, Arc::downgrade(&conn));
        Ok(Self { conn })
    }

    /// Runs `f` with the connection on tokio's blocking pool, so SQLite's blocking I/O and
    /// lock waits never stall the async workers.
    pub(crate) async fn call<R, F>(&self, f: F) -> PortResult<R>
    where
        F: FnOnce(&mut Connection) -> PortResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| PortError::Backend("sqlite connection lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| PortError::Backend(format!("sqlite task failed: {e}")))?
    }

    #[cfg(test)]
    pub(crate) fn with_conn<R>(&self, f: impl FnOnce(&Connection) -> R) -> R {
        f(&self.conn.lock().expect("lock"))
    }
}

/// How often the background checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Runs passive checkpoints from a second connection until the main connection is dropped.
/// A passive checkpoint never blocks writers: they keep appending to the WAL meanwhile.
fn spawn_checkpointer(path: &Path, alive: std::sync::Weak<Mutex<Connection>>) {
    let path = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let Ok(conn) = Connection::open(&path) else {
                tracing::warn!("checkpoint connection not opened; the WAL grows until restart");
                return;
            };
            let _ = conn.busy_timeout(Duration::from_secs(1));
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if alive.strong_count() == 0 {
                    // The store is closed: one last full checkpoint, then stop.
                    let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
                    return;
                }
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint skipped");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "checkpoint thread not started; the WAL grows until restart");
    }
}

fn migrate(conn: &mut Connection) -> PortResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS migrations (
             version    INTEGER PRIMARY KEY,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(sql_err)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(PortError::Backend(format!(
            "database schema version {current} is newer than this binary ({known})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.execute(
            "INSERT INTO migrations (version, applied_at) VALUES (?1, unixepoch())",
            [version],
        )
        .map_err(sql_err)?;
        tracing::info!(version, "sqlite schema migrated");
    }
    tx.commit().map_err(sql_err)
}
