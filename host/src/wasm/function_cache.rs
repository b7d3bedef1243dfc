//! The incremental compilation cache: Cranelift's compiled functions on
//! disk, in `<cache_dir>/functions/`, so that compiling a component whose
//! code mostly did not change (a reload after an edit, a rebuild that only
//! changed metadata) reuses the machine code of every unchanged function
//! instead of compiling it again.
//!
//! Cranelift keys each function by a sha256 of its IR and of the compiler's
//! flags (fuel and epoch checks are in the IR, so each engine kind has its
//! own entries), and checks a version marker when it reads an entry back;
//! an entry it cannot read is compiled again.
//!
//! Entries are appended to pack files, one per process that wrote any
//! (`<pid>-<time>.pack`): a small file per function cost the first compile
//! of the 18 MB Python hello 0.7 s of file creation. Each pack starts with
//! [`PACK_MAGIC`], then holds records `key (32 bytes) | length (u32 LE) |
//! entry`. A record cut short (a crash while writing) ends the pack's scan.
//! The packs are scanned once, on the first lookup, into an index of where
//! each key's entry is; lookups then read one entry with one `pread`.
//!
//! Entries hold machine code, so they get the artifact cache's care: an
//! owner-only directory, files written by this host only. Writes go to a
//! background thread, off the compiler's threads.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, FileExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, mpsc};

use anyhow::Context as _;

/// The first bytes of a pack (the format's version is in it).
const PACK_MAGIC: &[u8; 16] = b"wasmhost-fn-pk1\n";

/// Cranelift's keys: sha256 digests.
type Key = [u8; 32];

/// The function cache of one host (shared by all its engines).
#[derive(Debug)]
pub struct FunctionCache {
    /// What the writer thread shares.
    packs: Arc<Packs>,
    /// Entries to write, for the writer thread (started on the first one).
    writes: Mutex<Option<Writer>>,
    /// Functions found in the cache.
    reused: AtomicU64,
    /// Functions compiled (and handed to the writer).
    compiled: AtomicU64,
    /// Functions found by their Wasm body, so not even translated.
    untranslated: AtomicU64,
}

/// The first bytes of the entries the patched `wasmtime-internal-cranelift`
/// writes under a function's Wasm-level key (`vendor/wasmtime-internal-
/// cranelift/src/wasm_cache.rs`, `ENTRY_MAGIC`): each points at the
/// Cranelift entry that holds the function's machine code, so they are
/// counted apart.
const WASM_LEVEL_MAGIC: &[u8] = b"wasmhost-wfn-v1\n";

/// The packs in `<cache_dir>/functions/`.
#[derive(Debug)]
struct Packs {
    /// `<cache_dir>/functions`.
    dir: PathBuf,
    /// Where each known entry is (scanned on first use).
    index: OnceLock<RwLock<Index>>,
}

/// The packs open for reading and where each entry is in them.
#[derive(Debug, Default)]
struct Index {
    files: Vec<Arc<File>>,
    entries: HashMap<Key, Location>,
}

/// Where an entry is: pack number (in [`Index::files`]), offset, length.
#[derive(Debug, Clone, Copy)]
struct Location {
    pack: usize,
    offset: u64,
    len: u32,
}

/// The writer thread and the way to it.
#[derive(Debug)]
struct Writer {
    entries: mpsc::Sender<(Key, Vec<u8>)>,
    thread: std::thread::JoinHandle<()>,
}

/// How many functions were found in the cache and how many were compiled,
/// since the host started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Taken from the cache.
    pub reused: u64,
    /// Compiled.
    pub compiled: u64,
    /// Of those reused, found by their Wasm body: neither translated to
    /// Cranelift's IR nor hashed.
    pub untranslated: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            reused: self.reused.saturating_sub(earlier.reused),
            compiled: self.compiled.saturating_sub(earlier.compiled),
            untranslated: self.untranslated.saturating_sub(earlier.untranslated),
        }
    }
}

impl FunctionCache {
    /// The function cache of the artifact cache in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Arc<FunctionCache> {
        Arc::new(FunctionCache {
            packs: Arc::new(Packs {
                dir: cache_dir.join("functions"),
                index: OnceLock::new(),
            }),
            writes: Mutex::new(None),
            reused: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
            untranslated: AtomicU64::new(0),
        })
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        Counts {
            reused: self.reused.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
            untranslated: self.untranslated.load(Ordering::Relaxed),
        }
    }

    /// Waits until every entry handed over so far is written and indexed
    /// (before a process exits). A later insert starts a new writer, with
    /// a new pack.
    pub fn flush(&self) {
        let writer = self.writes.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(Writer { entries, thread }) = writer {
            drop(entries);
            let _ = thread.join();
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<(Key, Vec<u8>)>> {
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        if writes.is_none() {
            let (entries, rx) = mpsc::channel();
            let packs = self.packs.clone();
            let thread = std::thread::Builder::new()
                .name("wasmhost-fncache".into())
                .spawn(move || {
                    crate::wasm::priority::lower_this_thread();
                    if let Err(err) = packs.write(rx) {
                        tracing::warn!(
                            dir = %packs.dir.display(),
                            error = %format!("{err:#}"),
                            "cannot write the function cache; later compiles will not reuse functions"
                        );
                    }
                })
                .ok()?;
            *writes = Some(Writer { entries, thread });
        }
        writes.as_ref().map(|w| w.entries.clone())
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let key: &Key = key.try_into().ok()?;
        let (file, at) = {
            let index = self.packs.index().read().unwrap_or_else(|e| e.into_inner());
            let at = *index.entries.get(key)?;
            (index.files[at.pack].clone(), at)
        };
        let mut entry = vec![0; at.len as usize];
        file.read_exact_at(&mut entry, at.offset).ok()?;
        if entry.starts_with(WASM_LEVEL_MAGIC) {
            self.untranslated.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        Some(Cow::Owned(entry))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let Ok(key) = Key::try_from(key) else {
            return false;
        };
        if !value.starts_with(WASM_LEVEL_MAGIC) {
            self.compiled.fetch_add(1, Ordering::Relaxed);
        }
        self.sender()
            .is_some_and(|writes| writes.send((key, value)).is_ok())
    }
}

impl Packs {
    fn index(&self) -> &RwLock<Index> {
        self.index.get_or_init(|| RwLock::new(scan(&self.dir)))
    }

    /// The writer thread: appends entries to a new pack until the cache
    /// drops its end of `entries`, and indexes each batch once it is on
    /// disk. An error (an unwritable directory) ends it; entries handed
    /// over after that are dropped.
    fn write(&self, entries: mpsc::Receiver<(Key, Vec<u8>)>) -> anyhow::Result<()> {
        let index = self.index();
        let Ok(first) = entries.recv() else {
            return Ok(());
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("creating `{}`", self.dir.display()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .dir
            .join(format!("{}-{nanos}.pack", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating `{}`", path.display()))?;
        let reader = Arc::new(file.try_clone()?);
        let pack = {
            let mut index = index.write().unwrap_or_else(|e| e.into_inner());
            index.files.push(reader);
            index.files.len() - 1
        };
        let mut out = BufWriter::with_capacity(256 << 10, file);
        out.write_all(PACK_MAGIC)?;
        let mut offset = PACK_MAGIC.len() as u64;
        let mut next = Some(first);
        while let Some((key, entry)) = next {
            // One batch: what is queued now.
            let mut batch = Vec::new();
            for (key, entry) in std::iter::once((key, entry)).chain(entries.try_iter()) {
                let Ok(len) = u32::try_from(entry.len()) else {
                    continue;
                };
                out.write_all(&key)?;
                out.write_all(&len.to_le_bytes())?;
                out.write_all(&entry)?;
                offset += RECORD_HEADER;
                batch.push((key, Location { pack, offset, len }));
                offset += u64::from(len);
            }
            out.flush()
                .with_context(|| format!("writing `{}`", path.display()))?;
            index
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entries
                .extend(batch);
            next = entries.recv().ok();
        }
        Ok(())
    }
}

/// A record's key and length.
const RECORD_HEADER: u64 = 32 + 4;

/// Every readable pack in `dir` and the entries in them (none if `dir`
/// does not exist). A file without [`PACK_MAGIC`] is skipped; a record
/// cut short ends its pack.
fn scan(dir: &Path) -> Index {
    let mut index = Index::default();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return index;
    };
    for path in listing.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_none_or(|ext| ext != "pack") {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let pack = index.files.len();
        let len = file.metadata().map_or(0, |m| m.len());
        let mut reader = BufReader::with_capacity(64 << 10, &file);
        let mut magic = [0; PACK_MAGIC.len()];
        if reader.read_exact(&mut magic).is_err() || &magic != PACK_MAGIC {
            continue;
        }
        let mut offset = PACK_MAGIC.len() as u64;
        let mut header = [0; RECORD_HEADER as usize];
        while reader.read_exact(&mut header).is_ok() {
            let (key, entry_len) = header.split_at(32);
            let entry_len = u32::from_le_bytes(entry_len.try_into().expect("4 bytes"));
            offset += RECORD_HEADER;
            if offset + u64::from(entry_len) > len
                || reader.seek_relative(i64::from(entry_len)).is_err()
            {
                break;
            }
            let key: Key = key.try_into().expect("32 bytes");
            index.entries.insert(
                key,
                Location {
                    pack,
                    offset,
                    len: entry_len,
                },
            );
            offset += u64::from(entry_len);
        }
        drop(reader);
        index.files.push(Arc::new(file));
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore as _;

    fn entry(cache: &FunctionCache, key: &Key) -> Option<Vec<u8>> {
        cache.get(key).map(Cow::into_owned)
    }

    #[test]
    fn entries_come_back_in_this_process_and_the_next_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::new(dir.path());
        let (a, b) = ([0xaa; 32], [0xbb; 32]);
        assert_eq!(entry(&cache, &a), None);
        assert!(cache.insert(&a, b"machine code a".to_vec()));
        assert!(cache.insert(&b, vec![7; 100_000]));
        assert!(!cache.insert(b"not a sha256", vec![1]), "refused");
        // An entry under a Wasm-level key only points at another one: it
        // counts as neither compiled nor reused, and a hit on it as a
        // function not translated.
        let mut pointer = WASM_LEVEL_MAGIC.to_vec();
        pointer.extend_from_slice(&a);
        assert!(cache.insert(&[0xee; 32], pointer.clone()));
        cache.flush();
        assert_eq!(entry(&cache, &a).as_deref(), Some(&b"machine code a"[..]));
        assert_eq!(entry(&cache, &[0xee; 32]), Some(pointer));
        assert_eq!(
            cache.counts(),
            Counts {
                reused: 1,
                compiled: 2,
                untranslated: 1,
            }
        );

        // The next process scans the pack; a record cut short at the end
        // (a crash while writing) is not an entry.
        let packs: Vec<_> = std::fs::read_dir(dir.path().join("functions"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(packs.len(), 1, "{packs:?}");
        let mut torn = std::fs::OpenOptions::new()
            .append(true)
            .open(&packs[0])
            .unwrap();
        torn.write_all(&[0xcc; 32]).unwrap();
        torn.write_all(&1000u32.to_le_bytes()).unwrap();
        torn.write_all(b"cut short").unwrap();
        let next = FunctionCache::new(dir.path());
        assert_eq!(entry(&next, &a).as_deref(), Some(&b"machine code a"[..]));
        assert_eq!(entry(&next, &b), Some(vec![7; 100_000]));
        assert_eq!(entry(&next, &[0xcc; 32]), None);

        // It writes its own pack; a file that is not a pack is skipped.
        assert!(next.insert(&[0xdd; 32], b"d".to_vec()));
        next.flush();
        std::fs::write(dir.path().join("functions/other.pack"), b"not a pack").unwrap();
        let third = FunctionCache::new(dir.path());
        assert_eq!(entry(&third, &[0xdd; 32]).as_deref(), Some(&b"d"[..]));
        assert_eq!(entry(&third, &a).as_deref(), Some(&b"machine code a"[..]));

        let mode = std::fs::metadata(dir.path().join("functions")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
    }
}
