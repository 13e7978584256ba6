//! Finding result files: a file given, or the `*.jsonl` in a folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The `*.jsonl` files in a directory, sorted.
pub fn jsonl_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    found.sort();
    Ok(found)
}

/// The JSONL files under each path (a file itself, or the `*.jsonl` in a directory), sorted.
pub fn result_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let found = jsonl_in(path)?;
            if found.is_empty() {
                bail!(
                    "{}: no .jsonl result files in this directory",
                    path.display()
                );
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(files)
}
