//! The deployment files in `deploy/`: the systemd units pass
//! `systemd-analyze verify`, and the Knative Service parses and has the
//! fields the host relies on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wasmhost::config::manifest::{HostConfig, Manifest};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `shutdown_grace` when a manifest does not set it: the host's own
/// default, so the deployment files are checked against the code, not
/// against a number copied into a comment.
fn default_shutdown_grace() -> Duration {
    HostConfig::default().shutdown_grace
}

/// Whole seconds, rounded up.
fn secs_ceil(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A container's `args`.
fn container_args(container: &serde_json::Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn the_systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    let units = [
        "wasmhost.socket",
        "wasmhost-admin.socket",
        "wasmhost.service",
    ];
    for unit in units {
        let text = std::fs::read_to_string(deploy_dir().join("systemd").join(unit)).unwrap();
        // `verify` checks that ExecStart's binary exists: point it at the
        // one under test.
        let text = text.replace("/usr/local/bin/wasmhost", env!("CARGO_BIN_EXE_wasmhost"));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    let service = std::fs::read_to_string(dir.path().join("wasmhost.service")).unwrap();
    assert!(service.contains("--idle-exit"), "the unit scales to zero");
    // systemd sends SIGKILL after TimeoutStopSec: the drain (the unit's
    // manifest is the user's, so the default grace) must fit before it.
    let stop_timeout: u64 = service
        .lines()
        .find_map(|line| line.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec")
        .parse()
        .unwrap();
    let grace = default_shutdown_grace();
    assert!(
        stop_timeout > secs_ceil(grace),
        "TimeoutStopSec={stop_timeout} does not outlast the default shutdown_grace {grace:?}"
    );
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .args(units.map(|unit| dir.path().join(unit)))
        .output()
        .expect("running systemd-analyze (Debian package `systemd`)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Unknown keys are only warned about: no warning may name our units.
    assert!(!stderr.contains("wasmhost"), "{stderr}");
}

#[test]
fn the_knative_service_parses_and_has_what_the_host_relies_on() {
    let text = std::fs::read_to_string(deploy_dir().join("knative/service.yaml")).unwrap();
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).expect("valid YAML");
    assert_eq!(doc["apiVersion"], "serving.knative.dev/v1");
    assert_eq!(doc["kind"], "Service");
    let template = &doc["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(
        annotations["autoscaling.knative.dev/min-scale"], "0",
        "scales to zero"
    );
    let spec = &template["spec"];
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args = container_args(container);
    assert_eq!(&args[..2], ["serve", "/etc/wasmhost/manifest.toml"]);
    let arg_after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| *a == flag)
            .unwrap_or_else(|| panic!("no {flag}"));
        args[i + 1]
    };
    let listen: std::net::SocketAddr = arg_after("--listen").parse().unwrap();
    let admin: std::net::SocketAddr = arg_after("--admin").parse().unwrap();
    // The port Knative routes to is the data plane.
    assert_eq!(container["ports"][0]["containerPort"], listen.port());
    // Probes on the admin plane, which needs a token off loopback.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], admin.port());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "WASMHOST_ADMIN_TOKEN"),
        "the admin plane off loopback needs WASMHOST_ADMIN_TOKEN"
    );
    // The manifest mount and a writable cache (the root filesystem is
    // read-only).
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(mounts.contains(&"/etc/wasmhost"), "{mounts:?}");
    assert!(mounts.contains(&"/var/cache/wasmhost"), "{mounts:?}");
    // Knative makes timeoutSeconds the termination grace period: it must
    // outlast the default shutdown_grace (the manifest is the user's).
    let timeout = spec["timeoutSeconds"].as_u64().unwrap();
    let grace = default_shutdown_grace();
    assert!(
        timeout > secs_ceil(grace),
        "timeoutSeconds {timeout} does not outlast the default shutdown_grace {grace:?}"
    );
}

/// `kubectl kustomize deploy/k8s`, as YAML documents.
fn kustomized() -> (String, Vec<serde_json::Value>) {
    kustomize("k8s")
}

/// `kubectl kustomize deploy/<dir>`, as text and YAML documents.
fn kustomize(dir: &str) -> (String, Vec<serde_json::Value>) {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir().join(dir))
        .output()
        .expect("running kubectl (the Kubernetes client)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let docs = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("valid YAML"))
        .collect();
    (text, docs)
}

/// `kubernetes-validate --strict` (unknown fields are errors too) on the
/// YAML `text`: asserts it passes and returns its report.
fn validated(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wasmhost.yaml");
    std::fs::write(&file, text).unwrap();
    let output = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&file)
        .output()
        .expect("running kubernetes-validate (PyPI; scripts/test.sh installs it)");
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    report
}

#[test]
fn the_kubernetes_files_build_with_kustomize_and_validate_against_the_schemas() {
    let (text, docs) = kustomized();
    let report = validated(&text);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for kind in [
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
        assert!(
            report.contains(&format!("{}/wasmhost", kind.to_lowercase())),
            "{kind} was not validated: {report}"
        );
    }
}

#[test]
fn the_deployment_probes_drains_and_runs_locked_down() {
    let (_, docs) = kustomized();
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
    let deployment = find("Deployment");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 3);
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    let args = container_args(container);
    assert_eq!(&args[..2], ["serve", "/etc/wasmhost/manifest.toml"]);
    let admin = args[args.iter().position(|a| *a == "--admin").unwrap() + 1];
    let admin_port: u16 = admin.rsplit(':').next().unwrap().parse().unwrap();
    let port_named = |name: &str| {
        container["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["containerPort"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(port_named("admin"), u64::from(admin_port));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "WASMHOST_ADMIN_TOKEN"),
        "the admin plane off loopback needs a token"
    );
    // Endpoints drop (preStop) before the drain, and the pod outlives both.
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let manifest_text = find("ConfigMap")["data"]["manifest.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    // Locked down.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for kind in ["requests", "limits"] {
        assert!(container["resources"][kind]["memory"].is_string(), "{kind}");
        assert!(container["resources"][kind]["cpu"].is_string(), "{kind}");
    }
    assert_eq!(find("PodDisruptionBudget")["spec"]["minAvailable"], 2);
    assert_eq!(
        find("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"],
        "wasmhost"
    );

    // The ConfigMap's manifest is one the host accepts (components pointed
    // at the built guests instead of the image's /srv/wasmhost).
    let guests = Path::new(wasmhost_test_guests::HELLO).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        manifest_text
            .replace("/srv/wasmhost/", &format!("{}/", guests.display()))
            .replace("/var/cache/wasmhost", crate::support::SHARED_CACHE),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("check")
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // The pod outlives the preStop sleep plus the drain, with the
    // `shutdown_grace` the host reads from that manifest (its default if
    // the ConfigMap does not set one).
    let shutdown_grace = Manifest::load(&manifest)
        .unwrap_or_else(|problems| panic!("{problems}"))
        .host
        .shutdown_grace;
    assert!(
        grace > pre_stop + secs_ceil(shutdown_grace),
        "terminationGracePeriodSeconds {grace} <= preStop {pre_stop} s + shutdown_grace {shutdown_grace:?}"
    );
}

#[test]
fn the_oci_example_validates_and_names_every_component_by_digest() {
    let (text, docs) = kustomize("k8s-oci");
    validated(&text);
    let dir = tempfile::tempdir().unwrap();
    let doc = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
    // The manifest parses, and pulls every component by digest.
    let manifest = dir.path().join("manifest.toml");
    std::fs::write(
        &manifest,
        doc("ConfigMap")["data"]["manifest.toml"].as_str().unwrap(),
    )
    .unwrap();
    let parsed = Manifest::load(&manifest).unwrap_or_else(|problems| panic!("{problems}"));
    assert!(!parsed.services.is_empty());
    for service in &parsed.services {
        let source = service.oci.as_ref().expect("an oci:// component");
        assert!(
            source.reference.contains("@sha256:"),
            "{}",
            source.reference
        );
    }
    // The cache it pulls into is writable (an emptyDir) while the root file
    // system stays read-only, and the credentials come from a file.
    let deployment = doc("Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    let cache = parsed.host.cache_dir.to_str().unwrap().to_owned();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == cache.as_str())
        .expect("a volume at cache_dir");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert!(volume.get("emptyDir").is_some(), "{volume}");
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "DOCKER_CONFIG"));
    assert!(env.iter().any(|e| e["name"] == "WASMHOST_ADMIN_TOKEN"));
}
