//! `wasmhost new NAME [--template http|router|json-api]`: a guest project
//! that builds with `cargo build --release` and serves with
//! `wasmhost serve wasmhost.toml`, with no edits.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{NewArgs, Template};

/// Where this binary was built from: the SDK the new project depends on,
/// unless `--sdk` says otherwise.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// Creates the project folder `NAME`.
pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let name = args.name.as_str();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.starts_with('-')
    {
        anyhow::bail!(
            "`{name}` is not a valid service name: use lowercase letters, digits and `-`, like `my-service`"
        );
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        anyhow::bail!(
            "`{}` already exists: pick another name or folder",
            dir.display()
        );
    }
    let sdk = match &args.sdk {
        Some(sdk) => sdk.clone(),
        None => PathBuf::from(BUILT_SDK),
    };
    let sdk = std::fs::canonicalize(&sdk).with_context(|| {
        format!(
            "the wasmhost SDK sources are not at `{}`: pass `--sdk PATH` (the repository's `sdk/` folder)",
            sdk.display()
        )
    })?;
    let template = args.template.unwrap_or(Template::Http);
    for (path, text) in files(name, &sdk, template) {
        write(&dir.join(path), &text)?;
    }
    // A closed stdout (`| head`) must not turn success into a panic.
    let _ = writeln!(
        std::io::stdout(),
        "created `{}` ({} template)\n\n  cd {}\n  cargo build --release\n  wasmhost serve wasmhost.toml\n  curl localhost:8080/{name}",
        dir.display(),
        template.name(),
        dir.display()
    );
    Ok(())
}

fn files(name: &str, sdk: &Path, template: Template) -> Vec<(&'static str, String)> {
    let source = match template {
        Template::Http => include_str!("../../templates/http.rs"),
        Template::Router => include_str!("../../templates/router.rs"),
        Template::JsonApi => include_str!("../../templates/json_api.rs"),
        Template::Kv => include_str!("../../templates/kv.rs"),
    };
    let stores = match template {
        Template::Kv => "key_value_stores = [\"default\"]\n",
        _ => "",
    };
    let serde = match template {
        Template::JsonApi => "serde = { version = \"1\", features = [\"derive\"] }\n",
        _ => "",
    };
    let crate_name = name.replace('-', "_");
    let cargo_toml = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmhost-sdk = {{ path = "{sdk}" }}
{serde}
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# Not part of any enclosing workspace.
[workspace]
"#,
        sdk = sdk.display()
    );
    let config = "# Build for WASI 0.2 by default; `cargo test` natively with\n\
                  # `cargo test --target x86_64-unknown-linux-gnu` (or your host's triple).\n\
                  [build]\ntarget = \"wasm32-wasip2\"\n"
        .to_owned();
    let manifest = format!(
        r#"# Serve with: wasmhost serve wasmhost.toml
[host]
listen = "127.0.0.1:8080"

[[service]]
name = "{name}"
component = "target/wasm32-wasip2/release/{crate_name}.wasm"
route = "/{name}"
{stores}"#
    );
    let gitignore = "target/\n.wasmhost-cache/\n".to_owned();
    vec![
        ("Cargo.toml", cargo_toml),
        (".cargo/config.toml", config),
        ("src/lib.rs", source.replace("{{name}}", name)),
        ("wasmhost.toml", manifest),
        (".gitignore", gitignore),
    ]
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating `{}`", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing `{}`", path.display()))
}
