//! The SQLite schema: versioned migrations of every table (the event log, snapshots, sessions, the audit
//! trail, the reports' rollups, and the notices' contacts and outbox). `PRAGMA user_version` is the version a database is at.

/// Versioned migrations: index i brings the schema from version i to i + 1. Never edit one that shipped.
pub const MIGRATIONS: &[&str] = &[
    // 1: the event log, snapshots, sessions.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        ticket INTEGER,
        data TEXT NOT NULL
     );
     CREATE INDEX events_site_at ON events(site, at);
     CREATE TABLE snapshots (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        state TEXT NOT NULL
     );
     CREATE TABLE sessions (
        token_sha256 TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
     );",
    // 2: reports (vuoro-reports, docs/reports.md): hourly aggregates folded from the event log, how far
    // each site's log is folded, and the audit trail of staff requests that are not events.
    "CREATE TABLE report_cells (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, counter, staff)
     ) WITHOUT ROWID;
     CREATE TABLE report_folded (
        site TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        at TEXT NOT NULL
     );
     CREATE TABLE audit_requests (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT,
        site TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER NOT NULL,
        client TEXT,
        user_agent TEXT
     );
     CREATE INDEX audit_requests_at ON audit_requests(at);",
    // 3: reports kept as two rollups instead of one hourly table with every dimension (a year of that
    // is too many rows to read fast): per day with counter and staff, per hour with service and unit.
    // The days are folded again from the events still in the log.
    "DROP TABLE report_cells;
     DELETE FROM report_folded;
     CREATE TABLE report_days (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, counter, staff, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_hours (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, unit)
     ) WITHOUT ROWID;",
    // 4: more rollups, so that a report over a year reads a few thousand rows: per day with service and
    // unit only, per month with every dimension, per month and hour. Everything is folded again from
    // the events still in the log.
    "DELETE FROM report_days;
     DELETE FROM report_hours;
     DELETE FROM report_folded;
     CREATE TABLE report_days_short (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_months (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        service TEXT NOT NULL,
        counter TEXT NOT NULL,
        staff TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, service, counter, staff, unit)
     ) WITHOUT ROWID;
     CREATE TABLE report_month_hours (
        site TEXT NOT NULL,
        date TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        unit TEXT NOT NULL,
        arrivals INTEGER NOT NULL,
        called INTEGER NOT NULL,
        served INTEGER NOT NULL,
        no_shows INTEGER NOT NULL,
        cancelled INTEGER NOT NULL,
        day_ended INTEGER NOT NULL,
        transfers INTEGER NOT NULL,
        pass_ons INTEGER NOT NULL,
        wait_sum INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        service_sum INTEGER NOT NULL,
        open_secs INTEGER NOT NULL,
        busy_secs INTEGER NOT NULL,
        site_open_secs INTEGER NOT NULL,
        wait_dist BLOB NOT NULL,
        service_dist BLOB NOT NULL,
        PRIMARY KEY (site, date, hour, service, unit)
     ) WITHOUT ROWID;",
    // 5: notices (docs/notices.md): the tickets' contacts (kept while the ticket lives), the outbox of
    // decided notices, the addresses that asked for no more, how far each post-commit consumer got, and the
    // deployment's own secrets (the key of addresses' hashes, the VAPID key), so that a backup holds them.
    "CREATE TABLE contacts (
        site TEXT NOT NULL,
        ticket INTEGER NOT NULL,
        channel TEXT NOT NULL,
        address TEXT NOT NULL,
        address_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (site, ticket, channel)
     ) WITHOUT ROWID;
     CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        site TEXT NOT NULL,
        ticket INTEGER NOT NULL,
        kind TEXT NOT NULL,
        number TEXT NOT NULL,
        channel TEXT NOT NULL,
        address TEXT,
        address_key TEXT NOT NULL,
        lang TEXT NOT NULL,
        text TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        reason TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT
     );
     CREATE INDEX notices_due ON notices(channel, state, next_at);
     CREATE INDEX notices_ticket ON notices(site, ticket);
     CREATE INDEX notices_address ON notices(address_key, created_at);
     CREATE INDEX notices_created ON notices(created_at);
     CREATE TABLE notice_opt_outs (
        address_key TEXT PRIMARY KEY,
        at TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE consumers (
        name TEXT PRIMARY KEY,
        seq INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE secrets (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
     ) WITHOUT ROWID;",
    // 6: feedback after a visit (docs/reports.md): how many answered and the sum of their ratings, in
    // every rollup. Days folded before had no feedback to count.
    "ALTER TABLE report_days ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_days ADD COLUMN feedback_sum INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_days_short ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_days_short ADD COLUMN feedback_sum INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_hours ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_hours ADD COLUMN feedback_sum INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_months ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_months ADD COLUMN feedback_sum INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_month_hours ADD COLUMN feedback INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE report_month_hours ADD COLUMN feedback_sum INTEGER NOT NULL DEFAULT 0;",
    // 7: identity (docs/security.md): a session opened by single sign-on keeps the rights its issuer's claims
    // gave (`rights`, JSON; NULL for a user of the config file), and its last use (idle timeout). Devices
    // enrolled with a one-time code hold tokens kept here as hashes; a device revoked from the console has
    // every token refused, its config file's one included (`device_tokens.revoked_at`).
    "ALTER TABLE sessions ADD COLUMN rights TEXT;
     ALTER TABLE sessions ADD COLUMN last_used_at TEXT;
     CREATE TABLE device_tokens (
        token_sha256 TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT,
        last_seen_at TEXT,
        last_seen_from TEXT
     ) WITHOUT ROWID;
     CREATE INDEX device_tokens_device ON device_tokens(device);
     CREATE TABLE enrol_codes (
        code_sha256 TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at TEXT NOT NULL
     ) WITHOUT ROWID;",
    // 8: the config's versions (docs/operations.md, "Changing the config while it runs"): every text the
    // daemon has run with, the config file's as it was read at a start and each change made through the
    // admin console or API, with who made it; the newest is the one in force.
    "CREATE TABLE config_versions (
        version INTEGER PRIMARY KEY,
        text TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
     );",
];
