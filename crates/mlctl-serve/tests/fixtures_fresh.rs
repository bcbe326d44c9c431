//! The committed test models are exactly what `tests/fixtures/make_models.py` writes: run it
//! again into a temporary directory and compare every file byte for byte. Needs python3 with
//! the `onnx` and `numpy` packages (.ci/requirements.txt); fails, rather than skips, without.

use std::path::Path;
use std::process::Command;

#[test]
fn fixtures_match_their_generator() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let out = tempfile::tempdir().expect("tempdir");
    let run = Command::new("python3")
        .arg(fixtures.join("make_models.py"))
        .arg(out.path())
        .output()
        .expect("python3 runs (CI installs it with .ci/requirements.txt)");
    assert!(
        run.status.success(),
        "make_models.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut compared = 0;
    for entry in std::fs::read_dir(out.path()).expect("list") {
        let name = entry.expect("entry").file_name();
        let fresh = std::fs::read(out.path().join(&name)).expect("fresh file");
        let committed = std::fs::read(fixtures.join(&name))
            .unwrap_or_else(|e| panic!("{name:?} is not committed: {e}"));
        assert!(
            fresh == committed,
            "{name:?} differs from what make_models.py writes; rerun it on tests/fixtures"
        );
        compared += 1;
    }
    assert_eq!(
        compared, 5,
        "mlp, multi, fixed, broken and the expected outputs"
    );
}
