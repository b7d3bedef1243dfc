//! The deployment files in `deploy/`: the systemd units pass
//! `systemd-analyze verify`, and the Knative Service parses and has the
//! fields the host relies on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
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
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
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
    // outlast the default shutdown_grace (10 s).
    assert!(spec["timeoutSeconds"].as_u64().unwrap() > 10);
}
