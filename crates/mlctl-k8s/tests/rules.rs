//! Golden tests of every rule: `tests/rules/<id>/fail.yaml` must produce findings of that rule
//! (their exact text is a snapshot), `pass.yaml` must produce none, and every rule ID of the
//! catalog must have both fixtures.

use std::path::{Path, PathBuf};

use mlctl_k8s::check::{Options, Source, check};
use mlctl_k8s::rules;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules")
}

fn findings_of(rule: &str, file: &str) -> Vec<mlctl_core::diag::Diagnostic> {
    let path = fixtures().join(rule).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = format!("{rule}/{file}");
    let report = check(
        &[Source {
            name: &name,
            text: &text,
        }],
        &Options::default(),
    );
    report
        .diagnostics
        .into_iter()
        .filter(|d| d.code == rule)
        .collect()
}

#[test]
fn every_rule_has_a_passing_and_a_failing_fixture() {
    let mut missing = Vec::new();
    for rule in rules::catalog() {
        for file in ["fail.yaml", "pass.yaml"] {
            if !fixtures().join(rule.id).join(file).is_file() {
                missing.push(format!("{}/{file}", rule.id));
            }
        }
    }
    assert!(missing.is_empty(), "missing fixtures: {missing:?}");
    // and no fixture folder for a rule that does not exist
    let ids: Vec<&str> = rules::catalog().iter().map(|r| r.id).collect();
    for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            ids.contains(&name.as_str()),
            "fixtures for unknown rule {name}"
        );
    }
}

#[test]
fn failing_fixtures_report_their_rule() {
    for rule in rules::catalog() {
        let found = findings_of(rule.id, "fail.yaml");
        assert!(
            !found.is_empty(),
            "{}: fail.yaml reports nothing of its rule",
            rule.id
        );
        insta::assert_snapshot!(rule.id, mlctl_core::diag::render_text(&found));
    }
}

#[test]
fn passing_fixtures_do_not_report_their_rule() {
    for rule in rules::catalog() {
        let found = findings_of(rule.id, "pass.yaml");
        assert!(
            found.is_empty(),
            "{}: pass.yaml reports:\n{}",
            rule.id,
            mlctl_core::diag::render_text(&found)
        );
    }
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    let mut ids: Vec<&str> = rules::catalog().iter().map(|r| r.id).collect();
    for id in &ids {
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
    }
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule IDs");
}
