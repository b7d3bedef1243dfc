//! Registry credentials from the files Docker and Podman write, so a
//! Kubernetes `imagePullSecret` mounted as a file works: the first of
//! `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
//! `~/.docker/config.json` that has an entry for the registry. An entry is
//! `{"auth": base64("user:password")}` or `{"username", "password"}`.
//! Credential helpers (`credsStore`, `credHelpers`) are not run.
//! Credentials never reach a log line.

use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

/// The files looked in, in order.
fn files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(file) = std::env::var_os("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        files.push(PathBuf::from(dir).join("config.json"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".docker/config.json"));
    }
    files
}

/// The credentials for `registry` (`host[:port]`), or anonymous.
pub fn for_registry(registry: &str) -> RegistryAuth {
    files()
        .iter()
        .find_map(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            let config: serde_json::Value = match serde_json::from_str(&text) {
                Ok(config) => config,
                Err(err) => {
                    tracing::warn!(file = %file.display(), error = %err, "a registry auth file is not JSON; skipped");
                    return None;
                }
            };
            entry(&config, registry)
        })
        .unwrap_or(RegistryAuth::Anonymous)
}

/// The entry of `config` (a Docker/Podman auth file) for `registry`.
fn entry(config: &serde_json::Value, registry: &str) -> Option<RegistryAuth> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, entry)| {
        // Keys may carry a scheme and a path (`https://host/v1/`).
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = key.split('/').next().unwrap_or_default();
        (host == registry).then_some(entry)
    })?;
    if let Some(encoded) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded.trim()))
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        return Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_host_in_either_form() {
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "127.0.0.1:5000": {"auth": "dGVzdHVzZXI6dGVzdHBhc3N3b3Jk"},
                "ghcr.io": {"username": "me", "password": "p:w"}
            }
        });
        let basic = |user: &str, password: &str| {
            Some(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
        };
        assert_eq!(
            entry(&config, "127.0.0.1:5000"),
            basic("testuser", "testpassword")
        );
        assert_eq!(entry(&config, "index.docker.io"), basic("hub", "secret"));
        assert_eq!(entry(&config, "ghcr.io"), basic("me", "p:w"));
        assert_eq!(entry(&config, "quay.io"), None);
    }
}
