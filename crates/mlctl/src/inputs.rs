//! Reading the files named by `-f`/`PATH` arguments: files, directories and standard input.
//!
//! Directories are read recursively (like kubeconform; mlctl projects keep specs in
//! subfolders next to their scripts) unless `--recursive=false`; only `.yaml`, `.yml` and
//! `.json` files are read, hidden entries are skipped, and files come in path order so that
//! every command sees the same documents in the same order.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mlctl_core::parallel::in_parallel;

use crate::exit::Failure;

/// One input file, read whole.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// How messages name it: the path as given (joined for directory entries), or `-`.
    pub name: String,
    /// The text.
    pub text: String,
}

/// Which files to read.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// Files or directories to read (`-` for standard input); may be repeated.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: WalkArgs,
}

/// How to walk directories.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WalkArgs {
    /// Read directories recursively (the default; `--recursive=false` reads only the top level).
    #[arg(
        short = 'R',
        long = "recursive",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub recursive: bool,
}

/// Reads every file that `paths` name, in a stable order.
pub fn read_all(paths: &[PathBuf], walk: WalkArgs) -> Result<Vec<SourceFile>, Failure> {
    Ok(read_all_with(paths, walk, |text| text)?
        .into_iter()
        .map(|(name, text)| SourceFile { name, text })
        .collect())
}

/// Reads every file that `paths` name, in a stable order, and makes `made` of each text as
/// soon as it is read, on all cores: each file's name with what `made` made of it. The texts
/// are not all kept in memory at once, unless `made` keeps them.
pub fn read_all_with<T: Send>(
    paths: &[PathBuf],
    walk: WalkArgs,
    made: impl Fn(String) -> T + Sync,
) -> Result<Vec<(String, T)>, Failure> {
    let mut out = Vec::new();
    let mut stdin_used = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_used {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "standard input (-) can be read only once"
                )));
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("failed to read standard input")
                .map_err(Failure::bad_input)?;
            out.push(("-".into(), made(text)));
            continue;
        }
        let meta = std::fs::metadata(path)
            .with_context(|| format!("failed to read {}", path.display()))
            .map_err(|e| {
                Failure::bad_input(e).with_hint("check the path given to -f; use - for stdin")
            })?;
        if meta.is_dir() {
            let mut files = walk_dir(path, walk.recursive).map_err(Failure::bad_input)?;
            files.sort();
            if files.is_empty() {
                return Err(Failure::bad_input(anyhow::anyhow!(
                    "no .yaml, .yml or .json files in {}",
                    path.display()
                )));
            }
            out.extend(read_files(files, &made)?);
        } else {
            out.push(read_file(path, &made)?);
        }
    }
    Ok(out)
}

/// `path` named as messages name it, with what `made` made of its text.
fn read_file<T>(path: &Path, made: impl Fn(String) -> T) -> Result<(String, T), Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {}", path.display()))
        .map_err(Failure::bad_input)?;
    Ok((path.display().to_string(), made(text)))
}

/// Reads `paths` on all cores, in order, making `made` of each text in the thread that read
/// it (the error is that of the first file that cannot be read).
fn read_files<T: Send>(
    paths: Vec<PathBuf>,
    made: &(impl Fn(String) -> T + Sync),
) -> Result<Vec<(String, T)>, Failure> {
    in_parallel(paths.len(), |i| read_file(&paths[i], made))
        .into_iter()
        .collect()
}

/// The `.yaml`, `.yml` and `.json` files in `dir` (and in its subdirectories, when
/// `recursive`), in no particular order. The directories of each level are listed on all
/// cores: listing a directory is a few system calls of ~10 us each, and a tree of thousands of
/// directories took longer to walk than to read.
fn walk_dir(dir: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut level = vec![dir.to_path_buf()];
    while !level.is_empty() {
        let listed = in_parallel(level.len(), |i| list_dir(&level[i]));
        level = Vec::new();
        for listing in listed {
            let (dirs, found) = listing?;
            files.extend(found);
            if recursive {
                level.extend(dirs);
            }
        }
    }
    Ok(files)
}

/// The subdirectories of `dir` and the manifest files in it (hidden entries skipped).
fn list_dir(dir: &Path) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // file_type() does not follow symlinks: a symlinked directory is not descended into,
        // so a link cycle cannot make the walk loop.
        let file_type = entry
            .file_type()
            .with_context(|| format!("failed to read {}", path.display()))?;
        if file_type.is_dir() {
            dirs.push(path);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(path);
        }
    }
    Ok((dirs, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[SourceFile], root: &Path) -> Vec<String> {
        files
            .iter()
            .map(|f| {
                Path::new(&f.name)
                    .strip_prefix(root)
                    .expect("under the root")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn directories_are_walked_in_path_order_without_hidden_entries_or_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["b/deep/er", "a", ".hidden", "c"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        for file in [
            "top.yaml",
            "b/deep/er/x.yml",
            "b/deep/y.json",
            "b/notes.txt",
            "a/z.yaml",
            ".hidden/h.yaml",
            "c/.h.yaml",
        ] {
            std::fs::write(root.join(file), format!("# {file}\n")).expect("write");
        }
        // a link back to the root: not followed, so the walk ends
        std::os::unix::fs::symlink(root, root.join("c/loop")).expect("symlink");

        let read = |path: &Path, recursive| {
            read_all(&[path.to_path_buf()], WalkArgs { recursive })
                .unwrap_or_else(|f| panic!("{:#}", f.error))
        };
        let all = read(root, true);
        assert_eq!(
            names(&all, root),
            ["a/z.yaml", "b/deep/er/x.yml", "b/deep/y.json", "top.yaml"]
        );
        assert_eq!(all[1].text, "# b/deep/er/x.yml\n");

        let top = read(root, false);
        assert_eq!(names(&top, root), ["top.yaml"]);

        let err =
            read_all(&[root.join("c")], WalkArgs { recursive: true }).expect_err("nothing to read");
        assert!(
            format!("{:#}", err.error).contains("no .yaml, .yml or .json files"),
            "{:#}",
            err.error
        );
    }
}
