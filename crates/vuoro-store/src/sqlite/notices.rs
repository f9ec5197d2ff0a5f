//! The notices' tables in SQLite: contacts, the outbox (`notices`), opt-outs and the post-commit
//! consumers' reached seqs. Run on the notices' own connection (see `Sqlite`), so that deciding and
//! sending notices never queue behind the event log's writer inside the process.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{parse_time, ts};
use crate::{
    Contact, NewNotice, Notice, NoticeChannel, NoticeCounts, NoticeOutcome, NoticeState, Result,
    StoreError,
};

const NOTICE_COLUMNS: &str = "id, key, site, ticket, kind, number, channel, address, lang, text, state, attempts, \
     next_at, reason, created_at, done_at";

fn channel(s: &str) -> Result<NoticeChannel> {
    NoticeChannel::parse(s).ok_or_else(|| StoreError::Corrupt(format!("notice channel '{s}'")))
}

type RawNotice = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn raw(r: &Row) -> rusqlite::Result<RawNotice> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

fn notice(r: RawNotice) -> Result<Notice> {
    let (
        id,
        key,
        site,
        ticket,
        kind,
        number,
        ch,
        address,
        lang,
        text,
        state,
        attempts,
        next,
        reason,
        c,
        d,
    ) = r;
    Ok(Notice {
        id,
        key,
        site,
        ticket: ticket as u64,
        kind,
        number,
        channel: channel(&ch)?,
        address,
        lang,
        text,
        state: NoticeState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("notice state '{state}'")))?,
        attempts: attempts.max(0) as u32,
        next_at: parse_time(&next)?,
        reason,
        created_at: parse_time(&c)?,
        done_at: d.as_deref().map(parse_time).transpose()?,
    })
}

fn query_notices(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Notice>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, raw)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(notice(r?)?);
    }
    Ok(out)
}

pub(super) fn consumer_seq(conn: &Connection, name: &str) -> Result<Option<u64>> {
    Ok(conn
        .query_row("SELECT seq FROM consumers WHERE name = ?1", [name], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map(|s| s as u64))
}

pub(super) fn put_contact(conn: &Connection, c: &Contact) -> Result<()> {
    conn.execute(
        "INSERT INTO contacts (site, ticket, channel, address, address_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (site, ticket, channel) DO UPDATE
         SET address = excluded.address, address_key = excluded.address_key, created_at = excluded.created_at",
        params![
            c.site,
            c.ticket as i64,
            c.channel.as_str(),
            c.address,
            c.address_key,
            ts(c.created_at)
        ],
    )?;
    Ok(())
}

pub(super) fn delete_contacts(
    conn: &Connection,
    site: &str,
    ticket: u64,
    ch: Option<NoticeChannel>,
) -> Result<usize> {
    Ok(match ch {
        Some(ch) => conn.execute(
            "DELETE FROM contacts WHERE site = ?1 AND ticket = ?2 AND channel = ?3",
            params![site, ticket as i64, ch.as_str()],
        )?,
        None => conn.execute(
            "DELETE FROM contacts WHERE site = ?1 AND ticket = ?2",
            params![site, ticket as i64],
        )?,
    })
}

pub(super) fn contacts(conn: &Connection) -> Result<Vec<Contact>> {
    let mut stmt = conn.prepare(
        "SELECT site, ticket, channel, address, address_key, created_at FROM contacts ORDER BY site, ticket",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (site, ticket, ch, address, address_key, created) = r?;
        out.push(Contact {
            site,
            ticket: ticket as u64,
            channel: channel(&ch)?,
            address,
            address_key,
            created_at: parse_time(&created)?,
        });
    }
    Ok(out)
}

pub(super) fn decide(
    conn: &mut Connection,
    new: &[NewNotice],
    ended: &[(String, u64)],
    reached: Option<(&str, u64)>,
) -> Result<Vec<Notice>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut stored = Vec::new();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO notices (key, site, ticket, kind, number, channel, address, address_key, lang, text,
                                  state, attempts, next_at, created_at, reason, done_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?12, ?13, ?14)
             ON CONFLICT (key) DO NOTHING",
        )?;
        for n in new {
            let dropped = n.dropped.is_some();
            let added = insert.execute(params![
                n.key,
                n.site,
                n.ticket as i64,
                n.kind,
                n.number,
                n.channel.as_str(),
                (!dropped).then_some(&n.address),
                n.address_key,
                n.lang,
                n.text,
                if dropped { "dropped" } else { "pending" },
                ts(n.at),
                n.dropped,
                dropped.then(|| ts(n.at)),
            ])?;
            if added == 1 && !dropped {
                stored.push(Notice {
                    id: tx.last_insert_rowid(),
                    key: n.key.clone(),
                    site: n.site.clone(),
                    ticket: n.ticket,
                    kind: n.kind.clone(),
                    number: n.number.clone(),
                    channel: n.channel,
                    address: Some(n.address.clone()),
                    lang: n.lang.clone(),
                    text: n.text.clone(),
                    state: NoticeState::Pending,
                    attempts: 0,
                    next_at: n.at,
                    reason: None,
                    created_at: n.at,
                    done_at: None,
                });
            }
        }
        let mut forget =
            tx.prepare_cached("DELETE FROM contacts WHERE site = ?1 AND ticket = ?2")?;
        for (site, ticket) in ended {
            forget.execute(params![site, *ticket as i64])?;
        }
        if let Some((name, seq)) = reached {
            tx.execute(
                "INSERT INTO consumers (name, seq) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                params![name, seq as i64],
            )?;
        }
    }
    tx.commit()?;
    Ok(stored)
}

pub(super) fn due(
    conn: &Connection,
    ch: NoticeChannel,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Notice>> {
    query_notices(
        conn,
        &format!(
            "SELECT {NOTICE_COLUMNS} FROM notices
             WHERE channel = ?1 AND state = 'pending' AND next_at <= ?2 ORDER BY next_at, id LIMIT ?3"
        ),
        params![ch.as_str(), ts(now), limit as i64],
    )
}

pub(super) fn next_at(conn: &Connection, ch: NoticeChannel) -> Result<Option<DateTime<Utc>>> {
    let next: Option<String> = conn.query_row(
        "SELECT MIN(next_at) FROM notices WHERE channel = ?1 AND state = 'pending'",
        [ch.as_str()],
        |r| r.get(0),
    )?;
    next.as_deref().map(parse_time).transpose()
}

pub(super) fn finish(
    conn: &Connection,
    id: i64,
    outcome: &NoticeOutcome,
    now: DateTime<Utc>,
) -> Result<()> {
    let changed = match outcome {
        NoticeOutcome::Retry { at, reason } => conn.execute(
            "UPDATE notices SET attempts = attempts + 1, next_at = ?2, reason = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, ts(*at), reason],
        )?,
        NoticeOutcome::Sent => conn.execute(
            "UPDATE notices SET attempts = attempts + 1, state = 'sent', address = NULL, reason = NULL,
                                done_at = ?2
             WHERE id = ?1 AND state = 'pending'",
            params![id, ts(now)],
        )?,
        NoticeOutcome::Failed { reason } => conn.execute(
            "UPDATE notices SET attempts = attempts + 1, state = 'failed', address = NULL, reason = ?2,
                                done_at = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, reason, ts(now)],
        )?,
        NoticeOutcome::Dropped { reason } => conn.execute(
            "UPDATE notices SET state = 'dropped', address = NULL, reason = ?2, done_at = ?3
             WHERE id = ?1 AND state = 'pending'",
            params![id, reason, ts(now)],
        )?,
    };
    if changed == 0 {
        return Err(StoreError::Corrupt(format!("notice {id} is not pending")));
    }
    Ok(())
}

pub(super) fn counts(
    conn: &Connection,
    site: &str,
    ticket: u64,
    address_key: &str,
    day: DateTime<Utc>,
) -> Result<NoticeCounts> {
    let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u32> {
        Ok(conn.query_row(sql, p, |r| r.get::<_, i64>(0))?.max(0) as u32)
    };
    Ok(NoticeCounts {
        ticket: one(
            "SELECT COUNT(*) FROM notices WHERE site = ?1 AND ticket = ?2 AND state != 'dropped'",
            &[&site, &(ticket as i64)],
        )?,
        address_today: one(
            "SELECT COUNT(*) FROM notices
             WHERE address_key = ?1 AND created_at >= ?2 AND state != 'dropped'",
            &[&address_key, &ts(day)],
        )?,
    })
}

pub(super) fn since(conn: &Connection, since: DateTime<Utc>) -> Result<u32> {
    Ok(conn
        .query_row(
            "SELECT COUNT(*) FROM notices WHERE created_at >= ?1 AND state != 'dropped'",
            [ts(since)],
            |r| r.get::<_, i64>(0),
        )?
        .max(0) as u32)
}

pub(super) fn by_state(
    conn: &Connection,
    site: &str,
    state: NoticeState,
    since: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Notice>> {
    query_notices(
        conn,
        &format!(
            "SELECT {NOTICE_COLUMNS} FROM notices
             WHERE site = ?1 AND state = ?2 AND created_at >= ?3 ORDER BY id DESC LIMIT ?4"
        ),
        params![site, state.as_str(), ts(since), limit as i64],
    )
}

pub(super) fn totals(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<Vec<(NoticeChannel, NoticeState, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel, state, COUNT(*) FROM notices WHERE created_at >= ?1 GROUP BY channel, state",
    )?;
    let rows = stmt.query_map([ts(since)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (ch, state, n) = r?;
        let state = NoticeState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("notice state '{state}'")))?;
        out.push((channel(&ch)?, state, n.max(0) as u64));
    }
    Ok(out)
}

pub(super) fn opt_out(conn: &Connection, address_key: &str, at: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO notice_opt_outs (address_key, at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![address_key, ts(at)],
    )?;
    Ok(())
}

pub(super) fn opted_out(conn: &Connection, address_key: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM notice_opt_outs WHERE address_key = ?1",
            [address_key],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(super) fn forget_all(
    conn: &mut Connection,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(usize, usize)> {
    let tx = conn.transaction()?;
    let contacts = tx.execute("DELETE FROM contacts", [])?;
    let notices = tx.execute(
        "UPDATE notices SET state = 'dropped', address = NULL, reason = ?1, done_at = ?2
         WHERE state = 'pending'",
        params![reason, ts(now)],
    )?;
    tx.commit()?;
    Ok((contacts, notices))
}

pub(super) fn secret(conn: &Connection, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
    conn.execute(
        "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![name, fresh],
    )?;
    Ok(
        conn.query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
            r.get(0)
        })?,
    )
}

pub(super) fn drop_pending(
    conn: &Connection,
    site: &str,
    ticket: u64,
    ch: Option<NoticeChannel>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE notices SET state = 'dropped', address = NULL, reason = ?4, done_at = ?5
         WHERE site = ?1 AND ticket = ?2 AND state = 'pending' AND (?3 IS NULL OR channel = ?3)",
        params![
            site,
            ticket as i64,
            ch.map(NoticeChannel::as_str),
            reason,
            ts(now)
        ],
    )?)
}

pub(super) fn finish_many(
    conn: &mut Connection,
    outcomes: &[(i64, NoticeOutcome)],
    now: DateTime<Utc>,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (id, outcome) in outcomes {
        match finish(&tx, *id, outcome, now) {
            Ok(()) | Err(StoreError::Corrupt(_)) => {}
            Err(e) => return Err(e),
        }
    }
    tx.commit()?;
    Ok(())
}
