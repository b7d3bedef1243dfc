#!/usr/bin/env bash
# Tests the container image built by deploy/build-image.sh:
#   deploy/test-image.sh [IMAGE]          # default localhost/wasmhost:latest
# - it is at most 30 MB;
# - it runs with a read-only root filesystem and serves hello (the first
#   request needs no compile: the cache is baked in);
# - its process runs as uid 65532, not root;
# - `podman stop` drains it and it exits 0.
set -euo pipefail
IMAGE=${1:-localhost/wasmhost:latest}
ENGINE=podman
command -v podman >/dev/null || ENGINE=docker
# What these machines need to run a container (see docs/deploy.md).
RUN_FLAGS=()
if [ "$ENGINE" = podman ]; then
    RUN_FLAGS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
fi
fail() { echo "test-image.sh: FAIL: $*" >&2; exit 1; }

size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $size bytes"
[ "$size" -le $((30 * 1000 * 1000)) ] || fail "the image is $size bytes, more than 30 MB"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=wasmhost-test-$$
cleanup() { "$ENGINE" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# Host networking: the host listens on a loopback port of this machine.
"$ENGINE" run -d --name "$name" "${RUN_FLAGS[@]}" --read-only --network host "$IMAGE" \
    serve /etc/wasmhost/manifest.toml --listen "127.0.0.1:$port" >/dev/null

body=""
for _ in $(seq 1 300); do
    body=$(curl -sf "http://127.0.0.1:$port/hello" || true)
    [ -n "$body" ] && break
    sleep 0.1
done
[ "$body" = "hello from wasmhost" ] || {
    "$ENGINE" logs "$name" >&2 || true
    fail "no hello from the container (got '$body')"
}
echo "served: $body"

logs=$("$ENGINE" logs "$name" 2>&1)
grep -q '"component compiled"' <<<"$logs" && fail "the container compiled: the baked cache was not used"

pid=$("$ENGINE" inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
echo "container process uid: $uid"
[ "$uid" = 65532 ] || fail "the process runs as uid $uid, not 65532"

"$ENGINE" stop -t 20 "$name" >/dev/null
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$name")
echo "exit code after stop: $code"
[ "$code" = 0 ] || { "$ENGINE" logs "$name" >&2; fail "exit code $code after stop"; }
grep -q '"stopped"' <<<"$("$ENGINE" logs "$name" 2>&1)" || fail "no clean stop in the logs"
echo "test-image.sh: ok"
