//! The documentation against the code: the configuration table of docs/configuration.md names
//! exactly the variables the services read (each crate's `VARIABLES`, shared-auth's common ones
//! and telemetry's), and every relative link of the README and docs/ leads to a file that exists.

use regex_lite::Regex;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn the_configuration_table_names_exactly_the_variables_the_services_read() {
    let text = read("docs/configuration.md");
    let table = &text[text
        .find("| variable | who | meaning |")
        .expect("the table")..];
    let name = Regex::new(r"`([A-Z][A-Z0-9_]+)`").unwrap();
    let documented: BTreeSet<String> = table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .flat_map(|row| {
            let first = row.split('|').nth(1).unwrap_or_default();
            name.captures_iter(first)
                .map(|c| c[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let read: BTreeSet<String> = [
        main_app::config::VARIABLES,
        queue_worker::config::VARIABLES,
        third_party_api::config::VARIABLES,
        shared_auth::variables::COMMON_VARIABLES,
        service_kit::telemetry::VARIABLES,
    ]
    .iter()
    .flat_map(|list| list.iter().map(|v| v.to_string()))
    .collect();
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "read but not in the table: {undocumented:?}; in the table but read by nothing: {stale:?}"
    );
}

#[test]
fn every_relative_link_of_the_readme_and_the_docs_leads_to_a_file() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path.strip_prefix(repo()).unwrap().to_owned());
        }
    }
    let mut checked = 0;
    for page in &pages {
        let text = read(page.to_str().unwrap());
        let dir = page.parent().unwrap_or(Path::new(""));
        for c in link.captures_iter(&text) {
            let target = c[1].split('#').next().unwrap_or_default();
            if target.is_empty() || target.contains(':') || target.starts_with('<') {
                continue;
            }
            // `/path` is the repository's root (as GitHub reads it); others are relative.
            let path = match target.strip_prefix('/') {
                Some(rooted) => repo().join(rooted),
                None => repo().join(dir).join(target),
            };
            assert!(path.exists(), "{}: {target} does not exist", page.display());
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links checked");
    // The README is the front door: short, and every page of docs/ one click away.
    let readme = read("README.md");
    assert!(readme.lines().count() <= 200, "README over 200 lines");
    for page in pages.iter().filter(|p| p.starts_with("docs")) {
        let name = page.to_str().unwrap();
        assert!(
            readme.contains(&format!("]({name})")),
            "README does not link {name}"
        );
    }
}
