//! `oci://` references: checked when the manifest is, taken apart by the
//! distribution grammar, and handed to oci-client as its `Reference`.

use oci_client::Reference;

use crate::config::manifest::OciSource;

/// A reference from the manifest, checked: `oci://` and a well-formed OCI
/// reference after it. Its error is the message for the `component` field.
pub fn parse(component: &str) -> Option<Result<OciSource, String>> {
    let reference = component.strip_prefix("oci://")?;
    Some(match Parts::parse(reference) {
        Ok(_) => Ok(OciSource {
            reference: reference.to_owned(),
            digest: None,
        }),
        Err(why) => Err(format!("`{component}` is not an OCI reference: {why}")),
    })
}

/// An OCI reference taken apart by the distribution grammar, by hand:
/// oci-spec's parser compiles a Unicode regex on first use, which cost
/// every start ~30 ms (more than the rest of a cold start from the cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parts {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Parts {
    pub(super) fn parse(reference: &str) -> Result<Parts, String> {
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        if let Some(digest) = digest {
            let (algorithm, hex) = digest.split_once(':').ok_or_else(|| {
                format!("`{digest}` is not a digest like `sha256:<64 hex digits>`")
            })?;
            let hex_len = match algorithm {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err(format!("`{algorithm}` digests are not supported")),
            };
            if hex.len() != hex_len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(format!(
                    "`{digest}`: a {algorithm} digest is {hex_len} lowercase hex digits"
                ));
            }
        }
        let (registry, path) = name.split_once('/').ok_or_else(|| {
            "name the registry, like `oci://ghcr.io/acme/hello:1.0` (wasmhost does not assume \
             Docker Hub)"
                .to_owned()
        })?;
        if !(registry.contains(['.', ':']) || registry == "localhost")
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        {
            return Err(format!(
                "`{registry}` is not a registry: name one, like `ghcr.io` or `127.0.0.1:5000` \
                 (wasmhost does not assume Docker Hub)"
            ));
        }
        // The tag follows the last `:` after the last `/`.
        let last = path.rsplit('/').next().unwrap_or_default();
        let (repository, tag) = match last.rsplit_once(':') {
            Some((_, tag)) => (&path[..path.len() - tag.len() - 1], Some(tag)),
            None => (path, None),
        };
        let component_ok = |c: &str| {
            let bytes = c.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes.iter().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if repository.is_empty() || !repository.split('/').all(component_ok) {
            return Err(format!(
                "`{repository}` is not a repository: lowercase letters, digits and `._-`, \
                 in `/`-separated parts"
            ));
        }
        if let Some(tag) = tag
            && (tag.is_empty()
                || tag.len() > 128
                || tag.starts_with(['.', '-'])
                || !tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
        {
            return Err(format!("`{tag}` is not a tag: up to 128 of `A-Za-z0-9_.-`"));
        }
        if tag.is_none() && digest.is_none() {
            return Err("give a tag (`:1.0`) or a digest (`@sha256:…`)".to_owned());
        }
        Ok(Parts {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// The same reference as oci-client takes it (built, not parsed again).
    pub(super) fn reference(&self) -> Reference {
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone(),
                digest.clone(),
            ),
            (None, Some(digest)) => Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.clone(),
            ),
            (tag, None) => Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_checked_when_the_manifest_is() {
        assert_eq!(parse("hello.wasm"), None);
        let ok = parse("oci://ghcr.io/acme/hello:1.0").unwrap().unwrap();
        assert_eq!(ok.reference, "ghcr.io/acme/hello:1.0");
        let pinned = format!("oci://127.0.0.1:5000/a/b@sha256:{}", "ab".repeat(32));
        assert!(parse(&pinned).unwrap().is_ok());
        assert!(parse("oci://localhost/hello:v1").unwrap().is_ok());
        let bare = parse("oci://hello:v1").unwrap().unwrap_err();
        assert!(bare.contains("name the registry"), "{bare}");
        let hub = parse("oci://library/hello:v1").unwrap().unwrap_err();
        assert!(hub.contains("is not a registry"), "{hub}");
        let bad = parse("oci://ghcr.io/Acme/Hello:v1").unwrap().unwrap_err();
        assert!(bad.contains("is not a repository"), "{bad}");
        let short = parse("oci://ghcr.io/a/b@sha256:abc").unwrap().unwrap_err();
        assert!(short.contains("64 lowercase hex digits"), "{short}");
        let untagged = parse("oci://ghcr.io/a/b").unwrap().unwrap_err();
        assert!(untagged.contains("give a tag"), "{untagged}");
        let tag = parse("oci://ghcr.io/a/b:-x").unwrap().unwrap_err();
        assert!(tag.contains("is not a tag"), "{tag}");
        // What oci-spec's own parser makes of the same references.
        for text in [
            "ghcr.io/acme/hello:1.0",
            "127.0.0.1:5000/a/b-c/d_e:v1.2-rc",
            &format!("localhost/x@sha256:{}", "0f".repeat(32)),
            &format!("reg.io:443/x/y:t@sha256:{}", "a1".repeat(32)),
        ] {
            let ours = Parts::parse(text).unwrap().reference();
            let theirs = Reference::try_from(text).unwrap();
            assert_eq!(
                (
                    ours.registry(),
                    ours.repository(),
                    ours.tag(),
                    ours.digest()
                ),
                (
                    theirs.registry(),
                    theirs.repository(),
                    theirs.tag(),
                    theirs.digest()
                ),
                "{text}"
            );
        }
    }
}
