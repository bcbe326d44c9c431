//! Following log files as processes write them: complete lines, each with its source, for the
//! live output of `mlctl run` and for `mlctl logs -f`.
//!
//! Each followed file stays open once it exists, so reading what was appended is one `read`;
//! [`Tailer::poll_closed`] reads only the files being closed, so that handling one process's
//! end costs the same however many others are followed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
    /// Open from `offset` on, once the file exists.
    file: Option<std::fs::File>,
    partial: Vec<u8>,
    closing: bool,
}

const MAX_LINE: usize = 64 * 1024;

impl Followed {
    /// Whether this is the file at `path`, by the path's bytes: `Path`'s own equality compares
    /// component by component when the bytes differ, and the logs of a run's steps all have
    /// paths of the same length (nearly a tenth of the dispatcher's time at 1,000 steps).
    fn is(&self, path: &Path) -> bool {
        self.path.as_os_str() == path.as_os_str()
    }

    /// Reads what was appended and hands out complete lines (and, when closing, the rest).
    fn read(&mut self, line: &mut impl FnMut(&str, &str)) {
        if self.file.is_none()
            && let Ok(mut file) = std::fs::File::open(&self.path)
            && file.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            self.file = Some(file);
        }
        let before = self.partial.len();
        if let Some(file) = &mut self.file {
            // appends to what is left of an unterminated line, with plain reads until the end
            // (`read_to_end` on a file asks for its size and position first: two more system
            // calls for every followed file at every poll)
            let mut chunk = [0u8; 8192];
            loop {
                match file.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => self.partial.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        self.offset += (self.partial.len() - before) as u64;
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(&self.partial[start..start + pos]);
            line(&self.source, text.trim_end_matches('\r'));
            start += pos + 1;
        }
        let rest = self.partial.len() - start;
        if rest > MAX_LINE || (self.closing && rest > 0) {
            line(
                &self.source,
                &String::from_utf8_lossy(&self.partial[start..]),
            );
            self.partial.clear();
        } else {
            self.partial.drain(..start);
        }
    }
}

impl Tailer {
    /// Follows `path` from `offset`, naming its lines `source`.
    pub fn follow(&mut self, path: PathBuf, source: String, offset: u64) {
        if !self.files.iter().any(|f| f.is(&path)) {
            self.files.push(Followed {
                path,
                source,
                offset,
                file: None,
                partial: Vec::new(),
                closing: false,
            });
        }
    }

    /// Stops following `path` after its remaining lines (and an unterminated last line) are
    /// read by the next [`Tailer::poll`].
    pub fn close(&mut self, path: &Path) {
        for f in &mut self.files {
            if f.is(path) {
                f.closing = true;
            }
        }
    }

    /// Whether anything is followed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Reads what was appended to `which` followed files since the last call and hands out
    /// complete lines (and the remaining lines of the files being closed, which are then no
    /// longer followed).
    pub fn poll(&mut self, which: Which, mut line: impl FnMut(&str, &str)) {
        for f in &mut self.files {
            if which == Which::All || f.closing {
                f.read(&mut line);
            }
        }
        self.files.retain(|f| !f.closing);
    }
}

/// The followed files a [`Tailer::poll`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Every one.
    All,
    /// Those being closed only.
    Closing,
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
        t.poll(Which::All, |s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["train/0: one"]);
        write!(file, "o\nthree").expect("write");
        t.close(&path);
        t.poll(Which::All, |s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["train/0: one", "train/0: two", "train/0: three"]);
        assert!(t.is_empty());
    }

    #[test]
    fn closing_one_file_reads_only_that_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let mut t = Tailer::default();
        // followed before it exists: read from its start once it does
        t.follow(a.clone(), "a".into(), 0);
        t.follow(b.clone(), "b".into(), 0);
        std::fs::write(&a, "a1\na2").expect("write a");
        std::fs::write(&b, "b1\n").expect("write b");
        let mut seen = Vec::new();
        t.close(&a);
        t.poll(Which::Closing, |s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["a: a1", "a: a2"]);
        assert!(!t.is_empty(), "b is still followed");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&b)
            .expect("open b");
        writeln!(file, "b2").expect("write");
        t.poll(Which::All, |s, l| seen.push(format!("{s}: {l}")));
        assert_eq!(seen, ["a: a1", "a: a2", "b: b1", "b: b2"]);
    }

    #[test]
    fn starts_at_the_offset_and_splits_overlong_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.log");
        let long = "x".repeat(MAX_LINE + 1);
        std::fs::write(&path, format!("skipped\n{long}")).expect("write");
        let mut t = Tailer::default();
        t.follow(path, "a".into(), "skipped\n".len() as u64);
        let mut seen = Vec::new();
        t.poll(Which::All, |_, l| seen.push(l.len()));
        assert_eq!(seen, [MAX_LINE + 1]);
    }
}
