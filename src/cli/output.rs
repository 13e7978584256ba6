//! Result files are written whole or not at all: a temp file beside the target, then a rename.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// A temp file beside `target` (same directory, same extension, which some writers read),
/// to be renamed over it once complete. Readable like a normally created file: tempfile's own
/// default is owner-only.
pub fn temp_beside(target: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let suffix = target
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let prefix = temp_prefix(target);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))
}

/// What the names of `target`'s temp files start with: its own name, so that the temp files a
/// killed writer left can be told from another writer's.
fn temp_prefix(target: &Path) -> String {
    format!(
        ".adaexp-{}-",
        target.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Removes the temp files of `target` a writer killed mid-write left beside it (a checkpoint's
/// is as large as the checkpoint). Only the one writer of `target` may call this.
pub fn remove_stale_temps(target: &Path) {
    let prefix = temp_prefix(target);
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = temp_beside(path)?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
