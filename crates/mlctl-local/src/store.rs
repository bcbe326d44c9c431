//! The durable state store: one SQLite database (WAL, so readers such as `mlctl get` never
//! block a running `mlctl run`) holding runs, jobs, attempts, processes, events and the
//! scheduler's event log.
//!
//! Every `mlctl` process opens it; writes that must be serialized across processes (the
//! scheduler log) use `BEGIN IMMEDIATE` transactions. Times are Unix seconds (`f64`).

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer mlctl.
    #[error("the state store has schema version {found}; this mlctl understands up to {supported}")]
    Version {
        /// Found.
        found: i64,
        /// Supported.
        supported: i64,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS owners (
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  start_time INTEGER NOT NULL,
  started_at REAL NOT NULL,
  command TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  namespace TEXT NOT NULL,
  spec_dir TEXT NOT NULL,
  sources INTEGER NOT NULL REFERENCES sources(id),
  params TEXT NOT NULL,
  options TEXT NOT NULL,
  phase TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  owner INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL,
  finished_at REAL
);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs(id),
  name TEXT NOT NULL,
  phase TEXT NOT NULL,
  workers INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  message TEXT NOT NULL DEFAULT '',
  outputs TEXT NOT NULL DEFAULT '{}',
  started_at REAL,
  finished_at REAL,
  UNIQUE (run_id, name)
);
CREATE TABLE IF NOT EXISTS attempts (
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  number INTEGER NOT NULL,
  sched_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  placement TEXT,
  queued_at REAL NOT NULL,
  started_at REAL,
  finished_at REAL
);
CREATE TABLE IF NOT EXISTS processes (
  id INTEGER PRIMARY KEY,
  attempt_id INTEGER NOT NULL REFERENCES attempts(id),
  rank INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  start_time INTEGER NOT NULL,
  log_path TEXT NOT NULL,
  exit TEXT,
  started_at REAL NOT NULL,
  finished_at REAL
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  job TEXT NOT NULL DEFAULT '',
  at REAL NOT NULL,
  type TEXT NOT NULL,
  reason TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
  key TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  job TEXT NOT NULL,
  outputs TEXT NOT NULL,
  work TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sched_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  epoch INTEGER NOT NULL,
  owner INTEGER NOT NULL,
  event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS services (
  run_id TEXT PRIMARY KEY REFERENCES runs(id),
  status TEXT,
  model_request TEXT,
  updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs(run_id);
CREATE INDEX IF NOT EXISTS attempts_job ON attempts(job_id);
CREATE INDEX IF NOT EXISTS processes_attempt ON processes(attempt_id);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id);
";

/// Runs `f` again while SQLite reports a busy database, for up to 30 seconds.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// The store.
pub struct Store {
    conn: Connection,
    /// Whether writes are grouped into one transaction until [`Store::commit_batch`].
    batching: std::cell::Cell<bool>,
    /// When the open group's transaction began.
    opened: std::cell::Cell<Option<std::time::Instant>>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Id (`quickstart-x7k2p`).
    pub id: String,
    /// The object's name.
    pub name: String,
    /// The object's kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// The directory of the spec file (relative paths resolve here).
    pub spec_dir: String,
    /// The id of the stored source texts (see [`Store::sources`]); runs submitted together
    /// share them.
    pub sources: i64,
    /// Parameter overrides, as JSON.
    pub params: String,
    /// Run options, as JSON.
    pub options: String,
    /// Phase.
    pub phase: String,
    /// Why it is in that phase.
    pub message: String,
    /// The owner process driving it.
    pub owner: Option<i64>,
    /// Whether `mlctl cancel` asked to stop it.
    pub cancel_requested: bool,
    /// Created.
    pub created_at: f64,
    /// Finished.
    pub finished_at: Option<f64>,
}

/// A job (a TrainingJob, a pipeline step, a component of a data job) of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Id.
    pub id: i64,
    /// The run.
    pub run_id: String,
    /// Name in the run.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// Gang size.
    pub workers: u32,
    /// Attempts made.
    pub attempts: u32,
    /// Why it is in that phase.
    pub message: String,
    /// Output parameters, as a JSON object.
    pub outputs: String,
    /// Started.
    pub started_at: Option<f64>,
    /// Finished.
    pub finished_at: Option<f64>,
}

/// One attempt of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Id.
    pub id: i64,
    /// The job.
    pub job_id: i64,
    /// 1-based.
    pub number: u32,
    /// The id the scheduler knows it by.
    pub sched_id: String,
    /// Phase.
    pub phase: String,
    /// A one-word reason (`DeadlineExceeded`, `Lost`, `GangFailed`).
    pub reason: String,
    /// Details.
    pub message: String,
    /// The placement, as JSON.
    pub placement: Option<String>,
    /// Queued.
    pub queued_at: f64,
    /// Started.
    pub started_at: Option<f64>,
    /// Finished.
    pub finished_at: Option<f64>,
}

/// One process of an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    /// Id.
    pub id: i64,
    /// The attempt.
    pub attempt_id: i64,
    /// Worker rank.
    pub rank: u32,
    /// Pid (and process group).
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
    /// Its log file.
    pub log_path: String,
    /// How it ended (`exit code 1`), if it did.
    pub exit: Option<String>,
    /// Started.
    pub started_at: f64,
    /// Finished.
    pub finished_at: Option<f64>,
}

/// An event, as `describe` shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// The job it is about (empty: the run).
    pub job: String,
    /// When.
    pub at: f64,
    /// `Normal` or `Warning`.
    pub kind: String,
    /// A one-word reason.
    pub reason: String,
    /// Details.
    pub message: String,
}

/// An owner: an mlctl process driving runs.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerRow {
    /// Id.
    pub id: i64,
    /// Pid.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

/// Values for a new run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// Id.
    pub id: &'a str,
    /// Object name.
    pub name: &'a str,
    /// Object kind.
    pub kind: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Spec directory.
    pub spec_dir: &'a str,
    /// Stored sources (from [`Store::put_sources`]).
    pub sources: i64,
    /// Params JSON.
    pub params: &'a str,
    /// Options JSON.
    pub options: &'a str,
    /// Owner.
    pub owner: i64,
    /// Now.
    pub now: f64,
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: r.get(2)?,
        namespace: r.get(3)?,
        spec_dir: r.get(4)?,
        sources: r.get(5)?,
        params: r.get(6)?,
        options: r.get(7)?,
        phase: r.get(8)?,
        message: r.get(9)?,
        owner: r.get(10)?,
        cancel_requested: r.get::<_, i64>(11)? != 0,
        created_at: r.get(12)?,
        finished_at: r.get(13)?,
    })
}

const RUN_COLUMNS: &str = "id, name, kind, namespace, spec_dir, sources, params, options, phase, message, owner, cancel_requested, created_at, finished_at";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        name: r.get(2)?,
        phase: r.get(3)?,
        workers: r.get(4)?,
        attempts: r.get(5)?,
        message: r.get(6)?,
        outputs: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
    })
}

const JOB_COLUMNS: &str =
    "id, run_id, name, phase, workers, attempts, message, outputs, started_at, finished_at";

fn attempt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: r.get(0)?,
        job_id: r.get(1)?,
        number: r.get(2)?,
        sched_id: r.get(3)?,
        phase: r.get(4)?,
        reason: r.get(5)?,
        message: r.get(6)?,
        placement: r.get(7)?,
        queued_at: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
    })
}

const ATTEMPT_COLUMNS: &str = "id, job_id, number, sched_id, phase, reason, message, placement, queued_at, started_at, finished_at";

fn process_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProcessRow> {
    Ok(ProcessRow {
        id: r.get(0)?,
        attempt_id: r.get(1)?,
        rank: r.get(2)?,
        pid: r.get(3)?,
        start_time: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
        log_path: r.get(5)?,
        exit: r.get(6)?,
        started_at: r.get(7)?,
        finished_at: r.get(8)?,
    })
}

const PROCESS_COLUMNS: &str =
    "id, attempt_id, rank, pid, start_time, log_path, exit, started_at, finished_at";

impl Store {
    /// Opens (and creates or migrates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The last connection to close leaves the WAL as it is instead of copying it into the
        // database: that copy and its two fsyncs took ~10 ms at the end of a 200-step run.
        // Commits still checkpoint it every 1,000 pages, and every reader reads through it.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        // Plans do not depend on the values bound to a statement. Without this, SQLite (built
        // with STAT4) prepares a statement again whenever a value it may plan by changes: the
        // scheduler log's `seq > ?` was parsed and planned anew at every sync, ~3% of the
        // dispatcher's CPU in a pipeline. The statements here look rows up by key or index,
        // whatever the value; the one `LIKE` (a run found by a prefix of its id) scans `runs`
        // either way, since `LIKE` ignores case and the key's collation does not.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Readers (`mlctl get`) must not write: the journal mode and the schema are changed
        // only when they are not what they should be, and with retries, because SQLite
        // reports a busy database at once (without waiting) in some of these cases.
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        }
        let version = || -> rusqlite::Result<Option<i64>> {
            match conn.query_row(
                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            ) {
                Ok(v) => Ok(Some(v)),
                Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                Err(rusqlite::Error::SqliteFailure(_, Some(msg)))
                    if msg.contains("no such table") =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        };
        match version()? {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Version {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
            None => retry_busy(|| {
                conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
                ))
                .inspect_err(|_| {
                    let _ = conn.execute_batch("ROLLBACK");
                })
            })?,
        }
        // every statement of the hot paths stays prepared
        conn.set_prepared_statement_cache_capacity(128);
        Ok(Self {
            conn,
            batching: std::cell::Cell::new(false),
            opened: std::cell::Cell::new(None),
        })
    }

    /// Groups the writes that follow into one transaction (opened by the first of them, with
    /// `BEGIN IMMEDIATE`), committed by [`Store::commit_batch`] or [`Store::end_batch`]:
    /// what one pass of the dispatcher writes becomes visible, and durable, at once. Reads
    /// never open it, so that a pass that writes nothing holds no lock.
    pub fn begin_batch(&self) {
        self.batching.set(true);
    }

    /// Commits the writes grouped so far; later writes start a new group.
    pub fn commit_batch(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.prepare_cached("COMMIT")?.execute([])?;
        }
        self.opened.set(None);
        Ok(())
    }

    /// How long the writes grouped so far have waited for their commit; none when there are
    /// none.
    pub fn uncommitted_for(&self) -> Option<Duration> {
        self.opened
            .get()
            .filter(|_| !self.conn.is_autocommit())
            .map(|t| t.elapsed())
    }

    /// Commits the writes grouped so far and writes each statement on its own again.
    pub fn end_batch(&self) -> Result<()> {
        self.batching.set(false);
        self.commit_batch()
    }

    /// Opens the batch's transaction before its first write.
    fn writing(&self) -> rusqlite::Result<()> {
        if self.batching.get() && self.conn.is_autocommit() {
            // prepared once, like every statement of the hot paths (a batch is begun and
            // committed at most once per pass of the dispatcher)
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            self.opened.set(Some(std::time::Instant::now()));
        }
        Ok(())
    }

    /// Runs a writing statement (prepared once per connection).
    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.writing()?;
        self.conn.prepare_cached(sql)?.execute(params)
    }

    /// Reads one row (with a statement prepared once per connection).
    fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, f)
    }

    /// A value of the store's settings.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .row(
                "SELECT value FROM meta WHERE key = ?1",
                params![format!("setting.{key}")],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets a value of the store's settings.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![format!("setting.{key}"), value],
        )?;
        Ok(())
    }

    /// Registers the calling process as an owner.
    pub fn register_owner(
        &self,
        pid: u32,
        start_time: u64,
        command: &str,
        now: f64,
    ) -> Result<i64> {
        self.exec(
            "INSERT INTO owners (pid, start_time, started_at, command) VALUES (?1, ?2, ?3, ?4)",
            params![pid, i64::try_from(start_time).unwrap_or(0), now, command],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every owner.
    pub fn owners(&self) -> Result<Vec<OwnerRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, pid, start_time FROM owners")?;
        let rows = st.query_map([], |r| {
            Ok(OwnerRow {
                id: r.get(0)?,
                pid: r.get(1)?,
                start_time: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Removes owners that drive nothing any more.
    pub fn forget_owner(&self, id: i64) -> Result<()> {
        self.exec("DELETE FROM owners WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// Stores the source texts of a submission (JSON, `[{"name":..,"text":..}]`), so that
    /// a run can be resumed without its files; returns their id.
    pub fn put_sources(&self, body: &str) -> Result<i64> {
        self.exec("INSERT INTO sources (body) VALUES (?1)", params![body])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The stored source texts.
    pub fn sources(&self, id: i64) -> Result<String> {
        Ok(
            self.row("SELECT body FROM sources WHERE id = ?1", params![id], |r| {
                r.get(0)
            })?,
        )
    }

    /// The stored source texts as (name, text) pairs.
    pub fn source_texts(&self, id: i64) -> Result<Vec<(String, String)>> {
        Ok(self
            .source_fields(id, "text")?
            .into_iter()
            .map(|(name, text)| (name, text.unwrap_or_default()))
            .collect())
    }

    /// The directory source file `name` was read from (relative paths in its objects resolve
    /// there), when it was recorded.
    pub fn source_dir(&self, id: i64, name: &str) -> Result<Option<String>> {
        Ok(self
            .source_fields(id, "dir")?
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, dir)| dir))
    }

    fn source_fields(&self, id: i64, field: &str) -> Result<Vec<(String, Option<String>)>> {
        let body = self.sources(id)?;
        let sources: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        Ok(sources
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_string(),
                    s[field].as_str().map(str::to_string),
                )
            })
            .collect())
    }

    /// Adds a run.
    pub fn insert_run(&self, run: &NewRun<'_>) -> Result<()> {
        self.exec(
            "INSERT INTO runs (id, name, kind, namespace, spec_dir, sources, params, options, phase, owner, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'Pending', ?9, ?10)",
            params![run.id, run.name, run.kind, run.namespace, run.spec_dir, run.sources, run.params, run.options, run.owner, run.now],
        )?;
        Ok(())
    }

    /// Whether a run id is taken.
    pub fn run_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .row("SELECT 1 FROM runs WHERE id = ?1", params![id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Sets a run's phase (and its finish time when `finished`).
    pub fn set_run_phase(
        &self,
        id: &str,
        phase: &str,
        message: &str,
        finished_at: Option<f64>,
    ) -> Result<()> {
        self.exec(
            "UPDATE runs SET phase = ?2, message = ?3, finished_at = COALESCE(?4, finished_at) WHERE id = ?1",
            params![id, phase, message, finished_at],
        )?;
        Ok(())
    }

    /// Makes `owner` the driver of a run.
    pub fn set_run_owner(&self, id: &str, owner: i64) -> Result<()> {
        self.exec(
            "UPDATE runs SET owner = ?2 WHERE id = ?1",
            params![id, owner],
        )?;
        Ok(())
    }

    /// The run with this id, or the only run whose id starts with it.
    pub fn find_run(&self, id: &str) -> Result<Option<RunRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1 OR id LIKE ?2 ESCAPE '\\' ORDER BY id = ?1 DESC LIMIT 2"
        ))?;
        let pattern = format!(
            "{}%",
            id.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows: Vec<RunRow> = st
            .query_map(params![id, pattern], run_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(match rows.as_slice() {
            [only] => Some(only.clone()),
            [exact, ..] if exact.id == id => Some(exact.clone()),
            _ => None,
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id"
        ))?;
        Ok(st
            .query_map([], run_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Runs driven by `owner` that have not finished.
    pub fn active_runs_of(&self, owner: i64) -> Result<Vec<RunRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE owner = ?1 AND finished_at IS NULL ORDER BY created_at"
        ))?;
        Ok(st
            .query_map(params![owner], run_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The unfinished run of this kind, name and namespace (the newest, if several).
    pub fn active_run(&self, kind: &str, name: &str, namespace: &str) -> Result<Option<RunRow>> {
        Ok(self
            .row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE kind = ?1 AND name = ?2 AND namespace = ?3 AND finished_at IS NULL ORDER BY created_at DESC LIMIT 1"
                ),
                params![kind, name, namespace],
                run_row,
            )
            .optional()?)
    }

    /// Records the state of a service run (JSON).
    pub fn set_service_status(&self, run: &str, status: &str, now: f64) -> Result<()> {
        self.set_service_field(run, "status", status, now)
    }

    /// The recorded state of a service run (JSON).
    pub fn service_status(&self, run: &str) -> Result<Option<String>> {
        Ok(self
            .row(
                "SELECT status FROM services WHERE run_id = ?1",
                params![run],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Asks a service run's owner to serve `model` (a later request replaces an earlier one
    /// not yet taken).
    pub fn request_model(&self, run: &str, model: &str, now: f64) -> Result<()> {
        self.set_service_field(run, "model_request", model, now)
    }

    fn set_service_field(&self, run: &str, column: &str, value: &str, now: f64) -> Result<()> {
        retry_busy(|| {
            self.exec(
                &format!(
                    "INSERT INTO services (run_id, {column}, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (run_id) DO UPDATE SET {column} = ?2, updated_at = ?3"
                ),
                params![run, value, now],
            )
        })?;
        Ok(())
    }

    /// Takes the model requests for unfinished runs of `owner`.
    pub fn take_model_requests(&self, owner: i64) -> Result<Vec<(String, String)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.run_id, s.model_request FROM services s JOIN runs r ON r.id = s.run_id
             WHERE r.owner = ?1 AND r.finished_at IS NULL AND s.model_request IS NOT NULL",
        )?;
        let rows: Vec<(String, String)> = st
            .query_map(params![owner], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (run, model) in &rows {
            // only the request read: a newer one stays for the next call
            retry_busy(|| {
                self.exec(
                    "UPDATE services SET model_request = NULL WHERE run_id = ?1 AND model_request = ?2",
                    params![run, model],
                )
            })?;
        }
        Ok(rows)
    }

    /// Service runs with their recorded state (JSON), newest first.
    pub fn services(&self) -> Result<Vec<(RunRow, Option<String>)>> {
        let columns = RUN_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {columns}, s.status FROM runs r LEFT JOIN services s ON s.run_id = r.id
             WHERE r.kind = 'InferenceService' ORDER BY r.created_at DESC, r.id"
        ))?;
        let count = RUN_COLUMNS.split(", ").count();
        Ok(st
            .query_map([], |r| Ok((run_row(r)?, r.get(count)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Asks the run's owner to cancel it.
    pub fn request_cancel(&self, id: &str) -> Result<()> {
        self.exec(
            "UPDATE runs SET cancel_requested = 1 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    /// Unfinished runs of `owner` whose cancelling was asked.
    pub fn cancel_requested_runs(&self, owner: i64) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id FROM runs WHERE owner = ?1 AND cancel_requested = 1 AND finished_at IS NULL",
        )?;
        let rows = st.query_map(params![owner], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Adds a job to a run (or finds the existing one of that name): its id, and whether it
    /// is new.
    pub fn upsert_job(&self, run: &str, name: &str, workers: u32) -> Result<(i64, bool)> {
        let inserted = self.exec(
            "INSERT OR IGNORE INTO jobs (run_id, name, phase, workers) VALUES (?1, ?2, 'Pending', ?3)",
            params![run, name, workers],
        )?;
        if inserted == 1 {
            return Ok((self.conn.last_insert_rowid(), true));
        }
        let id = self.row(
            "SELECT id FROM jobs WHERE run_id = ?1 AND name = ?2",
            params![run, name],
            |r| r.get(0),
        )?;
        Ok((id, false))
    }

    /// Updates a job.
    pub fn update_job(
        &self,
        id: i64,
        phase: &str,
        message: &str,
        attempts: u32,
        now: f64,
        finished: bool,
    ) -> Result<()> {
        self.exec(
            "UPDATE jobs SET phase = ?2, message = ?3, attempts = ?4,
               started_at = CASE WHEN ?2 = 'Running' THEN COALESCE(started_at, ?5) ELSE started_at END,
               finished_at = CASE WHEN ?6 THEN ?5 ELSE finished_at END
             WHERE id = ?1",
            params![id, phase, message, attempts, now, finished],
        )?;
        Ok(())
    }

    /// Records a job's output parameters.
    pub fn set_job_outputs(&self, id: i64, outputs_json: &str) -> Result<()> {
        self.exec(
            "UPDATE jobs SET outputs = ?2 WHERE id = ?1",
            params![id, outputs_json],
        )?;
        Ok(())
    }

    /// A job by id.
    pub fn job(&self, id: i64) -> Result<Option<JobRow>> {
        Ok(self
            .row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_row,
            )
            .optional()?)
    }

    /// The jobs of a run, in creation order.
    pub fn jobs(&self, run: &str) -> Result<Vec<JobRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ?1 ORDER BY id"
        ))?;
        Ok(st
            .query_map(params![run], job_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Adds an attempt (queued).
    pub fn insert_attempt(&self, job: i64, number: u32, sched_id: &str, now: f64) -> Result<i64> {
        self.exec(
            "INSERT INTO attempts (job_id, number, sched_id, phase, queued_at) VALUES (?1, ?2, ?3, 'Queued', ?4)",
            params![job, number, sched_id, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records that an attempt started, with its placement.
    pub fn start_attempt(&self, id: i64, placement_json: &str, now: f64) -> Result<()> {
        self.exec(
            "UPDATE attempts SET phase = 'Running', placement = ?2, started_at = ?3 WHERE id = ?1",
            params![id, placement_json, now],
        )?;
        Ok(())
    }

    /// Updates an attempt's phase; `finished` stamps its end.
    pub fn update_attempt(
        &self,
        id: i64,
        phase: &str,
        reason: &str,
        message: &str,
        now: f64,
        finished: bool,
    ) -> Result<()> {
        self.exec(
            "UPDATE attempts SET phase = ?2, reason = ?3, message = ?4,
               finished_at = CASE WHEN ?6 THEN ?5 ELSE finished_at END
             WHERE id = ?1",
            params![id, phase, reason, message, now, finished],
        )?;
        Ok(())
    }

    /// The attempts of a job, oldest first.
    pub fn attempts(&self, job: i64) -> Result<Vec<AttemptRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE job_id = ?1 ORDER BY number"
        ))?;
        Ok(st
            .query_map(params![job], attempt_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Unfinished attempts of runs driven by `owner`, with their run and job names.
    pub fn unfinished_attempts_of(&self, owner: i64) -> Result<Vec<(String, String, AttemptRow)>> {
        let cols = ATTEMPT_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT j.run_id, j.name, {cols} FROM attempts a JOIN jobs j ON a.job_id = j.id JOIN runs r ON j.run_id = r.id
             WHERE r.owner = ?1 AND a.finished_at IS NULL ORDER BY a.id"
        ))?;
        let rows = st.query_map(params![owner], |r| {
            let run: String = r.get(0)?;
            let job: String = r.get(1)?;
            let attempt = AttemptRow {
                id: r.get(2)?,
                job_id: r.get(3)?,
                number: r.get(4)?,
                sched_id: r.get(5)?,
                phase: r.get(6)?,
                reason: r.get(7)?,
                message: r.get(8)?,
                placement: r.get(9)?,
                queued_at: r.get(10)?,
                started_at: r.get(11)?,
                finished_at: r.get(12)?,
            };
            Ok((run, job, attempt))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a started process.
    pub fn insert_process(
        &self,
        attempt: i64,
        rank: u32,
        pid: u32,
        start_time: u64,
        log: &str,
        now: f64,
    ) -> Result<i64> {
        self.exec(
            "INSERT INTO processes (attempt_id, rank, pid, start_time, log_path, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![attempt, rank, pid, i64::try_from(start_time).unwrap_or(0), log, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records how a process ended.
    pub fn finish_process(&self, id: i64, exit: &str, now: f64) -> Result<()> {
        self.exec(
            "UPDATE processes SET exit = ?2, finished_at = ?3 WHERE id = ?1",
            params![id, exit, now],
        )?;
        Ok(())
    }

    /// The processes of an attempt, by rank.
    pub fn processes(&self, attempt: i64) -> Result<Vec<ProcessRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {PROCESS_COLUMNS} FROM processes WHERE attempt_id = ?1 ORDER BY rank"
        ))?;
        Ok(st
            .query_map(params![attempt], process_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The cached result of a step: (run, job, outputs JSON, working directory).
    pub fn cached(&self, key: &str) -> Result<Option<(String, String, String, String)>> {
        Ok(self
            .row(
                "SELECT run_id, job, outputs, work FROM cache WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
    }

    /// Remembers the result of a step for its key (the latest success wins).
    pub fn put_cached(
        &self,
        key: &str,
        run: &str,
        job: &str,
        outputs_json: &str,
        work: &str,
        now: f64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO cache (key, run_id, job, outputs, work, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(key) DO UPDATE SET run_id = excluded.run_id, job = excluded.job, outputs = excluded.outputs,
               work = excluded.work, created_at = excluded.created_at",
            params![key, run, job, outputs_json, work, now],
        )?;
        Ok(())
    }

    /// Adds an event.
    pub fn event(
        &self,
        run: &str,
        job: &str,
        kind: &str,
        reason: &str,
        message: &str,
        now: f64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO events (run_id, job, at, type, reason, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run, job, now, kind, reason, message],
        )?;
        Ok(())
    }

    /// The events of a run, oldest first.
    pub fn events(&self, run: &str) -> Result<Vec<EventRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT job, at, type, reason, message FROM events WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![run], |r| {
            Ok(EventRow {
                job: r.get(0)?,
                at: r.get(1)?,
                kind: r.get(2)?,
                reason: r.get(3)?,
                message: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Runs `f` in a write transaction that no other process can interleave with
    /// (`BEGIN IMMEDIATE`); commits when it returns `Ok`. Inside a batch it is a savepoint of
    /// the batch's transaction (undone when `f` fails), committed with the batch.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if self.batching.get() {
            self.writing().map_err(StoreError::from)?;
            let sp = self.conn.savepoint().map_err(StoreError::from)?;
            let out = f(&sp)?;
            sp.commit().map_err(StoreError::from)?;
            return Ok(out);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

/// The scheduler log, inside a write transaction.
pub mod sched_log {
    use super::*;

    /// The current epoch: it changes when the log is cleared, which tells every process to
    /// rebuild its scheduler from the new log.
    pub fn epoch(tx: &Connection) -> Result<i64> {
        // read at every sync: prepared once
        Ok(tx
            .prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'sched_epoch'")?
            .query_row([], |r| r.get(0))
            .optional()?
            .unwrap_or(1))
    }

    /// Events after `seq` of `epoch`, in order: (seq, owner, event JSON).
    pub fn since(tx: &Connection, epoch: i64, seq: i64) -> Result<Vec<(i64, i64, String)>> {
        let mut st = tx.prepare_cached(
            "SELECT seq, owner, event FROM sched_log WHERE epoch = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = st.query_map(params![epoch, seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Appends an event; returns its sequence number.
    pub fn append(tx: &Connection, epoch: i64, owner: i64, event_json: &str) -> Result<i64> {
        tx.prepare_cached("INSERT INTO sched_log (epoch, owner, event) VALUES (?1, ?2, ?3)")?
            .execute(params![epoch, owner, event_json])?;
        Ok(tx.last_insert_rowid())
    }

    /// Drops every event and starts a new epoch; returns it.
    pub fn clear(tx: &Connection) -> Result<i64> {
        let next = epoch(tx)? + 1;
        tx.execute("DELETE FROM sched_log", [])?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('sched_epoch', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![next.to_string()],
        )?;
        Ok(next)
    }

    /// How many events the log holds.
    pub fn len(tx: &Connection) -> Result<i64> {
        Ok(tx.query_row("SELECT COUNT(*) FROM sched_log", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempts_seen_by(other: &Store, job: i64) -> usize {
        other.attempts(job).expect("attempts").len()
    }

    #[test]
    fn closing_leaves_the_wal_to_the_next_opener() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("state.db");
        let store = Store::open(&db).expect("open");
        let sources = store.put_sources("[1]").expect("sources");
        drop(store);
        // not copied into the database at the close: the WAL still holds the write
        let wal = std::fs::metadata(dir.path().join("state.db-wal")).expect("the WAL is kept");
        assert!(wal.len() > 0);
        let again = Store::open(&db).expect("open again");
        assert_eq!(again.sources(sources).expect("read"), "[1]");
    }

    #[test]
    fn a_batch_is_visible_to_others_only_when_committed() {
        let dir = tempfile::tempdir().expect("tmp");
        let db = dir.path().join("state.db");
        let mut store = Store::open(&db).expect("open");
        let other = Store::open(&db).expect("open again");
        let sources = store.put_sources("[]").expect("sources");
        store
            .insert_run(&NewRun {
                id: "r",
                name: "r",
                kind: "TrainingJob",
                namespace: "default",
                spec_dir: ".",
                sources,
                params: "{}",
                options: "{}",
                owner: 1,
                now: 0.0,
            })
            .expect("run");
        let (job, new) = store.upsert_job("r", "train", 1).expect("job");
        assert!(new);
        assert_eq!(
            store.upsert_job("r", "train", 1).expect("again"),
            (job, false)
        );
        store.begin_batch();
        store
            .insert_attempt(job, 1, "r/train/1", 1.0)
            .expect("attempt");
        store
            .event("r", "train", "Normal", "Queued", "", 1.0)
            .expect("event");
        assert_eq!(attempts_seen_by(&other, job), 0, "not committed yet");
        // a nested write is a savepoint of the batch: undone alone when it fails
        let failed: Result<()> = store.write(|tx| {
            tx.execute("DELETE FROM events", [])?;
            Err(StoreError::Version {
                found: 0,
                supported: 0,
            })
        });
        assert!(failed.is_err());
        store
            .write(|tx| sched_log::append(tx, 1, 1, "{}").map(|_| ()))
            .expect("nested write");
        store.commit_batch().expect("commit");
        assert_eq!(attempts_seen_by(&other, job), 1);
        assert_eq!(other.events("r").expect("events").len(), 1);
        // still batching: the next write opens a new transaction
        store
            .insert_attempt(job, 2, "r/train/2", 2.0)
            .expect("attempt");
        assert_eq!(attempts_seen_by(&other, job), 1);
        store.end_batch().expect("end");
        assert_eq!(attempts_seen_by(&other, job), 2);
        // outside a batch every write commits at once
        store
            .insert_attempt(job, 3, "r/train/3", 3.0)
            .expect("attempt");
        assert_eq!(attempts_seen_by(&other, job), 3);
    }
}
