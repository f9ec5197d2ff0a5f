//! Notices to customers who wait elsewhere: "your turn is near", "you are called to counter 5" and "the
//! service closed before your turn", by SMS (an operator's HTTP gateway), e-mail (SMTP) and Web Push to the
//! phone page (`push.rs`). docs/notices.md.
//!
//! Decided once, sent once:
//! - A ticket's contact (`PUT /api/v1/tickets/{token}/contact`) is stored (table `contacts`) and kept in
//!   memory; it is forgotten when the ticket ends.
//! - The decider is a post-commit consumer (`after_commit`): from the committed events (and the read model
//!   right after them) it decides which notices are due and stores them in the outbox (`notices`) under a
//!   key that names the decision (site, ticket, kind, the call's seq, channel). The same decision made
//!   again, after a restart replays the events since the decider's last recorded seq, is the same key and
//!   is stored once. Notices are decided only from committed events, never before their commit.
//! - A sender thread per channel takes due notices from the outbox, drops those too late to matter (the
//!   ticket was called before "your turn is near" went out), sends the rest with the provider's
//!   idempotency key, and records the outcome: sent, retry later with back-off, or failed with the reason
//!   (supervisors see failed notices). A notice that was sent is never sent again; one that was being sent
//!   when the daemon died is sent again with the same idempotency key (the gateway's `Idempotency-Key`
//!   header, the e-mail's Message-ID), so a provider that honours it delivers it once.
//! - Limits: notices per ticket, per number or address per day, a monthly cap for the whole deployment,
//!   and the addresses that asked for no more; a notice over a limit is stored as dropped with the reason.
//!
//! - A push service that answers that a subscription is gone (404, 410) ends it: the contact is
//!   forgotten and the sender drops what else was due to it.
//!
//! Addresses are never logged; a notice forgets its address when it ends; an address's limits and
//! opt-out are kept under a keyed hash (the secret `notify.key`, in the database; for a push subscription, the
//! hash of its endpoint).

pub mod api;
pub mod push;
pub mod send;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use vuoro_engine::config::text_in;
use vuoro_engine::{Event, EventKind, TicketState};
use vuoro_store::{Contact, Database, NewNotice, Notice, NoticeChannel, NoticeOutcome};

use crate::after_commit::{Consumer, Delivery};
use crate::core::Shared;
use crate::deployment::NotifyConfig;
use send::{Provider, SendError};
use text::Kind;

/// The decider's name among the post-commit consumers (its reached seq is stored under it).
pub const CONSUMER: &str = "notices";
/// The name of the addresses' hash key among the database's secrets.
const KEY_NAME: &str = "notify.key";
/// How often the decider records how far it got when it decided nothing.
const RECORD_EVERY: Duration = Duration::from_secs(2);
/// Outcomes of sends are recorded together at least this often.
const RECORD_OUTCOMES: Duration = Duration::from_millis(100);
/// A "closed" notice older than this is not sent.
const CLOSED_TOO_LATE: chrono::Duration = chrono::Duration::hours(2);

/// Notices: contacts, the decider and the senders. One per daemon when `[notify]` is configured.
pub struct Notices {
    cfg: NotifyConfig,
    db: Arc<dyn Database>,
    shared: Arc<Shared>,
    key: [u8; 32],
    /// The VAPID key pair, when push is offered.
    vapid: Option<Arc<push::Vapid>>,
    /// Contacts by (site, ticket).
    contacts: Mutex<HashMap<(String, u64), Vec<Contact>>>,
    wakes: Vec<(NoticeChannel, Arc<Wake>)>,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Decisions are made by one thread at a time (the decider, a contact's first look, the sweep).
    deciding: Mutex<()>,
    /// (site, ticket, service) whose "near" notice is decided, so that it is not looked at again (after a
    /// restart the outbox's unique keys catch a decision made again).
    near_decided: Mutex<std::collections::HashSet<(String, u64, String)>>,
    /// Notices counted against the monthly cap: (the month's first day, notices decided in it, not
    /// dropped), read from the outbox once a month and counted on since.
    month: Mutex<Option<(DateTime<Utc>, u32)>>,
}

#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    fn wake(&self) {
        *self.flag.lock().expect("lock") = true;
        self.cv.notify_all();
    }

    fn wait(&self, at_most: Duration) {
        let mut woken = self.flag.lock().expect("lock");
        if !*woken {
            woken = self.cv.wait_timeout(woken, at_most).expect("lock").0;
        }
        *woken = false;
    }
}

/// The key of addresses' hashes, made at first start.
fn load_or_make_key(db: &dyn Database) -> anyhow::Result<[u8; 32]> {
    load_or_make_secret(db, KEY_NAME, "32 bytes", |_| true)
}

/// A 32-byte secret kept as `name` in the database (so that a backup holds it): read, or made at first
/// start (random bytes that `valid` takes). A stored one that is not 32 bytes or that `valid` refuses is
/// damaged: an error that names it, never replaced (a new key would end every subscription and opt-out).
pub(crate) fn load_or_make_secret(
    db: &dyn Database,
    name: &str,
    what: &str,
    valid: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<[u8; 32]> {
    let mut fresh = [0; 32];
    loop {
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        if valid(&fresh) {
            break;
        }
    }
    let stored = db
        .secret(name, &fresh)
        .with_context(|| format!("cannot read the secret {name}"))?;
    fresh.fill(0);
    if stored.len() != 32 || !valid(&stored) {
        anyhow::bail!(
            "the secret {name} in the database is damaged (not {what}); restore the database from a backup"
        );
    }
    let mut key = [0; 32];
    key.copy_from_slice(&stored);
    Ok(key)
}

/// The start of the UTC day and month of `now`.
fn day_and_month(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now);
    let month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    (day, month)
}

/// A number or address shown without most of it: `+35840*****67`, `a***@example.fi`.
pub fn masked(channel: NoticeChannel, address: &str) -> String {
    match channel {
        NoticeChannel::Sms => {
            let chars: Vec<char> = address.chars().collect();
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < 6 || i + 2 >= chars.len() {
                        *c
                    } else {
                        '*'
                    }
                })
                .collect()
        }
        NoticeChannel::Email => match address.split_once('@') {
            Some((user, domain)) => {
                format!("{}***@{domain}", user.chars().next().unwrap_or('*'))
            }
            None => "***".into(),
        },
        NoticeChannel::Push => "this browser".into(),
    }
}

impl Notices {
    /// Starts notices: loads the contacts, registers the decider after the seq it last recorded (or at
    /// `start_seq` the first time: nothing from before is notified), and starts a sender per configured
    /// channel.
    pub fn start(
        cfg: NotifyConfig,
        db: Arc<dyn Database>,
        shared: Arc<Shared>,
        start_seq: u64,
    ) -> anyhow::Result<Arc<Notices>> {
        let key = load_or_make_key(db.as_ref())?;
        let mut providers: Vec<(NoticeChannel, Box<dyn Provider>, u32)> = Vec::new();
        if let Some(sms) = &cfg.sms {
            providers.push((
                NoticeChannel::Sms,
                Box::new(send::SmsSender::new(sms.clone())),
                sms.per_second,
            ));
        }
        if let Some(email) = &cfg.email {
            providers.push((
                NoticeChannel::Email,
                Box::new(send::EmailSender::new(email)?),
                email.per_second,
            ));
        }
        let mut vapid = None;
        if let Some(p) = &cfg.push {
            let v = Arc::new(push::Vapid::load_or_make(db.as_ref())?);
            providers.push((
                NoticeChannel::Push,
                Box::new(push::PushSender::new(p.clone(), v.clone())),
                p.per_second,
            ));
            vapid = Some(v);
        }
        // A channel no longer configured keeps no contact: it would never be sent to.
        let mut contacts: HashMap<(String, u64), Vec<Contact>> = HashMap::new();
        let mut unsent = 0;
        for c in db.contacts()? {
            if providers.iter().any(|(ch, _, _)| *ch == c.channel) {
                contacts
                    .entry((c.site.clone(), c.ticket))
                    .or_default()
                    .push(c);
            } else {
                unsent += db.delete_contacts(&c.site, c.ticket, Some(c.channel))?;
            }
        }
        if unsent > 0 {
            tracing::info!(
                contacts = unsent,
                "notices: contacts of channels no longer configured forgotten"
            );
        }
        let notices = Arc::new(Notices {
            wakes: providers
                .iter()
                .map(|(ch, _, _)| (*ch, Arc::new(Wake::default())))
                .collect(),
            cfg,
            db: db.clone(),
            shared: shared.clone(),
            key,
            vapid,
            contacts: Mutex::new(contacts),
            stop: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            deciding: Mutex::new(()),
            near_decided: Mutex::new(std::collections::HashSet::new()),
            month: Mutex::new(None),
        });
        let after = db.consumer_seq(CONSUMER)?.unwrap_or(start_seq);
        shared.after_commit.register(
            CONSUMER,
            after,
            Decider {
                notices: notices.clone(),
                decided: Vec::new(),
                ended: Vec::new(),
                near: Vec::new(),
                unrecorded: None,
                recorded_at: Instant::now(),
            },
        );
        for (ch, provider, per_second) in providers {
            let n = notices.clone();
            let thread = std::thread::Builder::new()
                .name(format!("notices-{}", ch.as_str()))
                .spawn(move || n.run_sender(ch, provider, per_second))
                .context("spawn a notice sender")?;
            notices.threads.lock().expect("lock").push(thread);
        }
        Ok(notices)
    }

    /// Stops the senders (a notice being sent is finished or left pending for the next start).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for (_, w) in &self.wakes {
            w.wake();
        }
        let threads: Vec<_> = self.threads.lock().expect("lock").drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }

    pub fn config(&self) -> &NotifyConfig {
        &self.cfg
    }

    /// Whether notices of `channel` can be sent here.
    pub fn offers(&self, channel: NoticeChannel) -> bool {
        self.wakes.iter().any(|(c, _)| *c == channel)
    }

    /// The VAPID public key the phone page subscribes with (base64url), when push is offered.
    pub fn push_key(&self) -> Option<&str> {
        self.vapid.as_ref().map(|v| v.public_key())
    }

    /// The keyed hash an address's limits and opt-out are kept under.
    pub fn address_key(&self, address: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(address.as_bytes());
        crate::auth::hex(&mac.finalize().into_bytes())
    }

    /// The keyed hash a contact's address is kept under: a push subscription's is its endpoint's.
    pub fn contact_key(&self, channel: NoticeChannel, address: &str) -> String {
        match channel {
            NoticeChannel::Push => match push::Subscription::from_address(address) {
                Some(s) => self.address_key(&s.endpoint),
                None => self.address_key(address),
            },
            _ => self.address_key(address),
        }
    }

    /// The idempotency key a provider gets for a notice: the same for every attempt.
    fn idempotency_key(&self, notice_key: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"notice:");
        mac.update(notice_key.as_bytes());
        format!(
            "vuoro-{}",
            &crate::auth::hex(&mac.finalize().into_bytes())[..32]
        )
    }

    /// A ticket's contacts.
    pub fn contacts_of(&self, site: &str, ticket: u64) -> Vec<Contact> {
        self.contacts
            .lock()
            .expect("lock")
            .get(&(site.to_string(), ticket))
            .cloned()
            .unwrap_or_default()
    }

    /// Stores a ticket's contact (the address already checked), then looks at once whether its turn is
    /// already near.
    pub fn set_contact(&self, contact: Contact) -> vuoro_store::Result<()> {
        self.db.put_contact(&contact)?;
        {
            let mut m = self.contacts.lock().expect("lock");
            let list = m.entry((contact.site.clone(), contact.ticket)).or_default();
            list.retain(|c| c.channel != contact.channel);
            list.push(contact.clone());
        }
        self.decide_with(
            &[],
            &[],
            None,
            &[contact.site.as_str()],
            Some(contact.ticket),
        )
    }

    /// Forgets a ticket's contacts (one channel or all) and drops its pending notices of those channels;
    /// with `opt_out`, their addresses get no more notices at all.
    pub fn remove_contacts(
        &self,
        site: &str,
        ticket: u64,
        channel: Option<NoticeChannel>,
        opt_out: bool,
    ) -> vuoro_store::Result<usize> {
        let removed: Vec<Contact> = {
            let mut m = self.contacts.lock().expect("lock");
            let key = (site.to_string(), ticket);
            let list = m.entry(key.clone()).or_default();
            let (gone, kept): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|c| channel.is_none_or(|ch| c.channel == ch));
            *list = kept;
            if list.is_empty() {
                m.remove(&key);
            }
            gone
        };
        if opt_out {
            for c in &removed {
                self.db.opt_out(&c.address_key, Utc::now())?;
            }
        }
        self.db.delete_contacts(site, ticket, channel)?;
        // Stopped means stopped: what was decided for these contacts and not yet sent is not sent.
        self.db.drop_pending_notices(
            site,
            ticket,
            channel,
            "the customer stopped the notices",
            Utc::now(),
        )?;
        Ok(removed.len())
    }

    /// Forgets a ticket's contact of `channel` if it is still `address` (the browser may have subscribed
    /// anew since): its provider said the address is gone.
    fn forget_gone(&self, site: &str, ticket: u64, channel: NoticeChannel, address: &str) {
        let still = self
            .contacts_of(site, ticket)
            .iter()
            .any(|c| c.channel == channel && c.address == address);
        if still && let Err(e) = self.remove_contacts(site, ticket, Some(channel), false) {
            tracing::warn!(error = %e, "notices: cannot forget a contact that is gone");
        }
    }

    /// Whether `address_key`'s owner asked for no more notices.
    pub fn opted_out(&self, address_key: &str) -> vuoro_store::Result<bool> {
        self.db.opted_out(address_key)
    }

    /// Looks at every site's contacted tickets for "your turn is near" (estimates shrink with time too,
    /// not only with events): the daemon's tick calls this.
    pub fn sweep(&self) {
        let sites: Vec<String> = {
            let m = self.contacts.lock().expect("lock");
            let mut s: Vec<String> = m.keys().map(|(site, _)| site.clone()).collect();
            s.sort();
            s.dedup();
            s
        };
        for site in sites {
            if let Err(e) = self.decide(&[], &[], None, &[site.as_str()]) {
                tracing::warn!(error = %e, "notices: deciding failed");
            }
        }
    }

    /// "Your turn is near" notices due for the site's contacted waiting tickets (or one of them). Each
    /// service's queue is walked in call order and stops at the first contacted ticket that is not near:
    /// those behind it are further still. So an event costs a few forecasts, however many wait with a
    /// contact.
    fn near_notices(&self, site: &str, only: Option<u64>, now: DateTime<Utc>) -> Vec<NewNotice> {
        let targets: HashMap<u64, Vec<Contact>> = {
            let m = self.contacts.lock().expect("lock");
            m.iter()
                .filter(|((s, t), _)| s == site && only.is_none_or(|o| o == *t))
                .map(|((_, t), c)| (*t, c.clone()))
                .collect()
        };
        if targets.is_empty() {
            return Vec::new();
        }
        let hall = self.shared.hall();
        let Some(site_cfg) = hall.site(site) else {
            return Vec::new();
        };
        let decided = self.near_decided.lock().expect("lock");
        let core = self.shared.core.lock().expect("lock");
        let Some(st) = core.engine.site_state(site) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (service, queue) in &st.waiting {
            let svc = site_cfg.service(service);
            let people = svc
                .and_then(|s| s.near_people)
                .or(site_cfg.near_people)
                .unwrap_or(self.cfg.near_people);
            let minutes = svc
                .and_then(|s| s.near_minutes)
                .or(site_cfg.near_minutes)
                .unwrap_or(self.cfg.near_minutes);
            for &(_, _, id) in queue {
                let Some(contacts) = targets.get(&id) else {
                    continue;
                };
                let Some(t) = st.tickets.get(&id) else {
                    continue;
                };
                if decided.contains(&(site.to_string(), id, t.service.to_string())) {
                    continue;
                }
                // Without an open counter there is no turn coming, however short the line.
                let near = core
                    .engine
                    .forecast_ticket(t, now)
                    .and_then(|f| f.eta_minutes().map(|m| (f.ahead, m)))
                    .is_some_and(|(ahead, mins)| ahead <= people || mins <= minutes);
                if !near {
                    break;
                }
                let text = text::render(Kind::Near, &t.lang, &t.number, "");
                for c in contacts {
                    out.push(self.new_notice(
                        format!("{site}:{id}:near:{}:{}", t.service, c.channel.as_str()),
                        Kind::Near,
                        c,
                        &t.lang,
                        &t.number,
                        text.clone(),
                        now,
                    ));
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn new_notice(
        &self,
        key: String,
        kind: Kind,
        c: &Contact,
        lang: &str,
        number: &str,
        text: String,
        at: DateTime<Utc>,
    ) -> NewNotice {
        let text = match (c.channel, &self.cfg.sms) {
            (NoticeChannel::Sms, Some(sms)) => text::fit_sms(&text, sms.max_parts),
            _ => text,
        };
        NewNotice {
            key,
            site: c.site.clone(),
            ticket: c.ticket,
            kind: kind.as_str().into(),
            number: number.into(),
            channel: c.channel,
            address: c.address.clone(),
            address_key: c.address_key.clone(),
            lang: lang.into(),
            text,
            at,
            dropped: None,
        }
    }

    /// Stores `decided` (and the "near" notices of `near`'s site, or one ticket of it), with the limits
    /// applied, forgets the contacts of `ended`, and records `reached` for the decider: one transaction.
    /// Wakes the senders of what was stored.
    fn decide(
        &self,
        decided: &[NewNotice],
        ended: &[(String, u64)],
        reached: Option<u64>,
        near_sites: &[&str],
    ) -> vuoro_store::Result<()> {
        self.decide_with(decided, ended, reached, near_sites, None)
    }

    /// `decide`, looking at "near" only for ticket `only` when given.
    fn decide_with(
        &self,
        decided: &[NewNotice],
        ended: &[(String, u64)],
        reached: Option<u64>,
        near_sites: &[&str],
        only: Option<u64>,
    ) -> vuoro_store::Result<()> {
        let _one = self.deciding.lock().expect("lock");
        let now = Utc::now();
        let mut all: Vec<NewNotice> = decided.to_vec();
        for site in near_sites {
            all.extend(self.near_notices(site, only, now));
        }
        if all.is_empty() && ended.is_empty() && reached.is_none() {
            return Ok(());
        }
        let (day, month) = day_and_month(now);
        let month_so_far = {
            let mut m = self.month.lock().expect("lock");
            match *m {
                Some((start, n)) if start == month => n,
                _ => {
                    let n = self.db.notices_since(month)?;
                    *m = Some((month, n));
                    n
                }
            }
        };
        let mut extra_ticket: HashMap<(String, u64), u32> = HashMap::new();
        let mut extra_address: HashMap<String, u32> = HashMap::new();
        let mut extra_month = 0;
        for n in &mut all {
            let counts = self
                .db
                .notice_counts(&n.site, n.ticket, &n.address_key, day)?;
            let t = counts.ticket
                + extra_ticket
                    .get(&(n.site.clone(), n.ticket))
                    .copied()
                    .unwrap_or(0);
            let a = counts.address_today + extra_address.get(&n.address_key).copied().unwrap_or(0);
            let m = month_so_far + extra_month;
            n.dropped = if self.db.opted_out(&n.address_key)? {
                Some("the address asked for no more notices".into())
            } else if t >= self.cfg.max_per_ticket {
                Some(format!(
                    "over the limit of {} notices per ticket",
                    self.cfg.max_per_ticket
                ))
            } else if a >= self.cfg.max_per_address_per_day {
                Some(format!(
                    "over the limit of {} notices per number or address per day",
                    self.cfg.max_per_address_per_day
                ))
            } else if self.cfg.monthly_cap.is_some_and(|cap| m >= cap) {
                Some("over the monthly cap".into())
            } else {
                None
            };
            if n.dropped.is_none() {
                *extra_ticket.entry((n.site.clone(), n.ticket)).or_default() += 1;
                *extra_address.entry(n.address_key.clone()).or_default() += 1;
                extra_month += 1;
            }
        }
        let stored = self
            .db
            .decide_notices(&all, ended, reached.map(|s| (CONSUMER, s)))?;
        {
            let mut d = self.near_decided.lock().expect("lock");
            for n in all.iter().filter(|n| n.kind == Kind::Near.as_str()) {
                if let Some(service) = n.key.split(':').nth(3) {
                    d.insert((n.site.clone(), n.ticket, service.to_string()));
                }
            }
            for e in ended {
                d.retain(|(s, t, _)| !(s == &e.0 && *t == e.1));
            }
        }
        let new_in_month = stored.len() as u32;
        if let Some((start, n)) = self.month.lock().expect("lock").as_mut()
            && *start == month
        {
            *n += new_in_month;
        }
        if !ended.is_empty() {
            let mut m = self.contacts.lock().expect("lock");
            for e in ended {
                m.remove(e);
            }
        }
        for n in &stored {
            tracing::info!(notice = n.id, site = %n.site, kind = %n.kind, channel = n.channel.as_str(), "notice decided");
            if let Some((_, w)) = self.wakes.iter().find(|(c, _)| *c == n.channel) {
                w.wake();
            }
        }
        Ok(())
    }

    /// The notices' figures for /metrics: this month's notices by channel and state, the cap, and how
    /// late the oldest due notice of each channel is.
    pub fn metrics_text(&self, now: DateTime<Utc>) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let (_, month) = day_and_month(now);
        out.push_str("# HELP vuoro_notices_month Notices decided this calendar month (UTC), by channel and state.\n# TYPE vuoro_notices_month gauge\n");
        let totals = self.db.notice_totals(month).unwrap_or_default();
        for (ch, _) in &self.wakes {
            for state in [
                vuoro_store::NoticeState::Pending,
                vuoro_store::NoticeState::Sent,
                vuoro_store::NoticeState::Failed,
                vuoro_store::NoticeState::Dropped,
            ] {
                let n = totals
                    .iter()
                    .find(|(c, s, _)| c == ch && *s == state)
                    .map_or(0, |t| t.2);
                let _ = writeln!(
                    out,
                    "vuoro_notices_month{{channel=\"{}\",state=\"{}\"}} {n}",
                    ch.as_str(),
                    state.as_str()
                );
            }
        }
        if let Some(cap) = self.cfg.monthly_cap {
            let _ = writeln!(
                out,
                "# HELP vuoro_notices_monthly_cap Notices allowed in a calendar month.\n# TYPE vuoro_notices_monthly_cap gauge\nvuoro_notices_monthly_cap {cap}"
            );
        }
        out.push_str("# HELP vuoro_notices_lag_seconds How long the oldest due notice of each channel has waited to be sent (0: none due).\n# TYPE vuoro_notices_lag_seconds gauge\n");
        for (ch, _) in &self.wakes {
            let lag = self.db.next_notice_at(*ch).ok().flatten().map_or(0.0, |t| {
                ((now - t).num_milliseconds().max(0) as f64) / 1000.0
            });
            let _ = writeln!(
                out,
                "vuoro_notices_lag_seconds{{channel=\"{}\"}} {lag}",
                ch.as_str()
            );
        }
        out
    }

    /// Why notice `n` is not worth sending any more, if it is not.
    fn too_late(&self, n: &Notice, now: DateTime<Utc>) -> Option<&'static str> {
        let core = self.shared.core.lock().expect("lock");
        let state = core.engine.ticket(&n.site, n.ticket).map(|t| t.state);
        match n.kind.as_str() {
            "near" if state != Some(TicketState::Waiting) => {
                Some("the ticket was called or ended before the notice went out")
            }
            "called" if state != Some(TicketState::Called) => {
                Some("the call was over before the notice went out")
            }
            "closed" if now - n.created_at > CLOSED_TOO_LATE => Some("too late to matter"),
            _ => None,
        }
    }

    /// Records the outcomes gathered (one transaction) and empties the list.
    fn record(&self, outcomes: &mut Vec<(i64, NoticeOutcome)>) {
        if outcomes.is_empty() {
            return;
        }
        if let Err(e) = self.db.finish_notices(outcomes, Utc::now()) {
            tracing::warn!(error = %e, notices = outcomes.len(), "notices: cannot record outcomes");
        }
        outcomes.clear();
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let first = self.cfg.retry_first_seconds.max(0.01);
        Duration::from_secs_f64((first * 2f64.powi(attempts.min(16) as i32)).min(300.0))
    }

    /// A channel's sender: due notices from the outbox, one at a time, at most `per_second`.
    fn run_sender(
        self: Arc<Self>,
        channel: NoticeChannel,
        mut provider: Box<dyn Provider>,
        per_second: u32,
    ) {
        let wake = self
            .wakes
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, w)| w.clone())
            .expect("a wake per sender");
        let gap = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
        // The addresses their provider said are gone (since this start; kept in memory only).
        let mut gone: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut last = Instant::now() - gap;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Utc::now();
            let due = match self.db.due_notices(channel, now, 32) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, channel = channel.as_str(), "notices: cannot read the outbox");
                    wake.wait(Duration::from_secs(1));
                    continue;
                }
            };
            if due.is_empty() {
                let next = self.db.next_notice_at(channel).ok().flatten();
                let wait = next
                    .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
                    .unwrap_or(Duration::from_secs(1))
                    .min(Duration::from_secs(1));
                wake.wait(wait);
                continue;
            }
            // Outcomes are recorded together: after the batch, or every RECORD_OUTCOMES.
            let mut outcomes: Vec<(i64, NoticeOutcome)> = Vec::new();
            let mut first_unrecorded: Option<Instant> = None;
            for n in due {
                if self.stop.load(Ordering::SeqCst) {
                    self.record(&mut outcomes);
                    return;
                }
                let mut forget: Option<String> = None;
                let outcome = if let Some(reason) = self.too_late(&n, Utc::now()) {
                    NoticeOutcome::Dropped {
                        reason: reason.into(),
                    }
                } else if n.address.as_ref().is_some_and(|a| gone.contains(a)) {
                    NoticeOutcome::Dropped {
                        reason: "the address is gone (the browser ended its subscription)".into(),
                    }
                } else {
                    let since = last.elapsed();
                    if since < gap {
                        std::thread::sleep(gap - since);
                    }
                    let key = self.idempotency_key(&n.key);
                    let sent = provider.send(&n, &key);
                    last = Instant::now();
                    match sent {
                        Ok(()) => NoticeOutcome::Sent,
                        Err(SendError::Refused(reason)) => NoticeOutcome::Failed { reason },
                        Err(SendError::Gone(reason)) => {
                            // Forgotten once this notice's failure is recorded (forgetting a contact
                            // drops its pending notices).
                            forget = n.address.clone();
                            NoticeOutcome::Failed { reason }
                        }
                        Err(SendError::Retry { reason, .. })
                            if n.attempts + 1 >= self.cfg.max_attempts =>
                        {
                            NoticeOutcome::Failed {
                                reason: format!("{reason} ({} attempts)", n.attempts + 1),
                            }
                        }
                        Err(SendError::Retry { reason, after }) => {
                            let wait = self.backoff(n.attempts).max(after.unwrap_or_default());
                            NoticeOutcome::Retry {
                                at: Utc::now()
                                    + chrono::Duration::from_std(wait)
                                        .unwrap_or(chrono::Duration::seconds(300)),
                                reason,
                            }
                        }
                    }
                };
                let what = match &outcome {
                    NoticeOutcome::Sent => "sent",
                    NoticeOutcome::Retry { .. } => "retry",
                    NoticeOutcome::Failed { .. } => "failed",
                    NoticeOutcome::Dropped { .. } => "dropped",
                };
                match &outcome {
                    NoticeOutcome::Retry { reason, .. }
                    | NoticeOutcome::Failed { reason }
                    | NoticeOutcome::Dropped { reason } => {
                        tracing::info!(notice = n.id, kind = %n.kind, channel = channel.as_str(), outcome = what, reason = %reason, "notice")
                    }
                    NoticeOutcome::Sent => {
                        tracing::info!(notice = n.id, kind = %n.kind, channel = channel.as_str(), outcome = what, "notice")
                    }
                }
                outcomes.push((n.id, outcome));
                if let Some(a) = forget {
                    // Recorded first: forgetting a contact drops its pending notices.
                    self.record(&mut outcomes);
                    self.forget_gone(&n.site, n.ticket, channel, &a);
                    gone.insert(a);
                }
                if first_unrecorded.get_or_insert_with(Instant::now).elapsed() >= RECORD_OUTCOMES {
                    self.record(&mut outcomes);
                    first_unrecorded = None;
                }
            }
            self.record(&mut outcomes);
        }
    }

    /// The notices an event calls for, and whether it ends its ticket's contacts.
    fn on_event(&self, ev: &Event, decided: &mut Vec<NewNotice>, ended: &mut Vec<(String, u64)>) {
        let site = ev.site.as_str();
        match &ev.kind {
            EventKind::TicketCalled { ticket, counter } => {
                let contacts = self.contacts_of(site, *ticket);
                if contacts.is_empty() {
                    return;
                }
                let (lang, number) = {
                    let core = self.shared.core.lock().expect("lock");
                    match core.engine.ticket(site, *ticket) {
                        Some(t) => (t.lang.clone(), t.number.clone()),
                        None => return,
                    }
                };
                let hall = self.shared.hall();
                let fallback = hall
                    .site(site)
                    .and_then(|s| s.languages.first().cloned())
                    .unwrap_or_else(|| "fi".into());
                let name = hall
                    .site(site)
                    .and_then(|s| s.counter(counter))
                    .map(|c| text_in(&c.name, &lang, &fallback).to_string())
                    .unwrap_or_else(|| counter.to_string());
                let text = text::render(Kind::Called, &lang, &number, &name);
                for c in contacts {
                    decided.push(self.new_notice(
                        format!("{site}:{ticket}:called:{}:{}", ev.seq, c.channel.as_str()),
                        Kind::Called,
                        &c,
                        &lang,
                        &number,
                        text.clone(),
                        ev.at,
                    ));
                }
            }
            EventKind::TicketCancelled { ticket, reason } => {
                if reason == "day_ended" {
                    let contacts = self.contacts_of(site, *ticket);
                    let core = self.shared.core.lock().expect("lock");
                    if let Some(t) = core.engine.ticket(site, *ticket) {
                        let text = text::render(Kind::Closed, &t.lang, &t.number, "");
                        for c in contacts {
                            decided.push(self.new_notice(
                                format!("{site}:{ticket}:closed:{}", c.channel.as_str()),
                                Kind::Closed,
                                &c,
                                &t.lang,
                                &t.number,
                                text.clone(),
                                ev.at,
                            ));
                        }
                    }
                }
                ended.push((site.to_string(), *ticket));
            }
            EventKind::TicketFinished {
                ticket,
                next_service: None,
                ..
            }
            | EventKind::TicketNoShow { ticket, .. } => ended.push((site.to_string(), *ticket)),
            // A new day: no contact of the site outlives the day it was given on (a backstop: each ends
            // with its ticket).
            EventKind::DayStarted { .. } => {
                let m = self.contacts.lock().expect("lock");
                ended.extend(m.keys().filter(|(s, _)| s == site).cloned());
            }
            _ => {}
        }
    }
}

/// Whether an event may bring a waiting ticket's turn nearer.
fn moves_queues(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::TicketCalled { .. }
            | EventKind::TicketFinished { .. }
            | EventKind::TicketNoShow { .. }
            | EventKind::TicketCancelled { .. }
            | EventKind::TicketTransferred { .. }
            | EventKind::TicketReturned { .. }
            | EventKind::TicketParked { .. }
            | EventKind::TicketServed { .. }
            | EventKind::CounterOpened { .. }
            | EventKind::CounterClosed { .. }
    )
}

/// The post-commit consumer that decides notices: it gathers what a commit's events call for and writes it
/// once per commit (one transaction for a whole group commit).
struct Decider {
    notices: Arc<Notices>,
    decided: Vec<NewNotice>,
    ended: Vec<(String, u64)>,
    /// Sites whose queues moved, for "near".
    near: Vec<String>,
    /// The newest seq handled and not yet recorded.
    unrecorded: Option<u64>,
    recorded_at: Instant,
}

impl Consumer for Decider {
    fn handle(&mut self, d: Delivery<'_>) {
        let n = &self.notices;
        let ev = d.event;
        n.on_event(ev, &mut self.decided, &mut self.ended);
        if moves_queues(&ev.kind)
            && !self.near.iter().any(|s| s == ev.site.as_str())
            && n.contacts
                .lock()
                .expect("lock")
                .keys()
                .any(|(s, _)| s == ev.site.as_str())
        {
            self.near.push(ev.site.to_string());
        }
        self.unrecorded = Some(ev.seq);
    }

    fn settled(&mut self) {
        let Some(seq) = self.unrecorded else {
            return;
        };
        let busy = !self.decided.is_empty() || !self.ended.is_empty() || !self.near.is_empty();
        if !busy && self.recorded_at.elapsed() < RECORD_EVERY {
            return;
        }
        let n = self.notices.clone();
        let sites: Vec<&str> = self.near.iter().map(String::as_str).collect();
        match n.decide(&self.decided, &self.ended, Some(seq), &sites) {
            Ok(()) => {
                self.unrecorded = None;
                self.recorded_at = Instant::now();
            }
            // Not recorded: the events since the last recorded seq are decided again at the next start
            // (the same keys, stored once).
            Err(e) => tracing::warn!(error = %e, seq, "notices: deciding failed"),
        }
        self.decided.clear();
        self.ended.clear();
        self.near.clear();
    }
}
