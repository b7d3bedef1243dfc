//! The incremental compilation cache (`<cache_dir>/functions/`): what a
//! recompile reuses, and that reused code is the code a fresh compile makes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::reload::{V1, app_with_component, replace_by_rename, version_of};
use crate::support::*;

/// `bytes` plus a custom section: the same code, a new sha256 (a rebuild
/// that only changed metadata).
fn with_custom_section(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"wasmhost-test";
    let mut payload = leb(name.len() as u64);
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.extend(leb(payload.len() as u64));
    out.extend(payload);
    out
}

/// Hex sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `functions_reused` and `functions_compiled` of the `component
/// compiled` event of `bytes`, once it is logged.
fn compiled_event(host: &Host, bytes: &[u8]) -> (u64, u64) {
    let counts = compiled_counts(host, bytes);
    (counts[0], counts[1])
}

/// `functions_reused`, `functions_compiled` and `functions_untranslated`
/// of the `component compiled` event of `bytes`, once it is logged.
fn compiled_counts(host: &Host, bytes: &[u8]) -> [u64; 3] {
    let sha256 = sha256_hex(bytes);
    let event = host
        .wait_for_log(Duration::from_secs(10), |e| {
            e["message"] == "component compiled" && e["sha256"] == sha256.as_str()
        })
        .unwrap_or_else(|| panic!("no `component compiled` event for {sha256}"));
    let count = |field: &str| {
        event[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} in {event}"))
    };
    [
        count("functions_reused"),
        count("functions_compiled"),
        count("functions_untranslated"),
    ]
}

#[test]
fn a_recompile_of_unchanged_code_reuses_its_compiled_functions() {
    let (app, component) = app_with_component(V1);
    let mut first = app.host_key("cache_dir", "\"own-cache\"").start();
    let v1 = std::fs::read(V1).unwrap();
    let (_, first_compiled) = compiled_event(&first, &v1);
    assert!(
        first_compiled > 100,
        "hello compiles {first_compiled} functions"
    );
    let functions = component.parent().unwrap().join("own-cache/functions");

    // A reload of a rebuilt component (same code, new bytes) takes the
    // first compile's functions. They are written in the background, so a
    // few may not be in the cache yet.
    let rebuilt = with_custom_section(&v1, "rebuild 1");
    replace_by_rename(&component, &rebuilt);
    let (reused, compiled) = compiled_event(&first, &rebuilt);
    assert!(
        reused > first_compiled / 2 && compiled * 4 < reused,
        "reused {reused}, compiled {compiled} (first compile: {first_compiled})"
    );
    let resp = first.send(get("/svc"));
    assert_eq!((resp.status, version_of(&resp)), (200, "v1"));

    // Stopping writes every entry out; the next process reads the packs and
    // compiles no function of unchanged code (vendor/wasmtime-internal-
    // cranelift/PATCHED.md: none gets a new key).
    first.signal("TERM");
    first
        .wait_exit(Duration::from_secs(30))
        .expect("the host stops");
    assert!(functions.is_dir(), "entries are in {}", functions.display());
    let again = with_custom_section(&v1, "rebuild 2");
    std::fs::write(&component, &again).unwrap();
    let second = Host::start(StartOptions {
        manifest: &first.manifest,
        args: Vec::new(),
        env: Vec::new(),
    });
    let (reused, compiled) = compiled_event(&second, &again);
    assert_eq!(compiled, 0, "reused {reused}");
    assert!(reused > 100, "reused {reused}");
    let resp = second.send(get("/svc"));
    assert_eq!((resp.status, version_of(&resp)), (200, "v1"));
}

#[test]
fn incremental_compilation_off_compiles_every_function_and_keeps_none() {
    let (app, component) = app_with_component(V1);
    let host = app
        .host_key("cache_dir", "\"own-cache\"")
        .host_key("incremental_compilation", "false")
        .start();
    let v1 = std::fs::read(V1).unwrap();
    assert_eq!(compiled_event(&host, &v1), (0, 0), "no function cache");
    let rebuilt = with_custom_section(&v1, "rebuild 1");
    replace_by_rename(&component, &rebuilt);
    assert_eq!(compiled_event(&host, &rebuilt), (0, 0));
    let cache = component.parent().unwrap().join("own-cache");
    assert!(cache.is_dir(), "the compiled-component cache is still used");
    assert!(!cache.join("functions").exists());
}

#[test]
fn an_edit_translates_only_the_changed_functions_and_makes_the_code_a_fresh_compile_makes() {
    let (app, component) = app_with_component(V1);
    let first = app.host_key("cache_dir", "\"own-cache\"").start();
    let v1 = std::fs::read(V1).unwrap();
    compiled_event(&first, &v1);

    // Three functions get longer: every function after them in the module
    // moves, which the reused code's source locations must follow.
    let edited = with_changed_functions(&v1, 3, 1_000_003);
    replace_by_rename(&component, &edited);
    let [reused, compiled, untranslated] = compiled_counts(&first, &edited);
    assert!(
        untranslated > 200 && compiled <= 3 && untranslated <= reused,
        "reused {reused}, compiled {compiled}, untranslated {untranslated}"
    );
    let resp = first.send(get("/svc"));
    assert_eq!((resp.status, version_of(&resp)), (200, "v1"));

    // The machine code (and its trap tables, address maps and unwind
    // information) is byte for byte what a compile without any cache makes.
    let fresh = TestApp::new()
        .host_key("cache_dir", "\"fresh-cache\"")
        .service(Svc::new("svc", "svc.wasm").route("/svc"));
    std::fs::write(fresh.dir().join("svc.wasm"), &edited).unwrap();
    let second = fresh.start();
    assert_eq!(compiled_counts(&second, &edited)[2], 0, "nothing to reuse");
    let reused_code = artifact(&component.parent().unwrap().join("own-cache"), &edited);
    let fresh_code = artifact(
        &second.manifest.parent().unwrap().join("fresh-cache"),
        &edited,
    );
    assert!(
        reused_code == fresh_code,
        "artifacts differ ({} and {} bytes)",
        reused_code.len(),
        fresh_code.len()
    );
}

/// The compiled artifact of `bytes` in cache folder `cache`, once written
/// (it is written in the background, and renamed into place when whole).
fn artifact(cache: &Path, bytes: &[u8]) -> Vec<u8> {
    let prefix = format!("{}-", sha256_hex(bytes));
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(cache).ok()?.find_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_str()?;
            (name.starts_with(&prefix) && name.ends_with(".cwasm")).then_some(path)
        })
    };
    poll_until(Duration::from_secs(10), || find().is_some())
        .unwrap_or_else(|| panic!("no artifact {prefix}* in {}", cache.display()));
    std::fs::read(find().unwrap()).unwrap()
}

/// Component `bytes` with `changed` function bodies of its largest core
/// module edited: `i32.const constant; drop` before each one's final `end`.
fn with_changed_functions(bytes: &[u8], changed: usize, constant: i32) -> Vec<u8> {
    let mut parts = sections(bytes);
    let largest = parts
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| *id == 1)
        .max_by_key(|(_, (_, payload))| payload.len())
        .map(|(i, _)| i)
        .expect("a component with a core module");
    let module = &parts[largest].1;
    let mut module_sections = sections(module);
    let code = module_sections
        .iter_mut()
        .find(|(id, _)| *id == 10)
        .expect("a code section");
    let (count, mut at) = read_leb(&code.1, 0);
    let mut bodies = Vec::new();
    for i in 0..count {
        let (len, start) = read_leb(&code.1, at);
        let mut body = code.1[start..start + len as usize].to_vec();
        at = start + len as usize;
        if (i as usize) < changed {
            assert_eq!(body.pop(), Some(0x0b), "a body ends with `end`");
            body.push(0x41); // i32.const
            body.extend(sleb(i64::from(constant)));
            body.extend([0x1a, 0x0b]); // drop, end
        }
        bodies.push(body);
    }
    let mut payload = leb(count);
    for body in bodies {
        payload.extend(leb(body.len() as u64));
        payload.extend(body);
    }
    code.1 = payload;
    parts[largest].1 = encode(&module[..8], &module_sections);
    encode(&bytes[..8], &parts)
}

fn sections(binary: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < binary.len() {
        let id = binary[at];
        let (len, start) = read_leb(binary, at + 1);
        out.push((id, binary[start..start + len as usize].to_vec()));
        at = start + len as usize;
    }
    out
}

fn encode(header: &[u8], sections: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = header.to_vec();
    for (id, payload) in sections {
        out.push(*id);
        out.extend(leb(payload.len() as u64));
        out.extend(payload);
    }
    out
}

fn read_leb(bytes: &[u8], mut at: usize) -> (u64, usize) {
    let (mut value, mut shift) = (0u64, 0);
    loop {
        let byte = bytes[at];
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return (value, at);
        }
    }
}

fn leb(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        out.push(byte | if value == 0 { 0 } else { 0x80 });
        if value == 0 {
            return out;
        }
    }
}

fn sleb(mut value: i64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        out.push(byte | if done { 0 } else { 0x80 });
        if done {
            return out;
        }
    }
}
