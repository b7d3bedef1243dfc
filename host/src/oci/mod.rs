//! Components pulled from OCI registries: `component = "oci://REGISTRY/REPO:TAG"`
//! or `"oci://REGISTRY/REPO@sha256:DIGEST"`.
//!
//! The artifact is the CNCF "Wasm OCI Artifact" layout that `wkg oci push`
//! writes: an OCI image manifest whose config is
//! `application/vnd.wasm.config.v0+json` and whose one layer is
//! `application/wasm`. [`resolve`] turns every such reference of a loaded
//! manifest into a file in the cache, before anything else reads it, so the
//! rest of the host (compilation, the precompiled cache, reload) sees a
//! component file like any other.
//!
//! The cache, under `<cache_dir>/oci/`, is content-addressed:
//! - `blobs/sha256/<hex>.wasm`: a component, written only after its bytes
//!   were counted and hashed against the manifest's layer digest (the
//!   compiled-artifact cache keys on the same sha256, so a pulled component
//!   compiles once per engine, ever);
//! - `manifests/sha256/<hex>`: the layer digest a manifest digest names, so a
//!   digest-pinned reference starts with the registry down;
//! - `tags/<reference>`: the manifest digest a tag last served successfully
//!   (written by [`remember_served`]), which a tag falls back to, with a
//!   warning, when the registry cannot be reached at start.

mod auth;
pub mod poll;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};

use crate::config::manifest::{HostConfig, Manifest, OciSource};
use crate::config::problem::{Problem, Problems};

/// The config media type of a Wasm OCI artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The media type of its one layer.
pub const WASM_LAYER: &str = "application/wasm";

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
struct Parts {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Parts {
    fn parse(reference: &str) -> Result<Parts, String> {
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
    fn reference(&self) -> Reference {
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

/// The last pull error of each service (cleared by its next success), for
/// `/admin/services`: pulls at reload and polls that could not reach the
/// registry.
fn pull_errors() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static ERRORS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, String>>,
    > = std::sync::OnceLock::new();
    ERRORS.get_or_init(Default::default)
}

/// Records the outcome of `service`'s last pull or poll.
pub(crate) fn note_pull(service: &str, error: Option<String>) {
    let mut errors = pull_errors()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match error {
        Some(error) => {
            errors.insert(service.to_owned(), error);
        }
        None => {
            errors.remove(service);
        }
    }
}

/// `service`'s last pull error, unless a pull succeeded since.
pub fn last_pull_error(service: &str) -> Option<String> {
    pull_errors()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(service)
        .cloned()
}

/// Why a pull failed, as the `component` field's problem says it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PullError(String);

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

/// The `oci/` folder of the cache.
fn root(cache_dir: &Path) -> PathBuf {
    cache_dir.join("oci")
}

fn hex_of(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn blob_path(cache_dir: &Path, layer: &str) -> Option<PathBuf> {
    Some(
        root(cache_dir)
            .join("blobs/sha256")
            .join(format!("{}.wasm", hex_of(layer)?)),
    )
}

fn manifest_path(cache_dir: &Path, digest: &str) -> Option<PathBuf> {
    Some(
        root(cache_dir)
            .join("manifests/sha256")
            .join(hex_of(digest)?),
    )
}

/// The file that remembers a tag's last served digest.
fn tag_path(cache_dir: &Path, reference: &str) -> PathBuf {
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
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
fn cached(cache_dir: &Path, digest: &str) -> Option<PathBuf> {
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

/// Pulls every `oci://` component of `manifest` (concurrently, on a
/// runtime of its own, so any thread may call it) and points each
/// service's `component` at its cached file. Each failure is a problem
/// about the service's `component` field, returned; that service's
/// `component` stays empty.
pub fn resolve(manifest: &mut Manifest) -> Vec<Problem> {
    let wanted: Vec<(usize, OciSource)> = manifest
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.oci.clone()?)))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let problem = |manifest: &Manifest, i: usize, message: String| {
        let service = &manifest.services[i];
        Problem {
            file: manifest.path.clone(),
            line: service.component_at.0,
            col: service.component_at.1,
            service: Some(service.name.clone()),
            field: Some("component".into()),
            message,
        }
    };
    let puller = match Puller::new(&manifest.host) {
        Ok(puller) => puller,
        Err(err) => {
            return wanted
                .iter()
                .map(|(i, _)| problem(manifest, *i, err.to_string()))
                .collect();
        }
    };
    let results = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| PullError(format!("cannot start a runtime to pull: {err}")))?;
                Ok::<_, PullError>(
                    runtime.block_on(futures::future::join_all(wanted.iter().map(
                        |(i, source)| {
                            let puller = &puller;
                            let name = manifest.services[*i].name.clone();
                            async move {
                                let started = Instant::now();
                                let result = puller.pull(source).await;
                                crate::observe::metrics::component_pulled(
                                    &name,
                                    match &result {
                                        Ok(p) if p.offline.is_some() => "cache",
                                        Ok(_) => "ok",
                                        Err(_) => "error",
                                    },
                                    started.elapsed(),
                                );
                                result
                            }
                        },
                    ))),
                )
            })
            .join()
            .unwrap_or_else(|_| Err(PullError("the pull thread panicked".into())))
    });
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            return wanted
                .iter()
                .map(|(i, _)| problem(manifest, *i, err.to_string()))
                .collect();
        }
    };
    let mut problems = Vec::new();
    for ((i, source), result) in wanted.iter().zip(results) {
        match result {
            Ok(pulled) => {
                let service = &mut manifest.services[*i];
                note_pull(&service.name, pulled.offline.clone());
                if let Some(why) = &pulled.offline {
                    tracing::warn!(service = %service.name, reference = %source.reference, "{why}");
                }
                tracing::info!(
                    service = %service.name,
                    reference = %source.reference,
                    digest = %pulled.digest,
                    "component resolved"
                );
                service.component = pulled.path;
                service.oci = Some(OciSource {
                    reference: source.reference.clone(),
                    digest: Some(pulled.digest),
                });
            }
            Err(err) => {
                note_pull(&manifest.services[*i].name, Some(err.to_string()));
                problems.push(problem(
                    manifest,
                    *i,
                    format!("oci://{}: {err}", source.reference),
                ));
            }
        }
    }
    problems
}

/// [`Manifest::load`], then [`resolve`]: what serving and checking read.
/// A component that cannot be pulled is a problem like any other.
pub fn load(path: &Path) -> Result<Manifest, Problems> {
    let mut manifest = Manifest::load(path)?;
    let problems = resolve(&mut manifest);
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(Problems(problems))
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

    #[test]
    fn tag_files_are_plain_names() {
        let path = tag_path(Path::new("/c"), "127.0.0.1:5000/a/b:v1");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("127.0.0.1_5000_a_b_v1-"), "{name}");
        assert_ne!(path, tag_path(Path::new("/c"), "127.0.0.1:5000/a_b:v1"));
    }
}
