//! wasmhost patch (see PATCHED.md): a Wasm-level layer over Cranelift's
//! incremental compilation cache.
//!
//! Cranelift's cache is keyed by a hash of each function's IR, so every
//! function is still translated from Wasm to IR (and its IR hashed) on
//! every compile, even when nothing about it changed. This layer keys a
//! function by what its translation depends on instead: its body bytes,
//! its indices, its module's environment (every section but code and
//! custom ones, plus what wasmtime derived from the module and the
//! component around it) and the compiler's settings. An entry under that
//! key names the IR-level entry that holds the machine code, plus what is
//! needed to apply it (the function's external names and the offset of its
//! first source location from the start of its body). On a hit the
//! function is neither translated nor hashed.
//!
//! A module's environment hash is computed once per compile by
//! [`register`], which wasmtime's compile driver calls for every module
//! before compiling its functions; the registration ends (and its entry is
//! removed) when the compile ends, so a module's bytes are alive for as long
//! as their address is in the registry.

use core::hash::{Hash, Hasher};
use cranelift_codegen::ir::UserExternalName;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use wasmtime_environ::{ModuleTranslation, ModuleTypesBuilder};

/// The first bytes of a Wasm-level entry; the host's cache store counts
/// these apart from Cranelift's own entries (wasmhost's
/// `host/src/wasm/function_cache.rs` has the same bytes).
pub const ENTRY_MAGIC: &[u8; 16] = b"wasmhost-wfn-v1\n";

/// Domain separation of Wasm-level keys from Cranelift's IR-level keys.
const KEY_DOMAIN: &[u8] = b"wasmhost wasm-level function key v1";

/// `core::hash::Hasher` writing into a SHA-256.
pub(crate) struct Sha256Hasher(pub(crate) Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// `core::fmt::Write` writing into a SHA-256 (to hash `Debug` output
/// without building the string).
struct Sha256Writer<'a>(&'a mut Sha256);

impl core::fmt::Write for Sha256Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// Registered modules: (address, length) of the module's bytes, a
/// registration id, and its environment hash.
static MODULES: Mutex<Vec<((usize, usize), u64, [u8; 32])>> = Mutex::new(Vec::new());
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// A module's registration; dropping it removes the module from the
/// registry.
pub struct Registration {
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
        modules.retain(|(_, id, _)| *id != self.id);
    }
}

fn address(translation: &ModuleTranslation<'_>) -> (usize, usize) {
    (translation.wasm.as_ptr() as usize, translation.wasm.len())
}

/// Registers `translation` (its imports resolved, its memory and table
/// initialization finalized), compiled by an engine with the Wasm
/// features `features` (which decide what a function body may contain),
/// for the length of a compile; `None` when its bytes do not parse as a
/// module (then its functions skip this layer).
pub fn register(
    translation: &ModuleTranslation<'_>,
    types: &ModuleTypesBuilder,
    features: u64,
) -> Option<Registration> {
    let hash = environment_hash(translation, types, features)?;
    let id = NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    MODULES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((address(translation), id, hash));
    Some(Registration { id })
}

/// The environment hash of the registered module `translation`; `None`
/// when it is not registered, or registered twice with different hashes.
pub(crate) fn registered(translation: &ModuleTranslation<'_>) -> Option<[u8; 32]> {
    let modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    let address = address(translation);
    let mut found = None;
    for (at, _, hash) in modules.iter() {
        if *at == address {
            match found {
                None => found = Some(*hash),
                Some(other) if other != *hash => return None,
                Some(_) => {}
            }
        }
    }
    found
}

/// Everything a function's translation depends on besides its own body
/// and indices: the module's sections other than code and custom ones,
/// and what wasmtime derived from them and from the component (the module's
/// metadata with its interned type indices, the definitions of those
/// types, the imports known to be intrinsics, the exported signatures).
fn environment_hash(
    translation: &ModuleTranslation<'_>,
    types: &ModuleTypesBuilder,
    features: u64,
) -> Option<[u8; 32]> {
    use core::fmt::Write as _;
    let mut sha = Sha256::new();
    sha.update(KEY_DOMAIN);
    sha.update(features.to_le_bytes());
    for payload in wasmparser::Parser::new(0).parse_all(translation.wasm) {
        let payload = payload.ok()?;
        let Some((id, range)) = payload.as_section() else {
            continue;
        };
        // Code bodies are keyed per function; custom sections (names,
        // producers, debug info) do not reach the generated code.
        if id == 0 || id == 10 {
            continue;
        }
        let bytes = translation.wasm.get(range)?;
        sha.update([id]);
        sha.update((bytes.len() as u64).to_le_bytes());
        sha.update(bytes);
    }
    let mut writer = Sha256Writer(&mut sha);
    write!(writer, "{:?}", translation.module).ok()?;
    for (_, ty) in translation.module.types.iter() {
        if let Some(index) = ty.as_module_type_index() {
            write!(writer, "{:?}", types[index]).ok()?;
        }
    }
    write!(
        writer,
        "{:?}{:?}{:?}{:?}",
        translation.known_imported_functions,
        translation.exported_signatures,
        translation.passive_elem_map,
        translation.runtime_data_map,
    )
    .ok()?;
    Some(sha.finalize().into())
}

/// The Wasm-level key of one function: its module's environment hash, the
/// compiler's fingerprint, its `FuncKey` parts and its body bytes.
pub(crate) fn function_key(
    environment: &[u8; 32],
    compiler: &[u8; 32],
    key_parts: (u32, u32),
    body: &[u8],
) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(KEY_DOMAIN);
    sha.update(environment);
    sha.update(compiler);
    sha.update(key_parts.0.to_le_bytes());
    sha.update(key_parts.1.to_le_bytes());
    sha.update((body.len() as u64).to_le_bytes());
    sha.update(body);
    sha.finalize().into()
}

/// What a Wasm-level entry holds.
pub(crate) struct Entry {
    /// Cranelift's IR-level key of the function's machine code.
    pub ir_key: [u8; 32],
    /// Offset of the function's base source location from the start of its
    /// body, if it has one.
    pub base_srcloc_delta: Option<u32>,
    /// Whether the function needs a GC heap.
    pub needs_gc_heap: bool,
    /// The function's external names, in `UserExternalNameRef` order.
    pub names: Vec<UserExternalName>,
}

impl Entry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_MAGIC.len() + 32 + 10 + 8 * self.names.len());
        out.extend_from_slice(ENTRY_MAGIC);
        out.extend_from_slice(&self.ir_key);
        match self.base_srcloc_delta {
            Some(delta) => {
                out.push(1);
                out.extend_from_slice(&delta.to_le_bytes());
            }
            None => out.push(0),
        }
        out.push(u8::from(self.needs_gc_heap));
        out.extend_from_slice(&(self.names.len() as u32).to_le_bytes());
        for name in &self.names {
            out.extend_from_slice(&name.namespace.to_le_bytes());
            out.extend_from_slice(&name.index.to_le_bytes());
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Entry> {
        let rest = bytes.strip_prefix(ENTRY_MAGIC.as_slice())?;
        let (ir_key, rest) = rest.split_first_chunk::<32>()?;
        let (&has_base, mut rest) = rest.split_first()?;
        let base_srcloc_delta = match has_base {
            0 => None,
            1 => {
                let (delta, after) = rest.split_first_chunk::<4>()?;
                rest = after;
                Some(u32::from_le_bytes(*delta))
            }
            _ => return None,
        };
        let (&needs_gc_heap, rest) = rest.split_first()?;
        let (count, mut rest) = rest.split_first_chunk::<4>()?;
        let count = u32::from_le_bytes(*count) as usize;
        if rest.len() != count.checked_mul(8)? || needs_gc_heap > 1 {
            return None;
        }
        let mut names = Vec::with_capacity(count);
        while let Some((name, after)) = rest.split_first_chunk::<8>() {
            let (namespace, index) = name.split_at(4);
            names.push(UserExternalName::new(
                u32::from_le_bytes(namespace.try_into().ok()?),
                u32::from_le_bytes(index.try_into().ok()?),
            ));
            rest = after;
        }
        Some(Entry {
            ir_key: *ir_key,
            base_srcloc_delta,
            needs_gc_heap: needs_gc_heap == 1,
            names,
        })
    }
}

/// Hashes `value` into `sha` through `Hash`.
pub(crate) fn hash_into(sha: &mut Sha256, value: &impl Hash) {
    let mut hasher = Sha256Hasher(core::mem::take(sha));
    value.hash(&mut hasher);
    *sha = hasher.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_a_damaged_one_is_refused() {
        let entry = Entry {
            ir_key: [7; 32],
            base_srcloc_delta: Some(3),
            needs_gc_heap: false,
            names: vec![UserExternalName::new(1, 2), UserExternalName::new(0, 9)],
        };
        let bytes = entry.encode();
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back.ir_key, [7; 32]);
        assert_eq!(back.base_srcloc_delta, Some(3));
        assert_eq!(back.names, entry.names);
        assert!(Entry::decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(Entry::decode(&bytes[1..]).is_none());
    }
}
