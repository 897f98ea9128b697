//! The index file: one SQLite database (WAL mode) holding, for each image file, its path,
//! size, modification time and content hash, and for each distinct content its embedding.
//!
//! Schema (version 2):
//! - `meta(key, value)`: `schema`, `model`, `fingerprint`, `preprocess`, `dim`, `created`,
//!   `last_scan`, `default_excludes` (`0` when the default exclusions are off; absent: on),
//!   and the caller's settings (`setting:<name>`);
//! - `vectors(hash, embedding, orphaned)`: blake3 of the file's bytes → little-endian f32
//!   embedding; `orphaned` is when the last file with that content went (null while one has
//!   it);
//! - `files(path, size, mtime_ns, hash, error, updated)`: one row per file seen; `error` is
//!   set for files that could not be embedded (their `hash` may be null);
//! - `roots(path, added)`: the folders scanned;
//! - `excludes(pattern, added)`: what scans leave out (the patterns' syntax is the caller's).
//!
//! Renamed and copied files share a `vectors` row through their hash. A vector no file refers
//! to any more is kept [`KEEP_REMOVED_DAYS`] days, so that files moved out of the folders and
//! back, or a folder renamed in two scans, are not embedded again; complete scans drop the
//! older ones, and [`Index::forget`] drops those of the files it forgets at once.
//!
//! Version 1 (before `orphaned` and `excludes`) is migrated when an index is opened for
//! writing, and read as it is when opened read-only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::IndexError;

/// The content hash of a file: blake3 of its bytes.
pub type Hash = [u8; 32];

/// Hashes file content.
pub fn content_hash(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// [`content_hash`] of `head` followed by the rest of `reader`, read in pieces (for files too
/// big to hold, or not worth holding).
pub fn content_hash_stream(head: &[u8], reader: &mut impl std::io::Read) -> std::io::Result<Hash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(head);
    std::io::copy(reader, &mut hasher)?;
    Ok(*hasher.finalize().as_bytes())
}

/// The schema this program writes.
const SCHEMA: u32 = 2;

/// How long the vector of content no file has any more is kept for reuse, in days.
pub const KEEP_REMOVED_DAYS: i64 = 30;

/// What the vectors of an index are: which model made them, fingerprints of its weights and
/// of its preprocessing, and their size. An index refuses vectors of any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The model's name, for people (e.g. `openai/clip-vit-base-patch32`).
    pub model: String,
    /// Identifies the weights and configuration.
    pub fingerprint: String,
    /// Identifies the image preprocessing.
    pub preprocess: String,
    /// The embedding size.
    pub dim: usize,
}

impl IndexInfo {
    /// Whether vectors made as `other` says can be compared with these (the names may differ).
    pub fn compatible(&self, other: &IndexInfo) -> bool {
        self.fingerprint == other.fingerprint
            && self.preprocess == other.preprocess
            && self.dim == other.dim
    }

    /// The fingerprints and dimension, for messages.
    pub fn describe(&self) -> String {
        format!(
            "weights {}, preprocessing {}, {} dimensions",
            self.fingerprint, self.preprocess, self.dim
        )
    }
}

/// A file's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileState {
    /// Size in bytes when last seen.
    pub size: u64,
    /// Modification time (nanoseconds since the epoch) when last seen.
    pub mtime_ns: i64,
    /// Content hash, when it could be read.
    pub hash: Option<Hash>,
    /// Why it could not be embedded, if it could not.
    pub error: Option<String>,
}

/// One change to a file's row.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The file's content was embedded.
    Embedded {
        /// The file.
        path: String,
        /// Size, modification time and content hash of what was embedded.
        size: u64,
        /// Modification time, nanoseconds since the epoch.
        mtime_ns: i64,
        /// Content hash.
        hash: Hash,
        /// The embedding.
        embedding: Vec<f32>,
    },
    /// The file's content is already in the index (a rename, a copy, an unchanged edit).
    Reused {
        /// The file.
        path: String,
        /// Size in bytes.
        size: u64,
        /// Modification time, nanoseconds since the epoch.
        mtime_ns: i64,
        /// Content hash (present in `vectors`).
        hash: Hash,
    },
    /// The file could not be embedded; it is retried only when its size or time changes.
    Failed {
        /// The file.
        path: String,
        /// Size in bytes.
        size: u64,
        /// Modification time, nanoseconds since the epoch.
        mtime_ns: i64,
        /// Content hash, if the file could be read.
        hash: Option<Hash>,
        /// Why.
        error: String,
    },
}

/// What an index holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// What made its vectors.
    pub info: IndexInfo,
    /// Files with an embedding.
    pub indexed: usize,
    /// Files that could not be embedded, with the reason, in path order.
    pub failed: Vec<(String, String)>,
    /// Distinct contents stored.
    pub vectors: usize,
    /// Size of the database file in bytes.
    pub bytes: u64,
    /// When a scan last completed (seconds since the epoch), if ever.
    pub last_scan: Option<i64>,
    /// The folders scanned, in the order first indexed.
    pub roots: Vec<String>,
    /// What scans leave out (see [`Exclusions`]).
    pub exclusions: Exclusions,
    /// Vectors of content no file has any more, kept for reuse (see [`KEEP_REMOVED_DAYS`]).
    pub kept: usize,
}

/// What an index's scans leave out: patterns, whose syntax is the caller's, and whether the
/// caller's default exclusions apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusions {
    /// Whether the default exclusions apply (they do unless turned off).
    pub defaults: bool,
    /// The patterns, in the order added.
    pub patterns: Vec<String>,
}

impl Default for Exclusions {
    fn default() -> Self {
        Exclusions {
            defaults: true,
            patterns: Vec::new(),
        }
    }
}

/// What [`Index::forget`] dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    /// Files dropped.
    pub files: usize,
    /// The folder lies inside a root of the index, and was added to its exclusions so that
    /// later scans leave it out.
    pub excluded: bool,
}

/// An open index file.
#[derive(Debug)]
pub struct Index {
    conn: Connection,
    path: PathBuf,
    info: IndexInfo,
    /// The schema version of the file (older ones are read read-only as they are).
    schema: u32,
    /// Something the reader should know about what it reads (see [`Index::warning`]).
    warning: Option<String>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `path` with every link and `..` resolved, also when the file does not exist yet (a link
/// to an index about to be made resolves to that index).
fn resolve(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        if let Ok(c) = p.canonicalize() {
            return c;
        }
        match std::fs::read_link(&p) {
            Ok(target) => p = p.parent().unwrap_or(Path::new("")).join(target),
            Err(_) => break,
        }
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), p.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => p,
    }
}

fn table_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
}

fn no_index(path: &Path) -> IndexError {
    IndexError::Io {
        path: path.display().to_string(),
        error: std::io::Error::new(std::io::ErrorKind::NotFound, "no index file"),
    }
}

/// An SQLite error, told apart when it means the file is not a database at all.
fn not_a_database(path: &Path, e: rusqlite::Error) -> IndexError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            IndexError::Corrupt {
                path: path.display().to_string(),
                detail: "not an SQLite database (is this the right file?)".into(),
            }
        }
        other => sqlite_error(path)(other),
    }
}

/// `path` for an SQLite `file:` URI: bytes other than unreserved characters and `/`
/// percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn blob_to_f32(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / 4);
    extend_f32(&mut out, bytes);
    out
}

/// Appends the little-endian f32 values of `bytes`.
fn extend_f32(out: &mut Vec<f32>, bytes: &[u8]) {
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

fn f32_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_hash(bytes: Vec<u8>) -> Option<Hash> {
    bytes.try_into().ok()
}

impl Index {
    fn sql(&self) -> impl Fn(rusqlite::Error) -> IndexError + Copy + '_ {
        sqlite_error(&self.path)
    }

    fn connect(path: &Path) -> Result<Connection, IndexError> {
        let sql = sqlite_error(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| IndexError::Io {
                path: dir.display().to_string(),
                error,
            })?;
        }
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        // WAL: readers never block the writer, and a killed writer loses only its open
        // transaction. NORMAL sync is durable at checkpoints and safe against corruption.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| not_a_database(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        Ok(conn)
    }

    /// The model's description and the schema version, if the file is an index.
    fn read_info(conn: &Connection, path: &Path) -> Result<Option<(IndexInfo, u32)>, IndexError> {
        let corrupt = |detail: String| IndexError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        let has_meta: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| corrupt(e.to_string()))?
            > 0;
        if !has_meta {
            return Ok(None);
        }
        let get = |key: &str| -> Result<String, IndexError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(|e| corrupt(e.to_string()))?
                .ok_or_else(|| corrupt(format!("no {key} recorded")))
        };
        let schema = get("schema")?;
        let version = match schema.parse::<u32>() {
            Ok(v @ 1..=SCHEMA) => v,
            // Not damage: a newer version of the program wrote it.
            Ok(found) if found > SCHEMA => {
                return Err(IndexError::NewerSchema {
                    path: path.display().to_string(),
                    found,
                    supported: SCHEMA,
                })
            }
            _ => return Err(corrupt(format!("schema version {schema:?}"))),
        };
        let dim = get("dim")?;
        let info = IndexInfo {
            model: get("model")?,
            fingerprint: get("fingerprint")?,
            preprocess: get("preprocess")?,
            dim: dim
                .parse()
                .map_err(|_| corrupt(format!("dimension {dim:?}")))?,
        };
        Ok(Some((info, version)))
    }

    /// Brings an index of an older schema to this one (opened for writing), in one
    /// transaction: version 1 lacks `vectors.orphaned` and the `excludes` table.
    fn migrate(&mut self) -> Result<(), IndexError> {
        if self.schema == SCHEMA {
            return Ok(());
        }
        let sql = self.sql();
        // Immediate: the write lock first, then the version again, so that two processes
        // opening an old index at once migrate it once.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(sql)?;
        let now: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .map_err(sql)?;
        if now == SCHEMA.to_string() {
            tx.commit().map_err(sql)?;
            self.schema = SCHEMA;
            return Ok(());
        }
        if self.schema < 2 {
            tx.execute_batch(
                "ALTER TABLE vectors ADD COLUMN orphaned INTEGER;
                 CREATE TABLE IF NOT EXISTS excludes (
                     pattern TEXT PRIMARY KEY, added INTEGER NOT NULL
                 );",
            )
            .map_err(sql)?;
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema'",
            [SCHEMA.to_string()],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.schema = SCHEMA;
        Ok(())
    }

    /// Opens the index at `path` for vectors described by `info`, creating it if it does not
    /// exist. An index made for incompatible vectors ([`IndexInfo::compatible`]) is refused.
    pub fn open(path: &Path, info: &IndexInfo) -> Result<Index, IndexError> {
        let conn = Self::connect(path)?;
        let mut index = Index {
            conn,
            path: path.to_path_buf(),
            info: info.clone(),
            schema: SCHEMA,
            warning: None,
        };
        match Self::read_info(&index.conn, path)? {
            Some((existing, schema)) => {
                if !existing.compatible(info) {
                    return Err(IndexError::mismatch(path, &existing, info));
                }
                index.info = existing;
                index.schema = schema;
            }
            None => index.create()?,
        }
        index.check()?;
        index.migrate()?;
        Ok(index)
    }

    /// A new, empty index held in memory, for vectors described by `info`: nothing is
    /// written to disk, and it is gone when dropped (photos embedded for one run only). Its
    /// [`path`](Index::path) is `:memory:`.
    pub fn in_memory(info: &IndexInfo) -> Result<Index, IndexError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(sqlite_error(&path))?;
        let mut index = Index {
            conn,
            path,
            info: info.clone(),
            warning: None,
            schema: SCHEMA,
        };
        index.create()?;
        Ok(index)
    }

    /// Whether `path` is an SQLite file with no tables at all (or a 0-byte file): what a first
    /// scan killed before it created anything leaves. [`Index::open`] makes an index of it.
    pub fn is_blank(path: &Path) -> bool {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        path.is_file()
            && Connection::open_with_flags(path, flags)
                .is_ok_and(|conn| table_count(&conn) == Ok(0))
    }

    /// Opens an existing index whatever its model, to change it.
    pub fn open_existing(path: &Path) -> Result<Index, IndexError> {
        if !path.is_file() {
            return Err(no_index(path));
        }
        let mut index = Self::existing(path, Self::connect(path)?)?;
        index.migrate()?;
        Ok(index)
    }

    /// Opens an existing index whatever its model, to read it (status, search): works where
    /// the index cannot be written, such as a read-only folder or someone else's file.
    pub fn open_read_only(path: &Path) -> Result<Index, IndexError> {
        if !path.is_file() {
            return Err(no_index(path));
        }
        let sql = sqlite_error(path);
        let open = |name: &str| -> rusqlite::Result<Connection> {
            let conn = Connection::open_with_flags(
                name,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // A WAL database is read through its -shm file, which must exist or be creatable.
            table_count(&conn)?;
            Ok(conn)
        };
        let uri = |query: &str| format!("file:{}?{query}", uri_path(path));
        let mut warning = None;
        let conn = match open(&uri("mode=ro")) {
            Ok(conn) => conn,
            // In a folder we cannot write to, with no writer's -shm file beside it: read the
            // file as it is on disk (no writer can be running there but its owner).
            Err(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen
                ) =>
            {
                let conn = open(&uri("mode=ro&immutable=1")).map_err(sql)?;
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let wal = PathBuf::from(wal);
                // More than the 32-byte header: frames not yet in the file.
                if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 32) {
                    warning = Some(format!(
                        "{} holds changes not yet written into {}, which cannot be read \
                         without write access to the folder: what the last indexing runs \
                         added or changed may be missing (the next indexing run with write \
                         access merges them)",
                        wal.display(),
                        path.display()
                    ));
                }
                conn
            }
            Err(e) => return Err(not_a_database(path, e)),
        };
        match (Self::existing(path, conn), warning) {
            (Ok(mut index), warning) => {
                index.warning = warning;
                Ok(index)
            }
            // What is in the file alone is no index: the -wal file holds it all.
            (Err(_), Some(warning)) => Err(IndexError::Corrupt {
                path: path.display().to_string(),
                detail: warning,
            }),
            (Err(e), None) => Err(e),
        }
    }

    /// Something to tell whoever reads this index: set when an index opened read-only leaves
    /// out changes it cannot read.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    fn existing(path: &Path, conn: Connection) -> Result<Index, IndexError> {
        let (info, schema) = Self::read_info(&conn, path)?.ok_or_else(|| {
            let path = path.display().to_string();
            if table_count(&conn) == Ok(0) {
                IndexError::Blank { path }
            } else {
                IndexError::Corrupt {
                    path,
                    detail: "not a clip index (no meta table)".into(),
                }
            }
        })?;
        let index = Index {
            conn,
            path: path.to_path_buf(),
            info,
            schema,
            warning: None,
        };
        index.check()?;
        Ok(index)
    }

    fn create(&mut self) -> Result<(), IndexError> {
        let sql = self.sql();
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        tx.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE vectors (
                 hash BLOB PRIMARY KEY, embedding BLOB NOT NULL, orphaned INTEGER
             ) WITHOUT ROWID;
             CREATE TABLE files (
                 path TEXT PRIMARY KEY,
                 size INTEGER NOT NULL,
                 mtime_ns INTEGER NOT NULL,
                 hash BLOB,
                 error TEXT,
                 updated INTEGER NOT NULL
             );
             CREATE INDEX files_hash ON files (hash);
             CREATE TABLE roots (path TEXT PRIMARY KEY, added INTEGER NOT NULL);
             CREATE TABLE excludes (pattern TEXT PRIMARY KEY, added INTEGER NOT NULL);",
        )
        .map_err(sql)?;
        for (k, v) in [
            ("schema", SCHEMA.to_string()),
            ("model", self.info.model.clone()),
            ("fingerprint", self.info.fingerprint.clone()),
            ("preprocess", self.info.preprocess.clone()),
            ("dim", self.info.dim.to_string()),
            ("created", now_secs().to_string()),
        ] {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, &v])
                .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// A quick structural check at open: damaged pages or a stale WAL show here.
    fn check(&self) -> Result<(), IndexError> {
        let result: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(self.sql())?;
        if result != "ok" {
            return Err(IndexError::Corrupt {
                path: self.path.display().to_string(),
                detail: format!("{result} (delete the file and index again)"),
            });
        }
        Ok(())
    }

    /// The full `PRAGMA integrity_check` result (`"ok"` when sound).
    pub fn integrity_check(&self) -> Result<String, IndexError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(self.sql())
    }

    /// What made the vectors.
    pub fn info(&self) -> &IndexInfo {
        &self.info
    }

    /// Records `fingerprint` for the model that made the vectors, in place of the one
    /// recorded: for the same model fingerprinted in a new way (the caller has made sure it is
    /// the same, e.g. by the old way).
    pub fn set_fingerprint(&mut self, fingerprint: &str) -> Result<(), IndexError> {
        self.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'fingerprint'",
                [fingerprint],
            )
            .map_err(self.sql())?;
        self.info.fingerprint = fingerprint.to_string();
        Ok(())
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every file row, by path.
    pub fn files(&self) -> Result<HashMap<String, FileState>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, size, mtime_ns, hash, error FROM files")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    FileState {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        hash: r.get::<_, Option<Vec<u8>>>(3)?.and_then(to_hash),
                        error: r.get(4)?,
                    },
                ))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// One file's row, if the file is indexed.
    pub fn file(&self, path: &str) -> Result<Option<FileState>, IndexError> {
        self.conn
            .query_row(
                "SELECT size, mtime_ns, hash, error FROM files WHERE path = ?1",
                [path],
                |r| {
                    Ok(FileState {
                        size: r.get::<_, i64>(0)? as u64,
                        mtime_ns: r.get(1)?,
                        hash: r.get::<_, Option<Vec<u8>>>(2)?.and_then(to_hash),
                        error: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// Whether an embedding of this content is stored.
    pub fn has_vector(&self, hash: &Hash) -> Result<bool, IndexError> {
        self.conn
            .query_row(
                "SELECT 1 FROM vectors WHERE hash = ?1",
                [hash.as_slice()],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(self.sql())
    }

    /// The content hashes of every stored vector.
    pub fn vector_hashes(&self) -> Result<std::collections::HashSet<Hash>, IndexError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM vectors")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql())?;
        let mut out = std::collections::HashSet::new();
        for r in rows {
            if let Some(h) = to_hash(r.map_err(self.sql())?) {
                out.insert(h);
            }
        }
        Ok(out)
    }

    /// Applies changes in one transaction: all of them are stored, or none.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), IndexError> {
        let now = now_secs();
        let sql = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut put_vector = tx
                .prepare_cached("INSERT OR REPLACE INTO vectors (hash, embedding) VALUES (?1, ?2)")
                .map_err(sql)?;
            let mut adopt = tx
                .prepare_cached("UPDATE vectors SET orphaned = NULL WHERE hash = ?1")
                .map_err(sql)?;
            let mut put_file = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO files (path, size, mtime_ns, hash, error, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for change in changes {
                // The file row's values; an embedding is stored first.
                let (file, size, mtime_ns, hash, error) = match change {
                    Change::Embedded {
                        path: file,
                        size,
                        mtime_ns,
                        hash,
                        embedding,
                    } => {
                        if embedding.len() != self.info.dim {
                            return Err(IndexError::Dimension {
                                path: self.path.display().to_string(),
                                got: embedding.len(),
                                dim: self.info.dim,
                            });
                        }
                        put_vector
                            .execute(params![hash.as_slice(), f32_to_blob(embedding)])
                            .map_err(sql)?;
                        (file, size, mtime_ns, Some(hash), None)
                    }
                    Change::Reused {
                        path: file,
                        size,
                        mtime_ns,
                        hash,
                    } => {
                        // A vector kept for reuse is in use again.
                        adopt.execute([hash.as_slice()]).map_err(sql)?;
                        (file, size, mtime_ns, Some(hash), None)
                    }
                    Change::Failed {
                        path: file,
                        size,
                        mtime_ns,
                        hash,
                        error,
                    } => (file, size, mtime_ns, hash.as_ref(), Some(error)),
                };
                put_file
                    .execute(params![
                        file,
                        *size as i64,
                        mtime_ns,
                        hash.map(|h| h.as_slice()),
                        error,
                        now
                    ])
                    .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// Removes file rows, keeps the vectors no file refers to any more for reuse (dropping
    /// those kept over [`KEEP_REMOVED_DAYS`]), and records the scan of the folders (see
    /// [`Index::add_roots`]) as complete now. One transaction.
    pub fn finish_scan(&mut self, removed: &[String]) -> Result<(), IndexError> {
        self.finish_scan_at(removed, now_secs())
    }

    /// [`Index::finish_scan`] as if it were `now` (seconds since the epoch).
    pub fn finish_scan_at(&mut self, removed: &[String], now: i64) -> Result<(), IndexError> {
        let sql = sqlite_error(&self.path);
        let tx = self.conn.transaction().map_err(sql)?;
        remove_files(&tx, removed, Orphans::Keep(now)).map_err(sql)?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_scan', ?1)",
            [now.to_string()],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Records `roots` as folders of the index (those already there stay as they are). A scan
    /// does this before it embeds anything, so that one stopped before its end is resumed by
    /// a plain rescan.
    pub fn add_roots(&mut self, roots: &[String]) -> Result<(), IndexError> {
        let sql = sqlite_error(&self.path);
        let now = now_secs();
        // A folder inside one of the index's is covered by it already: listed as a folder of
        // its own, `forget` of it would drop it, and exclude its photos, as a subfolder.
        let known = self.roots()?;
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut root = tx
                .prepare_cached("INSERT OR IGNORE INTO roots (path, added) VALUES (?1, ?2)")
                .map_err(sql)?;
            for r in roots {
                if !known.iter().any(|k| crate::is_under(r, k)) {
                    root.execute(params![r, now]).map_err(sql)?;
                }
            }
        }
        tx.commit().map_err(sql)
    }

    /// Drops a folder from the index: its root entry (if it is one), every file under it, and
    /// the vectors nothing else uses; or drops one file. A folder or file inside a root of the
    /// index is also added to the exclusions, as its absolute path, so that the next scan of
    /// the root does not bring it back (taking that pattern out of the exclusions undoes it).
    pub fn forget(&mut self, folder: &str) -> Result<Forgotten, IndexError> {
        let sql = sqlite_error(&self.path);
        let files: Vec<String> = self
            .files()?
            .into_keys()
            .filter(|p| crate::is_at_or_under(p, folder))
            .collect();
        let inside = self
            .status()?
            .roots
            .iter()
            .any(|r| r != folder && crate::is_under(folder, r));
        let now = now_secs();
        let tx = self.conn.transaction().map_err(sql)?;
        remove_files(&tx, &files, Orphans::Drop).map_err(sql)?;
        tx.execute("DELETE FROM roots WHERE path = ?1", [folder])
            .map_err(sql)?;
        if inside {
            tx.execute(
                "INSERT OR IGNORE INTO excludes (pattern, added) VALUES (?1, ?2)",
                params![folder, now],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(Forgotten {
            files: files.len(),
            excluded: inside,
        })
    }

    /// What scans of this index leave out.
    pub fn exclusions(&self) -> Result<Exclusions, IndexError> {
        if self.schema < 2 {
            return Ok(Exclusions::default());
        }
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare("SELECT pattern FROM excludes ORDER BY added, rowid")
            .map_err(sql)?;
        let patterns = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sql)?;
        let defaults = self.meta("default_excludes")?.as_deref() != Some("0");
        Ok(Exclusions { defaults, patterns })
    }

    /// Adds patterns to the exclusions, takes others out, and turns the default exclusions on
    /// or off (`None`: as they are). One transaction; adding a pattern already there, or
    /// taking out one that is not, changes nothing.
    pub fn update_exclusions(
        &mut self,
        add: &[String],
        remove: &[String],
        defaults: Option<bool>,
    ) -> Result<(), IndexError> {
        let sql = sqlite_error(&self.path);
        let now = now_secs();
        let tx = self.conn.transaction().map_err(sql)?;
        for p in remove {
            tx.execute("DELETE FROM excludes WHERE pattern = ?1", [p])
                .map_err(sql)?;
        }
        for p in add {
            tx.execute(
                "INSERT OR IGNORE INTO excludes (pattern, added) VALUES (?1, ?2)",
                params![p, now],
            )
            .map_err(sql)?;
        }
        if let Some(on) = defaults {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('default_excludes', ?1)",
                [if on { "1" } else { "0" }],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

    /// A value the caller keeps with the index under `name` (see [`Index::set_setting`]).
    pub fn setting(&self, name: &str) -> Result<Option<String>, IndexError> {
        self.meta(&format!("setting:{name}"))
    }

    /// Keeps `value` with the index under `name`.
    pub fn set_setting(&mut self, name: &str, value: &str) -> Result<(), IndexError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [format!("setting:{name}").as_str(), value],
            )
            .map(drop)
            .map_err(self.sql())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, IndexError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.sql())
    }

    /// The folders the index was built from, in the order they were added (what
    /// [`status`](Index::status) lists, without its counts).
    pub fn roots(&self) -> Result<Vec<String>, IndexError> {
        let sql = self.sql();
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM roots ORDER BY added, path")
            .map_err(sql)?;
        let roots = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sql)?;
        Ok(roots)
    }

    /// Counts, failures and roots.
    pub fn status(&self) -> Result<Status, IndexError> {
        let sql = self.sql();
        let count = |q: &str| -> Result<usize, IndexError> {
            self.conn
                .query_row(q, [], |r| r.get::<_, i64>(0))
                .map(|n| n as usize)
                .map_err(sql)
        };
        let mut failed_stmt = self
            .conn
            .prepare("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path")
            .map_err(sql)?;
        let failed = failed_stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql)?
            .collect::<Result<Vec<(String, String)>, _>>()
            .map_err(sql)?;
        let roots = self.roots()?;
        let last_scan = self.meta("last_scan")?;
        let (vectors, kept) = if self.schema < 2 {
            (count("SELECT count(*) FROM vectors")?, 0)
        } else {
            (
                count("SELECT count(*) FROM vectors WHERE orphaned IS NULL")?,
                count("SELECT count(*) FROM vectors WHERE orphaned IS NOT NULL")?,
            )
        };
        Ok(Status {
            info: self.info.clone(),
            indexed: count("SELECT count(*) FROM files WHERE error IS NULL")?,
            failed,
            vectors,
            bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            last_scan: last_scan.and_then(|s| s.parse().ok()),
            roots,
            exclusions: self.exclusions()?,
            kept,
        })
    }

    /// Every indexed file with its embedding, in path order.
    pub fn embeddings(&self) -> Result<Vec<(String, Vec<f32>)>, IndexError> {
        let (paths, data) = self.flat_embeddings()?;
        let dim = self.info.dim.max(1);
        Ok(paths
            .into_iter()
            .zip(data.chunks_exact(dim))
            .map(|(p, v)| (p, v.to_vec()))
            .collect())
    }

    /// Every indexed file's embedding, normalized, ready to search (what `embeddings` gives,
    /// without a buffer per vector).
    pub fn vectors(&self) -> Result<crate::Vectors, IndexError> {
        let (paths, data) = self.flat_embeddings()?;
        Ok(crate::Vectors::from_flat(paths, self.info.dim, data))
    }

    /// The paths of the embedded files, in path order, and their embeddings one after another.
    /// Reads both tables in one pass each (a join looks every vector up by hash, which is
    /// several times slower), into flat buffers.
    fn flat_embeddings(&self) -> Result<(Vec<String>, Vec<f32>), IndexError> {
        let corrupt = |detail: String| IndexError::Corrupt {
            path: self.path.display().to_string(),
            detail,
        };
        let dim = self.info.dim;
        // The stored vectors, one after another, and where each hash's is: those of files in
        // the index (the kept vectors of removed files are for reuse only, and may be many
        // after a reorganisation).
        let mut stored: Vec<f32> = Vec::new();
        let mut row_of: HashMap<Hash, usize> = HashMap::new();
        let mut stmt = self
            .conn
            .prepare(if self.schema < 2 {
                "SELECT hash, embedding FROM vectors"
            } else {
                "SELECT hash, embedding FROM vectors WHERE orphaned IS NULL"
            })
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        while let Some(r) = rows.next().map_err(self.sql())? {
            let hash = r
                .get_ref(0)
                .map_err(self.sql())?
                .as_blob()
                .map_err(|e| corrupt(e.to_string()))?;
            let blob = r
                .get_ref(1)
                .map_err(self.sql())?
                .as_blob()
                .map_err(|e| corrupt(e.to_string()))?;
            if blob.len() != dim * 4 {
                return Err(corrupt(format!(
                    "a stored vector has {} bytes, not {} ({dim} values)",
                    blob.len(),
                    dim * 4
                )));
            }
            if let Ok(h) = Hash::try_from(hash) {
                row_of.insert(h, row_of.len());
                extend_f32(&mut stored, blob);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT path, hash FROM files WHERE error IS NULL ORDER BY path")
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        let mut paths = Vec::with_capacity(row_of.len());
        let mut data = Vec::with_capacity(row_of.len() * dim);
        while let Some(r) = rows.next().map_err(self.sql())? {
            let path: String = r.get(0).map_err(self.sql())?;
            let hash: Option<Vec<u8>> = r.get(1).map_err(self.sql())?;
            match hash.and_then(to_hash).and_then(|h| row_of.get(&h)) {
                Some(&row) => data.extend_from_slice(&stored[row * dim..(row + 1) * dim]),
                None => return Err(corrupt(format!("{path} has no stored vector"))),
            }
            paths.push(path);
        }
        Ok((paths, data))
    }

    /// The embedding of one indexed file, if it has one.
    pub fn embedding_of(&self, file: &str) -> Result<Option<Vec<f32>>, IndexError> {
        self.conn
            .query_row(
                "SELECT vectors.embedding FROM files JOIN vectors ON vectors.hash = files.hash
                 WHERE files.path = ?1 AND files.error IS NULL",
                [file],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map(|b| b.map(|b| blob_to_f32(&b)))
            .map_err(self.sql())
    }
}

/// The error for a failed statement on the index at `path`.
fn sqlite_error(path: &Path) -> impl Fn(rusqlite::Error) -> IndexError + Copy + '_ {
    move |error| IndexError::Sqlite {
        path: path.display().to_string(),
        error,
    }
}

/// What becomes of the vectors no file refers to any more.
#[derive(Debug, Clone, Copy)]
enum Orphans {
    /// Kept for reuse, marked with this time (seconds since the epoch); those kept longer
    /// than [`KEEP_REMOVED_DAYS`] before it are dropped.
    Keep(i64),
    /// Those that lost their last file now are dropped (a folder forgotten for good).
    Drop,
}

/// Deletes the rows of `paths`, then deals with the vectors no file refers to any more.
fn remove_files(
    tx: &rusqlite::Transaction<'_>,
    paths: &[String],
    orphans: Orphans,
) -> rusqlite::Result<()> {
    let mut delete = tx.prepare_cached("DELETE FROM files WHERE path = ?1")?;
    for p in paths {
        delete.execute([p])?;
    }
    const UNUSED: &str = "orphaned IS NULL
         AND hash NOT IN (SELECT hash FROM files WHERE hash IS NOT NULL)";
    match orphans {
        Orphans::Keep(now) => {
            tx.execute(
                &format!("UPDATE vectors SET orphaned = ?1 WHERE {UNUSED}"),
                [now],
            )?;
            tx.execute(
                "DELETE FROM vectors WHERE orphaned IS NOT NULL AND orphaned < ?1",
                [now - KEEP_REMOVED_DAYS * 86_400],
            )?;
        }
        Orphans::Drop => {
            tx.execute(&format!("DELETE FROM vectors WHERE {UNUSED}"), [])?;
        }
    }
    Ok(())
}

/// Held while a process updates an index: a lock on `<index>.lock`, released when dropped
/// (and by the system when the process dies, so a killed indexer never blocks the next).
#[derive(Debug)]
pub struct WriteLock {
    _file: std::fs::File,
}

impl WriteLock {
    /// Takes the lock of the index at `index_path`, or fails at once with
    /// [`IndexError::Busy`] when another process holds it.
    pub fn acquire(index_path: &Path) -> Result<WriteLock, IndexError> {
        // One lock per index file, however it is reached (a link, `..`, a relative path).
        let mut name = resolve(index_path).into_os_string();
        name.push(".lock");
        let lock = PathBuf::from(name);
        if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| IndexError::Io {
                path: dir.display().to_string(),
                error,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|error| IndexError::Io {
                path: lock.display().to_string(),
                error,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(WriteLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Busy {
                path: index_path.display().to_string(),
                lock: lock.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(error)) => Err(IndexError::Io {
                path: lock.display().to_string(),
                error,
            }),
        }
    }
}

impl IndexError {
    /// The refusal of vectors made as `wanted` says by the index at `path`, made as `existing`.
    pub fn mismatch(
        path: &std::path::Path,
        existing: &IndexInfo,
        wanted: &IndexInfo,
    ) -> IndexError {
        IndexError::ModelMismatch {
            path: path.display().to_string(),
            index_model: existing.model.clone(),
            index_detail: existing.describe(),
            model: wanted.model.clone(),
            detail: wanted.describe(),
        }
    }
}
