//! Reading fixture folders for the seed and corpus tests.

use std::path::{Path, PathBuf};

/// Every `.yaml`/`.yml`/`.json` file under `dir`, sorted, as (name relative to `tests/`, text).
pub fn read_tree(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    walk(&root.join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable fixture");
            let name = p
                .strip_prefix(&root)
                .expect("under tests/")
                .to_string_lossy()
                .into_owned();
            (name, text)
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
}

/// Checks every file under the folders `dirs` (relative to `tests/`) in one invocation.
pub fn check_tree(
    dirs: &[&str],
    version: mlctl_k8s::schema::KubeVersion,
) -> mlctl_k8s::check::Report {
    let files: Vec<(String, String)> = dirs.iter().flat_map(|d| read_tree(d)).collect();
    let sources: Vec<mlctl_k8s::check::Source<'_>> = files
        .iter()
        .map(|(name, text)| mlctl_k8s::check::Source { name, text })
        .collect();
    mlctl_k8s::check::check(
        &sources,
        &mlctl_k8s::check::Options {
            kube_version: version,
        },
    )
}
