//! Devices' enrolment codes and tokens in SQLite (hashes only), and the config's versions. Written on the
//! sessions' connection: enrolling, revoking and changing the config never queue behind the event log's
//! writer.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{parse_time, ts};
use crate::{ConfigVersion, DeviceSeen, DeviceToken, DeviceTokenSource, Result, StoreError};

pub(super) fn create_enrol_code(
    conn: &mut Connection,
    code_sha256: &str,
    device: &str,
    by: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction()?;
    // One code per device at a time: a new code replaces the one shown before.
    tx.execute(
        "DELETE FROM enrol_codes WHERE device = ?1 OR expires_at <= ?2",
        params![device, ts(now)],
    )?;
    tx.execute(
        "INSERT INTO enrol_codes (code_sha256, device, created_at, created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![code_sha256, device, ts(now), by, ts(expires_at)],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn enrol(
    conn: &mut Connection,
    code_sha256: &str,
    device: Option<&str>,
    token: &DeviceToken,
) -> Result<Option<String>> {
    let tx = conn.transaction()?;
    let now = ts(token.created_at);
    tx.execute("DELETE FROM enrol_codes WHERE expires_at <= ?1", [&now])?;
    let device: Option<String> = tx
        .query_row(
            "DELETE FROM enrol_codes WHERE code_sha256 = ?1 AND (?2 IS NULL OR device = ?2) RETURNING device",
            params![code_sha256, device],
            |r| r.get(0),
        )
        .optional()?;
    let Some(device) = device else {
        // Expired codes are gone either way.
        tx.commit()?;
        return Ok(None);
    };
    tx.execute(
        "INSERT INTO device_tokens (token_sha256, device, source, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            token.token_sha256,
            device,
            DeviceTokenSource::Enrolled.as_str(),
            now,
            token.created_by
        ],
    )?;
    tx.commit()?;
    Ok(Some(device))
}

fn time(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| parse_time(&s)).transpose()
}

pub(super) fn device_tokens(conn: &Connection) -> Result<Vec<DeviceToken>> {
    let mut stmt = conn.prepare(
        "SELECT token_sha256, device, source, created_at, created_by, revoked_at, revoked_by, last_seen_at, \
         last_seen_from FROM device_tokens ORDER BY device, created_at",
    )?;
    type Raw = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows = stmt.query_map([], |r| {
        Ok::<Raw, _>((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            token_sha256,
            device,
            source,
            created,
            created_by,
            revoked,
            revoked_by,
            seen,
            seen_from,
        ) = row?;
        let source = match source.as_str() {
            "enrolled" => DeviceTokenSource::Enrolled,
            "config" => DeviceTokenSource::Config,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "device token source '{other}'"
                )));
            }
        };
        out.push(DeviceToken {
            token_sha256,
            device,
            source,
            created_at: parse_time(&created)?,
            created_by,
            revoked_at: time(revoked)?,
            revoked_by,
            last_seen_at: time(seen)?,
            last_seen_from: seen_from,
        });
    }
    Ok(out)
}

pub(super) fn revoke_device(
    conn: &mut Connection,
    device: &str,
    config_token: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<usize> {
    let tx = conn.transaction()?;
    let mut n = tx.execute(
        "UPDATE device_tokens SET revoked_at = ?2, revoked_by = ?3 WHERE device = ?1 AND revoked_at IS NULL",
        params![device, ts(at), by],
    )?;
    if let Some(hash) = config_token {
        n += tx.execute(
            "INSERT INTO device_tokens (token_sha256, device, source, created_at, created_by, revoked_at, revoked_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?5) ON CONFLICT (token_sha256) DO NOTHING",
            params![hash, device, DeviceTokenSource::Config.as_str(), ts(at), by],
        )?;
    }
    tx.execute("DELETE FROM enrol_codes WHERE device = ?1", [device])?;
    tx.commit()?;
    Ok(n)
}

pub(super) fn devices_seen(conn: &mut Connection, seen: &[DeviceSeen]) -> Result<()> {
    let tx = conn.transaction()?;
    {
        // A config file's token gets its row when first seen, so that the console lists it too.
        let mut stmt = tx.prepare_cached(
            "INSERT INTO device_tokens (token_sha256, device, source, created_at, created_by, last_seen_at, last_seen_from) \
             VALUES (?1, ?2, 'config', ?3, 'config file', ?3, ?4) \
             ON CONFLICT (token_sha256) DO UPDATE SET last_seen_at = ?3, last_seen_from = ?4",
        )?;
        for s in seen {
            stmt.execute(params![s.token_sha256, s.device, ts(s.at), s.from])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn add_config_version(conn: &mut Connection, v: &ConfigVersion) -> Result<u64> {
    conn.execute(
        "INSERT INTO config_versions (text, sha256, source, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![v.text, v.sha256, v.source, ts(v.created_at), v.created_by],
    )?;
    Ok(conn.last_insert_rowid() as u64)
}

const VERSION_COLUMNS: &str = "version, text, sha256, source, created_at, created_by";

fn version_row(
    r: &rusqlite::Row,
) -> rusqlite::Result<(i64, String, String, String, String, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn version_of(raw: (i64, String, String, String, String, String)) -> Result<ConfigVersion> {
    let (version, text, sha256, source, created, created_by) = raw;
    Ok(ConfigVersion {
        version: version as u64,
        text,
        sha256,
        source,
        created_at: parse_time(&created)?,
        created_by,
    })
}

pub(super) fn latest_config(
    conn: &Connection,
    source: Option<&str>,
) -> Result<Option<ConfigVersion>> {
    let raw = conn
        .query_row(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM config_versions WHERE ?1 IS NULL OR source = ?1 \
                 ORDER BY version DESC LIMIT 1"
            ),
            [source],
            version_row,
        )
        .optional()?;
    raw.map(version_of).transpose()
}

pub(super) fn config_version(conn: &Connection, version: u64) -> Result<Option<ConfigVersion>> {
    let raw = conn
        .query_row(
            &format!("SELECT {VERSION_COLUMNS} FROM config_versions WHERE version = ?1"),
            [version as i64],
            version_row,
        )
        .optional()?;
    raw.map(version_of).transpose()
}

pub(super) fn config_versions(conn: &Connection, limit: usize) -> Result<Vec<ConfigVersion>> {
    let mut stmt = conn.prepare(
        "SELECT version, '', sha256, source, created_at, created_by FROM config_versions \
         ORDER BY version DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], version_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(version_of(r?)?);
    }
    Ok(out)
}
