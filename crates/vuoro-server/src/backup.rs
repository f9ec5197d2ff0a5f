//! The data folder's safety: its lock (one daemon, or one restore, on a folder at a time), `verify` (a
//! copy's integrity, its schema, and its event log replayed onto its snapshots with the engine),
//! `restore` (a checked copy put in place of a stopped daemon's database) and the scheduled backups of
//! `[backup]`, with their retention and the time of the last one that succeeded (for `/metrics`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use vuoro_engine::config::Hall;
use vuoro_engine::{Engine, State};
use vuoro_store::{Database, StoreError};

use crate::deployment::BackupConfig;

/// The database's file in a data folder.
pub const DB_FILE: &str = "vuoro.sqlite";
/// The lock file in a data folder: held (`flock`, exclusive) by the daemon serving the folder and by a
/// restore into it, for as long as they run; the kernel lets it go when the process ends, however it ends.
pub const LOCK_FILE: &str = "vuoro.lock";

/// A held lock on a data folder; let go on drop.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{dir} is in use by a running Vuoro daemon or restore{pid}: stop it first (its lock {lock} is held)"
    )]
    Held {
        dir: String,
        lock: String,
        pid: String,
    },
    #[error("cannot lock {0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// Takes the data folder's lock without waiting: refused while another process (or another daemon in
/// this one) holds it. The holder's process id is written into the file for the message others get.
pub fn lock_data_dir(dir: &Path) -> Result<DataLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let io = |e: std::io::Error| LockError::Io(path.display().to_string(), e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            Ok(DataLock { _file: file })
        }
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Err(LockError::Held {
                dir: dir.display().to_string(),
                lock: path.display().to_string(),
                pid: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (process {pid})")
                },
            })
        }
        Err(e) => Err(io(e.into())),
    }
}

/// What a copy that passed `verify` holds.
#[derive(Debug, Clone)]
pub struct Verified {
    pub schema: u32,
    pub known: u32,
    /// The last event's seq (or the newest snapshot's, when it is later).
    pub last_seq: u64,
    /// Events read (every one deserialized; those after the oldest snapshot applied too).
    pub events: u64,
    /// The kept snapshots' seqs, oldest first.
    pub snapshots: Vec<u64>,
    /// Sites in the stored state that the config does not name: their state was not replayed.
    pub unknown_sites: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database file is damaged: {}", .0.join("; "))]
    Integrity(Vec<String>),
    #[error("the event log has a gap: event {got} follows {after}")]
    Gap { after: u64, got: u64 },
    #[error(
        "replaying events {from}..={to} onto snapshot {from_snapshot} does not reach snapshot {to} ({what})"
    )]
    Mismatch {
        from_snapshot: u64,
        from: u64,
        to: u64,
        what: String,
    },
    #[error("snapshot {snapshot} is newer than the log's last event {last}")]
    SnapshotAhead { snapshot: u64, last: u64 },
}

/// Events read from the log at a time.
const CHUNK: usize = 10_000;

/// Checks the database at `file` without changing it: SQLite's integrity check, a schema this program
/// knows, every kept snapshot and every event readable, the log without a gap after the oldest snapshot, and the log replayed with the engine: from the oldest snapshot (or the start) through the
/// newest one, whose state it must reach, and on to the end.
pub fn verify(file: &Path, hall: &Arc<Hall>) -> Result<Verified, VerifyError> {
    let (schema, known) = vuoro_store::schema_version(file)?;
    let store = vuoro_store::open_read_only(file)?;
    let problems = store.integrity_problems()?;
    if !problems.is_empty() {
        return Err(VerifyError::Integrity(problems));
    }
    let snapshots = store.snapshots()?;
    let now = Utc::now();
    let mut unknown_sites: Vec<String> = snapshots
        .iter()
        .flat_map(|(_, s)| s.sites.keys())
        .filter(|id| hall.site(id).is_none())
        .map(|id| id.to_string())
        .collect();
    unknown_sites.sort();
    unknown_sites.dedup();
    let seqs: Vec<u64> = snapshots.iter().map(|(seq, _)| *seq).collect();
    let mut snapshots = snapshots.into_iter();
    let (start, mut engine, oldest) = match snapshots.next() {
        Some((seq, state)) => (
            seq,
            Engine::from_snapshot(hall.clone(), state.clone(), now),
            Some((seq, state)),
        ),
        None => (0, Engine::new(hall.clone(), now), None),
    };
    // Events up to the oldest snapshot are not replayed (the retention purge may have left holes in
    // them), but each must still read.
    let mut events = 0u64;
    let mut read = 0;
    while read < start {
        let chunk = store.events_after(read, CHUNK)?;
        let Some(last) = chunk.last() else { break };
        read = last.seq;
        events += chunk.iter().filter(|ev| ev.seq <= start).count() as u64;
        if chunk.len() < CHUNK {
            break;
        }
    }
    // The next snapshot the replay must reach.
    let mut ahead: Vec<(u64, State)> = snapshots.collect();
    ahead.reverse();
    let mut last = start;
    loop {
        let chunk = store.events_after(last, CHUNK)?;
        for ev in &chunk {
            if ev.seq != last + 1 {
                return Err(VerifyError::Gap {
                    after: last,
                    got: ev.seq,
                });
            }
            engine.apply(ev);
            last = ev.seq;
            events += 1;
            if ahead.last().is_some_and(|(seq, _)| *seq == last) {
                let (seq, state) = ahead.pop().expect("checked");
                let from = oldest.as_ref().map_or(0, |o| o.0);
                compare(&engine, hall, state, now, oldest.as_ref().map(|o| &o.1)).map_err(
                    |what| VerifyError::Mismatch {
                        from_snapshot: from,
                        from: from + 1,
                        to: seq,
                        what,
                    },
                )?;
            }
        }
        if chunk.len() < CHUNK {
            break;
        }
    }
    if let Some((seq, _)) = ahead.pop() {
        // A snapshot with no events after the one before it is the same moment; anything else is missing
        // events.
        if seq > last {
            return Err(VerifyError::SnapshotAhead {
                snapshot: seq,
                last,
            });
        }
    }
    Ok(Verified {
        schema,
        known,
        last_seq: last,
        events,
        snapshots: seqs,
        unknown_sites,
    })
}

/// Compares the replayed engine with a stored snapshot, site by site (the sites the replay started from
/// and the config names), as the daemon would load it. What differs, if anything.
fn compare(
    replayed: &Engine,
    hall: &Arc<Hall>,
    stored: State,
    now: chrono::DateTime<Utc>,
    started_from: Option<&State>,
) -> Result<(), String> {
    let stored = Engine::from_snapshot(hall.clone(), stored, now);
    let (a, b) = (replayed.state(), stored.state());
    if a.last_seq != b.last_seq {
        return Err(format!("last seq {} against {}", a.last_seq, b.last_seq));
    }
    if a.next_ticket_id != b.next_ticket_id {
        return Err(format!(
            "next ticket id {} against {}",
            a.next_ticket_id, b.next_ticket_id
        ));
    }
    for (id, site) in &a.sites {
        // A site the config added after the replay's snapshot was taken starts fresh at `now` in the
        // replay: nothing to compare.
        if started_from.is_some_and(|s| !s.sites.contains_key(id)) {
            continue;
        }
        let other = b.sites.get(id);
        let same =
            other.is_some_and(|o| serde_json::to_value(site).ok() == serde_json::to_value(o).ok());
        if !same {
            return Err(format!("site {id} differs"));
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0} already holds a database: pass --force to replace it")]
    Exists(String),
    #[error("{0} is not a usable copy: {1}")]
    BadCopy(String, #[source] VerifyError),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}

/// Puts the copy at `from` in place as `dir`'s database: refused while a daemon runs on `dir` (its lock
/// is held throughout, so none starts meanwhile) and, without `force`, when `dir` holds a database. The
/// copy is copied beside the database, verified there, and only then renamed over it; the old database's
/// WAL and shared-memory files are removed first, so nothing of the old database is replayed onto the
/// new one.
pub fn restore(
    from: &Path,
    dir: &Path,
    hall: &Arc<Hall>,
    force: bool,
) -> Result<Verified, RestoreError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |e: std::io::Error| RestoreError::Io(p.clone(), e)
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let _lock = lock_data_dir(dir)?;
    let db = dir.join(DB_FILE);
    if db.exists() && !force {
        return Err(RestoreError::Exists(dir.display().to_string()));
    }
    let incoming = dir.join(format!("{DB_FILE}.restoring"));
    remove_db_files(&incoming).map_err(io(&incoming))?;
    std::fs::copy(from, &incoming).map_err(io(from))?;
    File::open(&incoming)
        .and_then(|f| f.sync_all())
        .map_err(io(&incoming))?;
    let checked = verify(&incoming, hall);
    let checked = match checked {
        Ok(v) => v,
        Err(e) => {
            let _ = remove_db_files(&incoming);
            return Err(RestoreError::BadCopy(from.display().to_string(), e));
        }
    };
    // The check may have left a WAL beside the copy (a copy in WAL mode); SQLite folds it in when the
    // last connection closes, so none remains to move.
    remove_db_files(&db).map_err(io(&db))?;
    std::fs::rename(&incoming, &db).map_err(io(&db))?;
    let _ = remove_sidecars(&incoming);
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))?;
    Ok(checked)
}

/// Removes a database file and its WAL and shared-memory files, those that exist.
fn remove_db_files(db: &Path) -> std::io::Result<()> {
    remove_sidecars(db)?;
    remove_if_there(db)
}

fn remove_sidecars(db: &Path) -> std::io::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        remove_if_there(Path::new(&name))?;
    }
    Ok(())
}

fn remove_if_there(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

// ---- scheduled backups -----------------------------------------------------------------------------

/// A scheduled copy's file name at `at` (UTC): `vuoro-YYYYMMDD-HHMM.sqlite`.
pub fn scheduled_name(at: chrono::DateTime<Utc>) -> String {
    at.format("vuoro-%Y%m%d-%H%M.sqlite").to_string()
}

fn is_scheduled_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.len() == "vuoro-YYYYMMDD-HHMM.sqlite".len()
        && name.starts_with("vuoro-")
        && name.ends_with(".sqlite")
        && b[14] == b'-'
        && b[6..14].iter().chain(&b[15..19]).all(u8::is_ascii_digit)
}

/// The scheduled copies in `dir`, oldest first (their names sort by time).
pub fn scheduled_copies(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_scheduled_name))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// Writes one scheduled copy now and deletes the oldest beyond `keep`; the copy's path.
pub fn take_scheduled(store: &dyn Database, cfg: &BackupConfig) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::fs::create_dir_all(&cfg.dir)
        .with_context(|| format!("cannot create {}", cfg.dir.display()))?;
    let dest = cfg.dir.join(scheduled_name(Utc::now()));
    store
        .backup_to(&dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    let copies =
        scheduled_copies(&cfg.dir).with_context(|| format!("cannot list {}", cfg.dir.display()))?;
    let extra = copies.len().saturating_sub(cfg.keep.max(1));
    for old in &copies[..extra] {
        std::fs::remove_file(old).with_context(|| format!("cannot delete {}", old.display()))?;
    }
    Ok(dest)
}

/// How long after a failed scheduled backup the next try comes.
const RETRY: Duration = Duration::from_secs(15 * 60);

/// Runs the scheduled backups until `stop` changes: the first as soon as the newest copy in the folder is
/// `every_hours` old (at once when there is none), then every `every_hours`. A failure is logged as an
/// error and tried again in 15 minutes; `last_success` (Unix seconds) moves only on success, so an alert
/// on its age catches every kind of failure.
pub async fn run_scheduled(
    cfg: BackupConfig,
    store: Arc<dyn Database>,
    last_success: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let every = Duration::from_secs(u64::from(cfg.every_hours.max(1)) * 3600);
    // The newest copy already there (from before a restart) counts.
    let newest = scheduled_copies(&cfg.dir)
        .ok()
        .and_then(|c| c.last().cloned())
        .and_then(|p| p.metadata().ok()?.modified().ok());
    if let Some(t) = newest
        && let Ok(secs) = t.duration_since(std::time::UNIX_EPOCH)
    {
        last_success.store(secs.as_secs(), Ordering::Relaxed);
    }
    let mut wait = newest
        .and_then(|t| t.elapsed().ok())
        .map_or(Duration::ZERO, |age| every.saturating_sub(age));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let (store2, cfg2) = (store.clone(), cfg.clone());
        let taken = tokio::task::spawn_blocking(move || take_scheduled(&*store2, &cfg2)).await;
        wait = match taken {
            Ok(Ok(path)) => {
                last_success.store(Utc::now().timestamp().max(0) as u64, Ordering::Relaxed);
                tracing::info!(path = %path.display(), "backup written");
                every
            }
            Ok(Err(e)) => {
                tracing::error!(error = format!("{e:#}"), dir = %cfg.dir.display(), "scheduled backup failed");
                RETRY.min(every)
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduled backup task failed");
                RETRY.min(every)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vuoro_engine::{Actor, Command};

    const DEMO: &str = include_str!("../../../config/demo.toml");

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vuoro-backup-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The real engine's events and snapshots, written as the daemon's writer writes them: tickets, a
    /// snapshot, more tickets, a second snapshot, a few more.
    fn hall_with_two_snapshots(db: &Path) -> (Arc<Hall>, u64) {
        let hall = crate::config::load(DEMO).unwrap().hall;
        let store = vuoro_store::open(db).unwrap();
        let now = Utc::now();
        let mut engine = Engine::new(hall.clone(), now);
        let issue = |engine: &mut Engine, n: usize| {
            for i in 0..n {
                let before = engine.last_seq();
                engine
                    .handle(
                        Command::Issue {
                            site: "iso-omena".parse().unwrap(),
                            service: "parking".parse().unwrap(),
                            lang: "fi".into(),
                            priority: Default::default(),
                            token: format!("{:032x}", before * 100 + i as u64).parse().unwrap(),
                            channel: vuoro_engine::Channel::Kiosk,
                            idempotency: None,
                        },
                        now,
                        &Actor::device("kiosk-3"),
                    )
                    .unwrap();
                store.append(before, &engine.take_events(), None).unwrap();
            }
        };
        let snapshot = |engine: &Engine| {
            let seq = engine.last_seq();
            store.append(seq, &[], Some((seq, engine.state()))).unwrap();
            seq
        };
        issue(&mut engine, 5);
        snapshot(&engine);
        issue(&mut engine, 5);
        let newer = snapshot(&engine);
        issue(&mut engine, 3);
        (hall, newer)
    }

    #[test]
    fn verify_replays_the_older_snapshot_to_the_newer_and_finds_one_that_differs() {
        let dir = temp("replay");
        let db = dir.join(DB_FILE);
        let (hall, newer) = hall_with_two_snapshots(&db);
        let v = verify(&db, &hall).unwrap();
        assert_eq!(v.snapshots.len(), 2, "{v:?}");
        assert_eq!(v.snapshots[1], newer);
        assert_eq!(
            v.last_seq,
            vuoro_store::open_read_only(&db)
                .unwrap()
                .last_seq()
                .unwrap()
        );
        assert_eq!(v.events, v.last_seq, "every event read: {v:?}");
        assert!(v.unknown_sites.is_empty(), "{v:?}");

        // The newer snapshot stored with a ticket's number changed: the replay does not reach it.
        let store = vuoro_store::open(&db).unwrap();
        let (_, mut state) = store.snapshots().unwrap().pop().unwrap();
        let site = state.sites.values_mut().next().unwrap();
        site.tickets.values_mut().next().unwrap().number = "Z999".into();
        store.append(newer, &[], Some((newer, &state))).unwrap();
        drop(store);
        match verify(&db, &hall) {
            Err(VerifyError::Mismatch { to, what, .. }) => {
                assert_eq!(to, newer);
                assert!(what.contains("iso-omena"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_second_lock_on_a_data_folder_is_refused_until_the_first_is_let_go() {
        let dir = temp("lock");
        let first = lock_data_dir(&dir).unwrap();
        let err = lock_data_dir(&dir).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("(process {})", std::process::id())),
            "{err}"
        );
        drop(first);
        lock_data_dir(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn scheduled_names_are_recognised_and_sort_by_time() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T07:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(scheduled_name(at), "vuoro-20261203-0705.sqlite");
        assert!(is_scheduled_name("vuoro-20261203-0705.sqlite"));
        for other in [
            "vuoro.sqlite",
            "vuoro-20261203-0705.sqlite.partial",
            "vuoro-2026120x-0705.sqlite",
            "notes-20261203-0705.sqlite",
        ] {
            assert!(!is_scheduled_name(other), "{other}");
        }
    }
}
