//! Golden tests: every invalid-spec fixture under `fixtures/invalid/` produces, among its
//! findings, the error its first line names (`# expect: CODE`), every finding is located, and
//! the exact messages are snapshots.

use mlctl_core::diag::{self, Severity};
use mlctl_core::spec::SourceText;
use mlctl_core::validate::validate_sources;

#[test]
fn invalid_specs_report_located_errors() {
    let mut count = 0;
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        count += 1;
        let text = std::fs::read_to_string(path).expect("fixture");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line says `# expect: CODE`");
        let report = validate_sources(&[SourceText { name, text: &text }]);
        assert!(report.spec.is_none(), "{name}: must be invalid");
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.code == expected && d.severity == Severity::Error),
            "{name}: expected an error {expected}, got:\n{}",
            diag::render_text(&report.diagnostics)
        );
        for d in &report.diagnostics {
            assert!(d.pos.is_known(), "{name}: finding without location: {d}");
        }
        insta::assert_snapshot!(diag::render_text(&report.diagnostics));
    });
    assert!(
        count >= 40,
        "at least 40 invalid-spec fixtures, found {count}"
    );
}
