//! The man pages, vuoro(1) and one per subcommand (vuoro-serve(1), ...), rendered from the clap
//! definitions by `clap_mangen` and kept in crates/vuoro/debian/man/, which the Debian package installs.
//! This test fails when a committed page differs from what the definitions render (a flag or a help text
//! changed, or the version): `VUORO_BLESS=1 cargo test -p vuoro man_pages` rewrites them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::CommandFactory;

/// Every page by its file name: the command's own and each visible subcommand's, all in section 1.
fn render() -> BTreeMap<String, Vec<u8>> {
    let mut cmd = super::Cli::command();
    // Fills in what clap adds (the help flags, the subcommands' display names such as `vuoro-serve`).
    cmd.build();
    let mut pages = BTreeMap::new();
    let mut todo = vec![cmd];
    while let Some(cmd) = todo.pop() {
        todo.extend(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .cloned(),
        );
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .expect("render to memory");
        pages.insert(format!("{name}.1"), page);
    }
    pages
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("debian/man")
}

/// The committed pages by file name.
fn committed() -> BTreeMap<String, Vec<u8>> {
    let mut pages = BTreeMap::new();
    for entry in std::fs::read_dir(dir()).into_iter().flatten() {
        let path = entry.expect("read debian/man").path();
        if path.extension().is_some_and(|e| e == "1") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            pages.insert(name, std::fs::read(&path).expect("read a page"));
        }
    }
    pages
}

#[test]
fn man_pages_are_the_ones_the_cli_renders() {
    let rendered = render();
    assert!(rendered.contains_key("vuoro.1") && rendered.contains_key("vuoro-serve.1"));
    if std::env::var_os("VUORO_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(dir()).expect("create debian/man");
        for name in committed().keys().filter(|n| !rendered.contains_key(*n)) {
            std::fs::remove_file(dir().join(name)).expect("remove a stale page");
        }
        for (name, page) in &rendered {
            std::fs::write(dir().join(name), page).expect("write a page");
        }
        return;
    }
    let committed = committed();
    let names: BTreeSet<&String> = rendered.keys().chain(committed.keys()).collect();
    let stale: Vec<&&String> = names
        .iter()
        .filter(|n| rendered.get(**n) != committed.get(**n))
        .collect();
    assert!(
        stale.is_empty(),
        "the man pages in {} are not what the command line renders: {stale:?} differ, are missing or \
         are left over.\nRewrite them with `VUORO_BLESS=1 cargo test -p vuoro man_pages`, read the diff, \
         and commit them.",
        dir().display()
    );
}
