//! The monitoring files at the repository root (`monitoring/vuoro.rules.yml`, the Prometheus alerting
//! rules, and `monitoring/grafana-dashboard.json`) read only metrics the daemon exposes: the real daemon
//! is scraped on loopback and every metric name in the rules' `expr` and the dashboard's queries must be
//! among its samples. The dashboard's structure is checked too. (`promtool check rules` and `promtool
//! test rules` check the rules themselves in tests/run-all.sh.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;

/// Names the rules use that the daemon does not expose: `up` is Prometheus's own per scrape target.
const FROM_PROMETHEUS: [&str; 1] = ["up"];
/// Names exposed by parts of the daemon this test does not start: the scheduled backup writes
/// `vuoro_backup_last_success_timestamp_seconds`, notices (`[notify]`) the `vuoro_notices_*` figures
/// (checked in the scrape of notices.rs). Tolerated when absent from the scrape, but each must be used
/// (so that this list never hides a misspelt name).
const FROM_ELSEWHERE: [&str; 4] = [
    "vuoro_backup_last_success_timestamp_seconds",
    "vuoro_notices_month",
    "vuoro_notices_monthly_cap",
    "vuoro_notices_lag_seconds",
];

fn monitoring_file(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../monitoring")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The metric names a PromQL expression reads: identifiers outside strings, label matchers and range
/// brackets that are neither a function (followed by `(`) nor a keyword or aggregation; the label lists after `by`,
/// `without`, `on`, `ignoring`, `group_left` and `group_right` are skipped.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregations too: they come before `by (...)` as well as before `(`.
    const KEYWORDS: [&str; 19] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    // The index just past the string literal that starts at `i`.
    let skip_string = |mut i: usize| {
        let q = b[i];
        i += 1;
        while i < b.len() && b[i] != q {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    };
    // The index just past the bracket that closes the one at `i`, strings skipped.
    let skip_group = |mut i: usize, close: u8| {
        i += 1;
        while i < b.len() && b[i] != close {
            i = if matches!(b[i], b'"' | b'\'' | b'`') {
                skip_string(i)
            } else {
                i + 1
            };
        }
        i + 1
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'"' | b'\'' | b'`') {
            i = skip_string(i);
        } else if c == b'{' {
            i = skip_group(i, b'}');
        } else if c == b'[' {
            i = skip_group(i, b']');
        } else if c.is_ascii_digit() || c == b'$' {
            // A number, a duration or a dashboard variable.
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_')) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b':')) {
                i += 1;
            }
            let word = &expr[start..i];
            let mut next = i;
            while next < b.len() && b[next].is_ascii_whitespace() {
                next += 1;
            }
            let call = b.get(next) == Some(&b'(');
            if LABEL_LISTS.contains(&word) {
                if call {
                    i = skip_group(next, b')');
                }
            } else if !call && !KEYWORDS.contains(&word) {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The `expr` of every rule in a rules file. Plain, quoted and block (`|`, `>`) values; the count is
/// checked against the rules' `alert:`/`record:` lines, so an expression this misses fails the test.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        let Some(v) = t.strip_prefix("- ").unwrap_or(t).strip_prefix("expr:") else {
            continue;
        };
        let v = v.trim();
        if v.starts_with('|') || v.starts_with('>') {
            let indent = line.len() - t.len();
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            exprs.push(block.join("\n"));
        } else if let Some(q) = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            exprs.push(q.replace("''", "'"));
        } else if let Some(q) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            assert!(!q.contains('\\'), "escapes in a double-quoted expr: {line}");
            exprs.push(q.to_string());
        } else {
            exprs.push(v.to_string());
        }
    }
    let rules = lines
        .iter()
        .map(|l| l.trim_start())
        .filter(|l| l.starts_with("- alert:") || l.starts_with("- record:"))
        .count();
    assert_eq!(exprs.len(), rules, "one expr per rule");
    exprs
}

/// The dashboard's queries, after checking its structure: a title, and panels each with a type, a
/// title and at least one target with an `expr`; the templating's `label_values(metric, label)`.
fn dashboard_exprs(json: &str) -> Vec<String> {
    let d: Value = serde_json::from_str(json).expect("the dashboard is JSON");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "title");
    let panels = d["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "no panels");
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(p["type"].as_str().is_some(), "{title}: type");
        assert!(p["gridPos"]["w"].as_u64().is_some(), "{title}: gridPos");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "{title}: id twice"
        );
        let targets = p["targets"].as_array().expect("every panel has targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            let e = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: a target without expr"));
            exprs.push(e.to_string());
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.split(',').next())
                .expect("label_values(metric, label)");
            exprs.push(inner.to_string());
        }
    }
    exprs
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = promql_metric_names(
        r#"sum by (site) (rate(vuoro_a_total{x="y{z}"}[5m] offset 1h)) > on(site, instance) group_left vuoro_b
           and ignoring (consumer) vuoro_c:ratio - 24 * 3600 or vector(0) unless absent(up{job="vuoro"})
           + vuoro_d{site=~"$site"}[$__rate_interval]"#,
    );
    let want = ["up", "vuoro_a_total", "vuoro_b", "vuoro_c:ratio", "vuoro_d"];
    assert_eq!(names, want.iter().map(|s| s.to_string()).collect());
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vuoro_x > 1\n      - alert: B\n        expr: |\n          vuoro_y\n            > 2\n        for: 1m\n";
    assert_eq!(rule_exprs(yaml), ["vuoro_x > 1", "vuoro_y\n> 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_and_the_dashboard_read_only_metrics_the_daemon_exposes() {
    let dir = TempDir::new("monitoring");
    let app = spawn_app_in(DEMO, &dir.0).await;
    // A ticket at a kiosk with a printer, so that a printer has a status to expose.
    let mut k = kiosk(&app).await;
    take(&mut k, "kela-general").await;
    let mut h = app.http();
    let deadline = Instant::now() + T;
    let scrape = loop {
        let r = h.get("/metrics").await.unwrap();
        assert_eq!(r.status, 200);
        let m = String::from_utf8(r.body).unwrap();
        if m.contains("vuoro_printer_status{") || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    app.stop().await;
    // For `promtool check metrics` in tests/run-all.sh (the text format and the naming conventions).
    std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("metrics.txt"),
        &scrape,
    )
    .unwrap();
    let exposed: BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();

    let rules = rule_exprs(&monitoring_file("vuoro.rules.yml"));
    let dashboard = dashboard_exprs(&monitoring_file("grafana-dashboard.json"));
    let mut used = BTreeSet::new();
    for e in rules.iter().chain(&dashboard) {
        used.extend(promql_metric_names(e));
    }
    assert!(used.len() > 10, "too few names found: {used:?}");
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exposed.contains(n.as_str()))
        .filter(|n| !FROM_PROMETHEUS.contains(&n.as_str()) && !FROM_ELSEWHERE.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "used by monitoring/ but not exposed: {missing:?}\n{scrape}"
    );
    for n in FROM_PROMETHEUS.iter().chain(&FROM_ELSEWHERE) {
        assert!(used.contains(*n), "{n} is listed but not used");
    }
    // What every alert of the issue watches is among them.
    for n in [
        "vuoro_store_commit_failures_total",
        "vuoro_printer_status",
        "vuoro_display_online",
        "vuoro_display_frozen",
        "vuoro_queue_longest_wait_seconds",
        "vuoro_queue_target_wait_seconds",
        "vuoro_disk_free_bytes",
        "vuoro_tickets_issued_today",
    ] {
        assert!(used.contains(n) && exposed.contains(n), "{n}");
    }
    // Label values the rules match on are what the daemon writes.
    assert!(
        scrape.contains("vuoro_display_online{site=\"iso-omena\",display=\"hall\"} 0"),
        "{scrape}"
    );
    assert!(
        scrape.contains("vuoro_display_frozen{site=\"iso-omena\",display=\"hall\"} 0"),
        "{scrape}"
    );
    assert!(
        scrape.contains("vuoro_site_open{site=\"iso-omena\"} 1"),
        "{scrape}"
    );
    assert!(
        scrape.contains("vuoro_tickets_issued_today{site=\"iso-omena\"} 1"),
        "{scrape}"
    );
    assert!(
        scrape.contains(
            "vuoro_queue_target_wait_seconds{site=\"iso-omena\",service=\"kela-general\"} "
        ),
        "{scrape}"
    );
    assert!(
        scrape.contains("vuoro_store_commit_failures_total 0"),
        "{scrape}"
    );
}
