//! `vuoro report` (read-only, straight from the database file) and `vuoro purge` (fold, blank expired
//! ticket tokens, delete ticket-level detail older than the retention).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use vuoro_engine::config::Hall;

use crate::report::{Group, Query};
use crate::store;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The daemon's data folder (holds vuoro.sqlite).
    #[arg(long, env = "VUORO_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Config file (TOML). Default: the embedded demo hall.
    #[arg(long, env = "VUORO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Site id; with --group site, leave it out to compare every site.
    #[arg(long)]
    pub site: Option<String>,
    /// First local date, YYYY-MM-DD.
    #[arg(long)]
    pub from: NaiveDate,
    /// Last local date (inclusive), YYYY-MM-DD.
    #[arg(long)]
    pub to: NaiveDate,
    /// site, service, unit, counter, staff, hour, day, week or month.
    #[arg(long, default_value = "service")]
    pub group: String,
    /// csv or json.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Language of names (default: the site's first language).
    #[arg(long)]
    pub lang: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    #[arg(long, env = "VUORO_DATA", default_value = "data")]
    pub data: PathBuf,
    #[arg(long, env = "VUORO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Days of ticket-level detail to keep (default: server.retention_days of the config).
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Act as if it were this time (RFC 3339), for tests and for checking what a purge would delete later.
    #[arg(long)]
    pub now: Option<DateTime<Utc>>,
}

/// Checks a report request against the config; shared by the command and the HTTP API.
pub fn query(
    cfg: &Hall,
    site: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
    group: &str,
    lang: Option<String>,
) -> Result<Query, String> {
    let group = Group::parse(group).ok_or_else(|| {
        format!(
            "group '{group}' is not site, service, unit, counter, staff, hour, day, week or month"
        )
    })?;
    if from > to {
        return Err(format!("from ({from}) is after to ({to})"));
    }
    if (to - from).num_days() > 3 * 366 {
        return Err("a report covers at most three years".into());
    }
    let sites = match site {
        Some(s) => {
            if cfg.site(s).is_none() {
                return Err(format!("no site '{s}'"));
            }
            vec![s.to_string()]
        }
        None if group == Group::Site => cfg.sites.iter().map(|s| s.id.to_string()).collect(),
        None => return Err("name the site (only group=site compares every site)".into()),
    };
    if let Some(l) = &lang
        && !sites
            .iter()
            .filter_map(|s| cfg.site(s))
            .all(|s| s.languages.contains(l))
    {
        return Err(format!("language '{l}' is not offered at this site"));
    }
    Ok(Query {
        sites,
        from,
        to,
        group,
        units: None,
        lang,
    })
}

pub fn report(args: ReportArgs, cfg: &Hall) -> anyhow::Result<()> {
    let q = query(
        cfg,
        args.site.as_deref(),
        args.from,
        args.to,
        &args.group,
        args.lang.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    if !["csv", "json"].contains(&args.format.as_str()) {
        bail!("format '{}' is not csv or json", args.format);
    }
    let db = args.data.join("vuoro.sqlite");
    if !db.exists() {
        bail!("no database at {}", db.display());
    }
    let store = vuoro_store::open_read_only(&db)
        .with_context(|| format!("cannot open {}", db.display()))?;
    let table = store::report(&*store, cfg, &q, Utc::now())?;
    let mut out = std::io::stdout().lock();
    if args.format == "csv" {
        out.write_all(table.to_csv().as_bytes())?;
    } else {
        writeln!(out, "{}", serde_json::to_string_pretty(&table.to_json())?)?;
    }
    Ok(())
}

/// `retention_days`: the deployment's `server.retention_days`, unless the command line says otherwise.
pub fn purge(args: PurgeArgs, cfg: &Hall, retention_days: u32) -> anyhow::Result<()> {
    let db = args.data.join("vuoro.sqlite");
    if !db.exists() {
        bail!("no database at {}", db.display());
    }
    // Brings the schema up to date first (as the daemon does on start).
    let store = vuoro_store::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
    let days = args.retention_days.unwrap_or(retention_days);
    let now = args.now.unwrap_or_else(Utc::now);
    let s = store::purge(&*store, cfg, now, days)?;
    println!(
        "folded {} day(s) ({} events, {} cells); blanked {} ticket token(s)",
        s.fold.days, s.fold.events, s.fold.cells, s.fold.tokens_blanked
    );
    if s.no_snapshot {
        println!("no snapshot yet: no events deleted (start-up would need them)");
    }
    for (site, cut) in &s.cutoffs {
        println!("{site}: ticket-level detail before {cut} ({days} days) is purged");
    }
    println!(
        "deleted {} event(s) and {} audited request(s)",
        s.events_deleted, s.requests_deleted
    );
    Ok(())
}
