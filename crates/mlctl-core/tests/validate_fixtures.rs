//! Golden tests: every invalid-spec fixture under `fixtures/invalid/` produces, among its
//! findings, the error its first line names (`# expect: CODE`); every fixture under
//! `fixtures/warning/` is valid and produces the warning its first line names. Every finding is
//! located, and the exact messages are snapshots.

use mlctl_core::diag::{self, Severity};
use mlctl_core::spec::SourceText;
use mlctl_core::validate::validate_sources;

/// Validates a fixture: whether it must be valid, and the finding its first line expects
/// with the expected severity; returns the rendered findings.
fn check_fixture(path: &std::path::Path, severity: Severity) -> String {
    let text = std::fs::read_to_string(path).expect("fixture");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let expected = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .expect("first line says `# expect: CODE`");
    let report = validate_sources(&[SourceText { name, text: &text }]);
    let valid = severity != Severity::Error;
    assert_eq!(
        report.spec.is_some(),
        valid,
        "{name}: valid must be {valid}"
    );
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.code == expected && d.severity == severity),
        "{name}: expected a {severity:?} {expected}, got:\n{}",
        diag::render_text(&report.diagnostics)
    );
    for d in &report.diagnostics {
        assert!(d.pos.is_known(), "{name}: finding without location: {d}");
    }
    diag::render_text(&report.diagnostics)
}

#[test]
fn invalid_specs_report_located_errors() {
    let mut count = 0;
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        count += 1;
        insta::assert_snapshot!(check_fixture(path, Severity::Error));
    });
    assert!(
        count >= 40,
        "at least 40 invalid-spec fixtures, found {count}"
    );
}

#[test]
fn warnings_leave_a_spec_valid() {
    insta::glob!("fixtures/warning/*.yaml", |path| {
        insta::assert_snapshot!(check_fixture(path, Severity::Warning));
    });
}
