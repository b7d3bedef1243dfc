//! One reference resolved and its component pulled into the cache:
//! manifest (or manifest list), the Wasm artifact checks, the layer
//! streamed, counted and hashed.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt as _;
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use super::auth;
use super::reference::Parts;
use super::store::{blob_path, cached, manifest_path, tag_path, write_atomically};
use super::{WASM_CONFIG, WASM_LAYER};
use crate::config::manifest::{HostConfig, OciSource};

/// Why a pull failed, as the `component` field's problem says it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PullError(pub(super) String);

fn fail<T>(message: impl Into<String>) -> Result<T, PullError> {
    Err(PullError(message.into()))
}

/// Where a component came from.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The component file in the cache.
    pub path: PathBuf,
    /// The manifest digest the reference resolved to.
    pub digest: String,
    /// Set when the registry was not asked or could not answer and the
    /// cache served: why, for a warning.
    pub offline: Option<String>,
}

/// Pulls components into the cache, with the `[host]` settings.
pub struct Puller {
    /// For registries reached over HTTPS, made on first use: its roots
    /// take ~30 ms to load, which a start from the cache never pays.
    tls: std::sync::OnceLock<Result<Client, String>>,
    /// For `insecure_registries`, made on first use (no roots).
    plain: std::sync::OnceLock<Result<Client, String>>,
    insecure: Vec<String>,
    cache_dir: PathBuf,
    /// `[host] max_artifact_size`.
    max_size: u64,
    /// `[host] pull_timeout`.
    timeout: Duration,
}

impl Puller {
    /// A puller with `host`'s settings: components kept in its `cache_dir`,
    /// plain HTTP to its `insecure_registries` (credentials are read as
    /// each pull starts: a reload sees changed ones).
    pub fn new(host: &HostConfig) -> Result<Puller, PullError> {
        Ok(Puller {
            tls: std::sync::OnceLock::new(),
            plain: std::sync::OnceLock::new(),
            insecure: host.insecure_registries.clone(),
            cache_dir: host.cache_dir.clone(),
            max_size: host.max_artifact_size,
            timeout: host.pull_timeout,
        })
    }

    /// The client for `reference`'s registry.
    fn client(&self, reference: &Reference) -> Result<&Client, PullError> {
        let plain = self
            .insecure
            .iter()
            .any(|r| r == reference.resolve_registry());
        let (cell, roots) = if plain {
            (&self.plain, Vec::new())
        } else {
            (
                &self.tls,
                Vec::from(webpki_root_certs::TLS_SERVER_ROOT_CERTS),
            )
        };
        cell.get_or_init(|| {
            // reqwest is built without a crypto provider: the host's is ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = oci_client::client::ClientConfig {
                protocol: oci_client::client::ClientProtocol::HttpsExcept(self.insecure.clone()),
                // Only these roots (the image has no system store).
                tls_certs_only: roots
                    .iter()
                    .map(|cert| oci_client::client::Certificate {
                        encoding: oci_client::client::CertificateEncoding::Der,
                        data: cert.to_vec(),
                    })
                    .collect(),
                platform_resolver: None,
                connect_timeout: Some(Duration::from_secs(10)),
                read_timeout: Some(Duration::from_secs(30)),
                ..Default::default()
            };
            Client::try_from(config).map_err(|err| format!("cannot make a registry client: {err}"))
        })
        .as_ref()
        .map_err(|err| PullError(err.clone()))
    }

    /// The manifest digest a tag names now (a `HEAD` request).
    pub async fn current_digest(&self, reference: &str) -> Result<String, PullError> {
        let reference = Parts::parse(reference)
            .map_err(|err| PullError(format!("not an OCI reference: {err}")))?
            .reference();
        let auth = auth::for_registry(reference.resolve_registry());
        match tokio::time::timeout(
            Duration::from_secs(30),
            self.client(&reference)?
                .fetch_manifest_digest(&reference, &auth),
        )
        .await
        {
            Ok(Ok(digest)) => Ok(digest),
            Ok(Err(err)) => fail(refusal("manifest", &reference, &err)),
            Err(_) => fail("no answer within 30s"),
        }
    }

    /// Resolves `source` and makes sure its component is in the cache.
    pub async fn pull(&self, source: &OciSource) -> Result<Pulled, PullError> {
        let reference = Parts::parse(&source.reference)
            .map_err(|err| PullError(format!("not an OCI reference: {err}")))?
            .reference();
        // A digest whose component is cached needs no registry at all.
        if let Some(digest) = reference.digest()
            && let Some(path) = cached(&self.cache_dir, digest)
        {
            return Ok(Pulled {
                path,
                digest: digest.to_owned(),
                offline: None,
            });
        }
        match tokio::time::timeout(self.timeout, self.fetch(&reference)).await {
            Ok(Ok(pulled)) => Ok(pulled),
            Ok(Err(err)) => self.fallback(source, &reference, err),
            Err(_) => self.fallback(
                source,
                &reference,
                PullError(format!(
                    "not pulled within {:?} (`[host] pull_timeout`)",
                    self.timeout
                )),
            ),
        }
    }

    /// A tag the registry could not resolve: the digest it last served, if
    /// its component is cached.
    fn fallback(
        &self,
        source: &OciSource,
        reference: &Reference,
        err: PullError,
    ) -> Result<Pulled, PullError> {
        if reference.digest().is_some() {
            return Err(err);
        }
        let remembered = std::fs::read_to_string(tag_path(&self.cache_dir, &source.reference))
            .ok()
            .map(|d| d.trim().to_owned());
        match remembered.and_then(|digest| Some((cached(&self.cache_dir, &digest)?, digest))) {
            Some((path, digest)) => Ok(Pulled {
                path,
                offline: Some(format!(
                    "{err}; serving {digest}, the digest it last served, from the cache"
                )),
                digest,
            }),
            None => Err(err),
        }
    }

    async fn fetch(&self, reference: &Reference) -> Result<Pulled, PullError> {
        let auth = auth::for_registry(reference.resolve_registry());
        let client = self.client(reference)?;
        let (manifest, digest) = client
            .pull_manifest(reference, &auth)
            .await
            .map_err(|err| PullError(refusal("manifest", reference, &err)))?;
        let (image, digest) = match manifest {
            OciManifest::Image(image) => (image, digest),
            OciManifest::ImageIndex(index) => {
                let entry = index.manifests.iter().find(|entry| {
                    entry.artifact_type.as_deref() == Some(WASM_CONFIG)
                        || entry
                            .platform
                            .as_ref()
                            .is_some_and(|p| p.architecture.to_string() == "wasm")
                });
                let Some(entry) = entry else {
                    return fail(format!(
                        "{digest} is a manifest list with no wasm entry (no platform \
                         `wasm` and no artifact type `{WASM_CONFIG}`)"
                    ));
                };
                let child = reference.clone_with_digest(entry.digest.clone());
                match client.pull_manifest(&child, &auth).await {
                    Ok((OciManifest::Image(image), digest)) => (image, digest),
                    Ok((OciManifest::ImageIndex(_), _)) => {
                        return fail(format!(
                            "{}: a manifest list inside a manifest list",
                            entry.digest
                        ));
                    }
                    Err(err) => {
                        return fail(refusal("manifest", &child, &err));
                    }
                }
            }
        };
        let layer = wasm_layer(&image, &digest, self.max_size)?;
        if let Some(path) = blob_path(&self.cache_dir, &layer.digest).filter(|p| p.is_file()) {
            self.remember_manifest(&digest, &layer.digest)?;
            return Ok(Pulled {
                path,
                digest,
                offline: None,
            });
        }
        let path = self.download(reference, layer).await?;
        self.remember_manifest(&digest, &layer.digest)?;
        Ok(Pulled {
            path,
            digest,
            offline: None,
        })
    }

    fn remember_manifest(&self, digest: &str, layer: &str) -> Result<(), PullError> {
        let Some(path) = manifest_path(&self.cache_dir, digest) else {
            return fail(format!(
                "`{digest}`: only sha256 manifest digests are supported"
            ));
        };
        write_atomically(&path, layer.as_bytes()).map_err(|err| {
            PullError(format!(
                "cannot write the cache at {}: {err}",
                path.display()
            ))
        })
    }

    /// Streams the layer into the cache: counted against its declared size
    /// and the limit as it comes, hashed, and moved into place only when
    /// both match.
    async fn download(
        &self,
        reference: &Reference,
        layer: &oci_client::manifest::OciDescriptor,
    ) -> Result<PathBuf, PullError> {
        let Some(path) = blob_path(&self.cache_dir, &layer.digest) else {
            return fail(format!(
                "`{}`: only sha256 layer digests are supported",
                layer.digest
            ));
        };
        let expected = u64::try_from(layer.size).unwrap_or(0);
        let mut stream = self
            .client(reference)?
            .pull_blob_stream(reference, layer)
            .await
            .map_err(|err| PullError(refusal("component's blob", reference, &err)))?;
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // oci-client checks the digest too, at the end; ours is the
                // message that names both.
                Err(err)
                    if err
                        .get_ref()
                        .is_some_and(|e| e.is::<oci_client::errors::DigestError>()) =>
                {
                    break;
                }
                Err(err) => {
                    return fail(format!(
                        "the component's blob broke off after {} of {expected} bytes: {err}",
                        bytes.len()
                    ));
                }
            };
            if (bytes.len() + chunk.len()) as u64 > expected {
                return fail(format!(
                    "the registry sent more than the {expected} bytes the manifest declares"
                ));
            }
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
        }
        if (bytes.len() as u64) < expected {
            return fail(format!(
                "truncated: the registry sent {} of the {expected} bytes the manifest declares",
                bytes.len()
            ));
        }
        let actual = format!("sha256:{:x}", hasher.finalize());
        if actual != layer.digest {
            return fail(format!(
                "digest mismatch: the manifest names {} but the bytes are {actual}",
                layer.digest
            ));
        }
        write_atomically(&path, &bytes).map_err(|err| {
            PullError(format!(
                "cannot write the cache at {}: {err}",
                path.display()
            ))
        })?;
        Ok(path)
    }
}

/// What the registry's refusal of `what` means, for the problem.
fn refusal(
    what: &str,
    reference: &Reference,
    err: &oci_client::errors::OciDistributionError,
) -> String {
    use oci_client::errors::OciDistributionError as E;
    match err {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => format!(
            "the registry answered 401 Unauthorized for the {what}: no credentials for `{}` in \
             $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json, or \
             they were refused",
            reference.resolve_registry()
        ),
        E::RequestError(err) => format!(
            "cannot reach the registry for the {what}: {err} (for a registry without TLS, \
             list `{}` in `[host] insecure_registries`)",
            reference.resolve_registry()
        ),
        other => format!("the registry refused the {what}: {other}"),
    }
}

/// The manifest's one component layer, if it is a Wasm artifact within the
/// size limit.
fn wasm_layer<'a>(
    image: &'a OciImageManifest,
    digest: &str,
    max_size: u64,
) -> Result<&'a oci_client::manifest::OciDescriptor, PullError> {
    if image.config.media_type != WASM_CONFIG {
        return fail(format!(
            "{digest} is not a Wasm component artifact: its config is `{}`, not `{WASM_CONFIG}` \
             (push components with `wkg oci push`)",
            image.config.media_type
        ));
    }
    let [layer] = &image.layers[..] else {
        return fail(format!(
            "{digest} has {} layers; a Wasm component artifact has exactly one",
            image.layers.len()
        ));
    };
    if layer.media_type != WASM_LAYER {
        return fail(format!(
            "{digest}: its layer is `{}`, not `{WASM_LAYER}`",
            layer.media_type
        ));
    }
    if layer.size < 0 || layer.size as u64 > max_size {
        return fail(format!(
            "{digest}: the component is {} bytes, over the {max_size}-byte limit \
             (`[host] max_artifact_size`)",
            layer.size
        ));
    }
    Ok(layer)
}
