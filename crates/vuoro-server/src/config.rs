//! The config file: one TOML file holding the hall (vuoro-engine's `config::Hall`, for the engine) and the
//! deployment (`crate::deployment::Deployment`, for the daemon). [`load`] reads both halves and checks
//! them against each other and against what the daemon's parts need (auth's published tokens, the
//! brand's logo file).

use std::sync::Arc;

use vuoro_engine::config::{ConfigError, Hall};

use crate::deployment::Deployment;

/// What the config file holds: the hall for the engine, the deployment for the daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub hall: Arc<Hall>,
    pub deployment: Arc<Deployment>,
    /// The text both were read from.
    pub text: Arc<str>,
}

/// Reads and checks a config file's text. Every mistake found is returned, each with its line where known.
pub fn load(src: &str) -> Result<Config, Vec<ConfigError>> {
    let hall = Hall::parse(src);
    let deployment = Deployment::parse(src);
    match (hall, deployment) {
        (Ok(hall), Ok(deployment)) => {
            let mut errors = deployment.check(&hall, src);
            errors.extend(
                crate::auth::check(&deployment)
                    .into_iter()
                    .chain(crate::web::check(&deployment))
                    .map(|message| ConfigError {
                        line: None,
                        message,
                    }),
            );
            if errors.is_empty() {
                Ok(Config {
                    hall: Arc::new(hall),
                    deployment: Arc::new(deployment),
                    text: Arc::from(src),
                })
            } else {
                Err(errors)
            }
        }
        (Err(mut a), Err(b)) => {
            // A table neither reads is reported by both, at the same line: once is enough.
            for e in b {
                if !a.iter().any(|x| x.line == e.line) {
                    a.push(e);
                }
            }
            Err(a)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{DeviceKind, DevicePrinter};
    use vuoro_engine::config::find_line;

    const DEMO: &str = include_str!("../../../config/demo.toml");

    fn line_of(src: &str, needle: &str) -> usize {
        find_line(src, needle).expect("needle is in the config")
    }

    #[test]
    fn one_file_gives_the_hall_to_the_engine_and_the_rest_to_the_daemon() {
        let cfg = load(DEMO).expect("the demo config loads");
        assert!(!cfg.hall.sites.is_empty());
        assert!(cfg.deployment.server.demo);
        assert!(cfg.deployment.users.iter().any(|u| u.username == "agent1"));
        let kiosk = cfg.deployment.device("kiosk-2").unwrap();
        assert_eq!(kiosk.kind, DeviceKind::Kiosk);
        let Some(DevicePrinter::Direct(p)) = &kiosk.printer else {
            panic!(
                "kiosk-2 has a printer the daemon drives: {:?}",
                kiosk.printer
            );
        };
        assert_eq!(p.esc_t, 5);
        assert_eq!(p.width, vuoro_print::PaperWidth::Mm58);
        assert!(cfg.deployment.device("kiosk-3").unwrap().printer.is_none());
    }

    #[test]
    fn backup_takes_a_folder_and_defaults_to_a_day_and_a_week_of_copies() {
        assert!(load(DEMO).unwrap().deployment.backup.is_none());
        let cfg = load(&format!("{DEMO}\n[backup]\ndir = \"/srv/backup/vuoro\"\n")).unwrap();
        let b = cfg.deployment.backup.clone().unwrap();
        assert_eq!(
            (b.dir.to_str(), b.every_hours, b.keep),
            (Some("/srv/backup/vuoro"), 24, 7)
        );
        let src = format!("{DEMO}\n[backup]\ndir = \"b\"\nevery_hours = 0\nkeep = 0\n");
        let errs = load(&src).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("every_hours"), "{errs:?}");
        assert!(errs[1].message.contains("keep"), "{errs:?}");
        assert_eq!(errs[0].line, Some(line_of(&src, "[backup]")));
        let errs = load(&format!("{DEMO}\n[backup]\ndir = \"b\"\nkept = 3\n")).unwrap_err();
        assert!(errs[0].message.contains("kept"), "{errs:?}");
    }

    #[test]
    fn a_display_is_frozen_after_20_s_without_a_rendering_report_by_default() {
        let server = load(DEMO).unwrap().deployment.server.clone();
        assert_eq!(
            (
                server.display_frozen_seconds,
                server.rendering_report_seconds()
            ),
            (20, 5)
        );
        let with = |s: &str| DEMO.replacen("demo = true\n", &format!("demo = true\n{s}\n"), 1);
        let server = load(&with("display_frozen_seconds = 3"))
            .unwrap()
            .deployment
            .server
            .clone();
        assert_eq!(
            server.rendering_report_seconds(),
            1,
            "at least every second"
        );
        let src = with("display_frozen_seconds = 1");
        let errs = load(&src).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("at least 2"), "{errs:?}");
        assert_eq!(errs[0].line, Some(line_of(&src, "display_frozen_seconds")));
    }

    #[test]
    fn deployment_mistakes_are_reported_with_their_lines() {
        let src = DEMO.replace(
            "dir = \"printed/kiosk-1\", code_page = \"cp858\"",
            "dir = \"printed/kiosk-1\", code_page = \"cp999\"",
        );
        let errs = load(&src).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("cp999"), "{errs:?}");
        assert_eq!(errs[0].line, Some(line_of(&src, "cp999")), "{errs:?}");

        let src = DEMO.replace("kind = \"display\"", "kind = \"screen\"");
        let errs = load(&src).unwrap_err();
        assert!(errs[0].message.contains("screen"), "{errs:?}");
        assert_eq!(errs[0].line, Some(line_of(&src, "\"screen\"")), "{errs:?}");

        // Checked against the hall: a kiosk offering a service the site does not have, a user of a
        // unit that does not exist.
        let src = DEMO
            .replace("services = [\"child-clinic\",", "services = [\"dentist\",")
            .replace("units = [\"kela\"]", "units = [\"tax-office\"]");
        let errs = load(&src).unwrap_err();
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(
            messages.contains(&"device 'kiosk-2' names unknown service 'dentist'"),
            "{errs:?}"
        );
        assert!(
            messages.contains(&"user 'agent1' names unknown unit 'tax-office'"),
            "{errs:?}"
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn a_table_neither_reads_is_refused_once() {
        let src = format!("{DEMO}\n[speakers]\nvolume = 3\n");
        let errs = load(&src).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("speakers"), "{errs:?}");
        assert_eq!(errs[0].line, Some(line_of(&src, "[speakers]")), "{errs:?}");
    }

    /// Fuzzing the config's reader (the file, `PUT /api/v1/admin/config`): the demo config with lines
    /// dropped, doubled or changed. Reading never panics; every mistake is a sentence, and a line it names
    /// is in the text.
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        fn mutated() -> impl Strategy<Value = String> {
            let lines = DEMO.lines().count();
            proptest::collection::vec((0..lines, 0u8..4, any::<u8>(), any::<usize>()), 1..4)
                .prop_map(|edits| {
                    let mut lines: Vec<String> = DEMO.lines().map(str::to_string).collect();
                    for (at, op, byte, pos) in edits {
                        let at = at % lines.len();
                        match op {
                            0 => {
                                lines.remove(at);
                            }
                            1 => {
                                let l = lines[at].clone();
                                lines.insert(at, l);
                            }
                            2 => {
                                let l = &mut lines[at];
                                let mut b = l.as_bytes().to_vec();
                                if !b.is_empty() {
                                    let p = pos % b.len();
                                    b[p] = byte;
                                }
                                *l = String::from_utf8_lossy(&b).into_owned();
                            }
                            _ => {
                                let l = &mut lines[at];
                                let cut = pos % (l.len() + 1);
                                let cut = (0..=cut)
                                    .rev()
                                    .find(|c| l.is_char_boundary(*c))
                                    .unwrap_or(0);
                                l.truncate(cut);
                            }
                        }
                        if lines.is_empty() {
                            break;
                        }
                    }
                    lines.join("\n")
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

            #[test]
            fn a_damaged_config_is_refused_with_its_lines_never_a_panic(text in mutated()) {
                let lines = text.lines().count().max(1);
                if let Err(errors) = load(&text) {
                    prop_assert!(!errors.is_empty());
                    for e in errors {
                        prop_assert!(!e.message.trim().is_empty());
                        if let Some(l) = e.line {
                            prop_assert!(l >= 1 && l <= lines + 1, "line {} of {}: {}", l, lines, e.message);
                        }
                    }
                }
            }
        }
    }
}
