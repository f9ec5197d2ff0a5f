//! `Hall::warnings`: what `vuoro check-config` warns about. The demo hall has a name in every one of its
//! languages for everything a customer sees, and a config that lacks one is told which, where.

use vuoro_engine::Hall;

const DEMO: &str = include_str!("../../../config/demo.toml");

#[test]
fn the_demo_hall_names_everything_in_each_of_its_languages() {
    let cfg = Hall::parse(DEMO).expect("the demo config parses");
    let warnings: Vec<String> = cfg.warnings(DEMO).iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn a_missing_translation_and_two_services_named_alike_are_warned_about() {
    // Arabic goes missing from the Kela unit's name; the X-ray service gets the laboratory's Finnish name.
    let src = strip_lang(DEMO, "unit", "kela", "ar").replacen(
        r#"name = { fi = "HUS Kuvantaminen: röntgen""#,
        r#"name = { fi = "HUS Laboratorio: näytteenotto""#,
        1,
    );
    let cfg = Hall::parse(&src).expect("still a valid config: a warning is not an error");
    let warnings: Vec<String> = cfg.warnings(&src).iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("line ")
                && w.contains("unit 'kela': name has no translation in ar")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("services 'lab-sample' and 'xray'") && w.contains("in 'fi'")),
        "{warnings:?}"
    );
}

/// Removes `lang` from the name of the `kind` (unit, service, ...) with `id`, wherever the demo writes it.
fn strip_lang(src: &str, kind: &str, id: &str, lang: &str) -> String {
    let head = format!("[[site.{kind}]]\nid = \"{id}\"\n");
    let at = src.find(&head).expect("entry present") + head.len();
    let end = at + src[at..].find('\n').unwrap();
    let line = &src[at..end];
    let cut = line
        .split(", ")
        .filter(|part| {
            !part
                .trim_start_matches("name = { ")
                .starts_with(&format!("{lang} ="))
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("{}{}{}", &src[..at], cut, &src[end..])
}
