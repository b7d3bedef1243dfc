//! The pulled components' part of the cache, `<cache_dir>/oci/`
//! (content-addressed; see the module above for its layout).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::config::manifest::OciSource;

/// The `oci/` folder of the cache.
pub(super) fn root(cache_dir: &Path) -> PathBuf {
    cache_dir.join("oci")
}

pub(super) fn hex_of(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub(super) fn blob_path(cache_dir: &Path, layer: &str) -> Option<PathBuf> {
    Some(
        root(cache_dir)
            .join("blobs/sha256")
            .join(format!("{}.wasm", hex_of(layer)?)),
    )
}

pub(super) fn manifest_path(cache_dir: &Path, digest: &str) -> Option<PathBuf> {
    Some(
        root(cache_dir)
            .join("manifests/sha256")
            .join(hex_of(digest)?),
    )
}

/// The file that remembers a tag's last served digest.
pub(super) fn tag_path(cache_dir: &Path, reference: &str) -> PathBuf {
    let name: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Readable, and unambiguous (`a/b` and `a_b` differ by their hash).
    let hash = format!("{:x}", Sha256::digest(reference.as_bytes()));
    root(cache_dir)
        .join("tags")
        .join(format!("{name}-{}", &hash[..16]))
}

/// Writes `bytes` to `path` atomically (temporary file, then rename), in a
/// folder only the host's user can read.
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".tmp-{:016x}", fastrand::u64(..)));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The cached component a manifest digest names, if both are cached.
pub(super) fn cached(cache_dir: &Path, digest: &str) -> Option<PathBuf> {
    let layer = std::fs::read_to_string(manifest_path(cache_dir, digest)?).ok()?;
    let blob = blob_path(cache_dir, layer.trim())?;
    blob.is_file().then_some(blob)
}

/// Records that `reference` (a tag) served `digest` successfully: where it
/// starts from when the registry is down.
pub fn remember_served(cache_dir: &Path, source: &OciSource) {
    if let Some(digest) = &source.digest
        && !source.reference.contains('@')
        && let Err(err) =
            write_atomically(&tag_path(cache_dir, &source.reference), digest.as_bytes())
    {
        tracing::warn!(reference = %source.reference, error = %err, "cannot remember the digest a tag served");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_files_are_plain_names() {
        let path = tag_path(Path::new("/c"), "127.0.0.1:5000/a/b:v1");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("127.0.0.1_5000_a_b_v1-"), "{name}");
        assert_ne!(path, tag_path(Path::new("/c"), "127.0.0.1:5000/a_b:v1"));
    }
}
