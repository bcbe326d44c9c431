//! Following log files as processes write them: complete lines, each with its source, for the
//! live output of `mlctl run` and for `mlctl logs -f`.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Files being followed.
#[derive(Debug, Default)]
pub struct Tailer {
    files: Vec<Followed>,
}

#[derive(Debug)]
struct Followed {
    path: PathBuf,
    source: String,
    offset: u64,
    partial: Vec<u8>,
    closing: bool,
}

const MAX_LINE: usize = 64 * 1024;

impl Tailer {
    /// Follows `path` from `offset`, naming its lines `source`.
    pub fn follow(&mut self, path: PathBuf, source: String, offset: u64) {
        if !self.files.iter().any(|f| f.path == path) {
            self.files.push(Followed {
                path,
                source,
                offset,
                partial: Vec::new(),
                closing: false,
            });
        }
    }

    /// Stops following `path` after its remaining lines (and an unterminated last line) are
    /// read by the next [`Tailer::poll`].
    pub fn close(&mut self, path: &std::path::Path) {
        for f in &mut self.files {
            if f.path == path {
                f.closing = true;
            }
        }
    }

    /// Whether anything is followed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Reads what was appended since the last call and hands out complete lines.
    pub fn poll(&mut self, mut line: impl FnMut(&str, &str)) {
        for f in &mut self.files {
            let mut buf = Vec::new();
            if let Ok(mut file) = std::fs::File::open(&f.path)
                && file.seek(SeekFrom::Start(f.offset)).is_ok()
                && let Ok(n) = file.read_to_end(&mut buf)
            {
                f.offset += n as u64;
            }
            f.partial.extend_from_slice(&buf);
            while let Some(pos) = f.partial.iter().position(|b| *b == b'\n') {
                let text = String::from_utf8_lossy(&f.partial[..pos]).into_owned();
                line(&f.source, text.trim_end_matches('\r'));
                f.partial.drain(..=pos);
            }
            if f.partial.len() > MAX_LINE || (f.closing && !f.partial.is_empty()) {
                let text = String::from_utf8_lossy(&f.partial).into_owned();
                line(&f.source, &text);
                f.partial.clear();
            }
        }
        self.files.retain(|f| !f.closing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn complete_lines_then_the_rest_on_close() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.log");
        let mut file = std::fs::File::create(&path).expect("create");
        let mut t = Tailer::default();
        t.follow(path.clone(), "train/0".into(), 0);
        write!(file, "one\ntw").expect("write");
        let mut seen = Vec::new();
        t.poll(|s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["train/0: one"]);
        write!(file, "o\nthree").expect("write");
        t.close(&path);
        t.poll(|s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["train/0: one", "train/0: two", "train/0: three"]);
        assert!(t.is_empty());
    }
}
