//! Golden tests for the manifest's user-facing text.
//!
//! Every `tests/manifest_ui/<case>.toml` is checked with
//! `Manifest::from_str`, as if read from that folder (so `empty.wasm` and
//! `public/` next to the cases exist, and anything else is missing):
//! - a case with `<case>.err` must fail with exactly that text (the Display
//!   of `Problems`, file shown as `<case>.toml`);
//! - a case with `<case>.json` must load, and serialize to exactly that.
//!
//! In both, the cases' folder is written `$DIR`. Run with `BLESS=1` to
//! (re)write the expected files from what the code does now, then review the
//! diff like code.

use std::fs;
use std::path::{Path, PathBuf};

use wasmhost::config::manifest::Manifest;

#[test]
fn manifest_ui() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifest_ui");
    let bless = std::env::var_os("BLESS").is_some_and(|v| v != "0");
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/manifest_ui exists")
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", dir.display());

    let mut failures = Vec::new();
    for case in &cases {
        if let Err(failure) = check(&dir, case, bless) {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} manifest_ui cases failed (run with BLESS=1 to accept the new output):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn check(dir: &Path, case: &Path, bless: bool) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(case).map_err(|e| format!("{name}: {e}"))?;
    let shown_dir = dir.display().to_string();
    let (actual, ext, other_ext) = match Manifest::from_str(&text, case) {
        Ok(manifest) => {
            let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
            (json.replace(&shown_dir, "$DIR"), "json", "err")
        }
        Err(problems) => {
            let mut problems = problems;
            for problem in &mut problems.0 {
                problem.file = PathBuf::from(&name);
            }
            (
                problems.to_string().replace(&shown_dir, "$DIR"),
                "err",
                "json",
            )
        }
    };
    let actual = format!("{actual}\n");
    let expected_path = case.with_extension(ext);
    let other_path = case.with_extension(other_ext);

    if bless {
        fs::write(&expected_path, &actual).map_err(|e| format!("{name}: {e}"))?;
        if other_path.exists() {
            fs::remove_file(&other_path).map_err(|e| format!("{name}: {e}"))?;
        }
        return Ok(());
    }
    match fs::read_to_string(&expected_path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(expected) => Err(format!(
            "{name}: output differs from {}\n--- expected\n{expected}--- actual\n{actual}",
            expected_path.file_name().unwrap().to_string_lossy()
        )),
        Err(_) if other_path.exists() => Err(format!(
            "{name}: expected the outcome in {}, but got:\n{actual}",
            other_path.file_name().unwrap().to_string_lossy()
        )),
        Err(_) => Err(format!(
            "{name}: no expected .err or .json file; got:\n{actual}"
        )),
    }
}
