//! Memoization of pipeline steps: a step whose resolved command, environment, image,
//! resources, Python requirements, project files and input artifacts are unchanged reuses the
//! outputs and artifacts of its last successful run instead of running again.
//!
//! The key is a SHA-256 over all of that. Input artifacts are hashed by content (they are
//! produced anew by each run); the project directory (what a container image would hold) by
//! the path, size and modification time of its files, which catches edits without reading
//! large data files.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key of a step: SHA-256 of the JSON of everything it depends on.
pub fn key(parts: &serde_json::Value) -> String {
    hex(&Sha256::digest(parts.to_string().as_bytes()))
}

fn files(
    dir: &Path,
    skip_hidden: bool,
    exclude: Option<&Path>,
    out: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if skip_hidden && entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if exclude.is_some_and(|e| std::fs::canonicalize(&path).is_ok_and(|p| p == e)) {
            continue;
        }
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            files(&path, skip_hidden, exclude, out)?;
        } else if meta.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// SHA-256 of a file or a directory tree's relative paths and contents.
pub fn digest_tree(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let meta = std::fs::metadata(path)?;
    let list = if meta.is_dir() {
        let mut list = Vec::new();
        files(path, false, None, &mut list)?;
        list
    } else {
        vec![path.to_path_buf()]
    };
    let mut buf = vec![0u8; 64 * 1024];
    for file in list {
        let rel = file.strip_prefix(path).unwrap_or(&file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        let mut f = std::fs::File::open(&file)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher.update([0]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A fingerprint of a project directory: relative path, size and modification time of each
/// file (hidden entries and `exclude`, the mlctl home, left out).
pub fn fingerprint_dir(path: &Path, exclude: &Path) -> std::io::Result<String> {
    let mut list = Vec::new();
    files(path, true, Some(exclude), &mut list)?;
    let mut hasher = Sha256::new();
    for file in list {
        let meta = std::fs::metadata(&file)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let rel = file.strip_prefix(path).unwrap_or(&file);
        hasher.update(format!("{}\0{}\0{mtime}\0", rel.display(), meta.len()).as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_digests_follow_content_and_names() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/a"), "1").expect("write");
        let first = digest_tree(dir.path()).expect("digest");
        assert_eq!(first, digest_tree(dir.path()).expect("digest"), "stable");
        std::fs::write(dir.path().join("d/a"), "2").expect("write");
        let changed = digest_tree(dir.path()).expect("digest");
        assert_ne!(first, changed, "content counts");
        std::fs::rename(dir.path().join("d/a"), dir.path().join("d/b")).expect("rename");
        assert_ne!(
            changed,
            digest_tree(dir.path()).expect("digest"),
            "names count"
        );
    }

    #[test]
    fn fingerprints_skip_hidden_entries_and_the_home() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("train.py"), "x").expect("write");
        std::fs::create_dir(dir.path().join(".mlctl")).expect("mkdir");
        let home = std::fs::canonicalize(dir.path().join(".mlctl")).expect("canon");
        let before = fingerprint_dir(dir.path(), &home).expect("fp");
        std::fs::write(dir.path().join(".mlctl/state"), "y").expect("write");
        assert_eq!(before, fingerprint_dir(dir.path(), &home).expect("fp"));
        std::fs::write(dir.path().join("train.py"), "xyz").expect("write");
        assert_ne!(before, fingerprint_dir(dir.path(), &home).expect("fp"));
    }
}
