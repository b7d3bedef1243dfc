#!/usr/bin/env bash
# Builds the wasmhost container image and prints its reference as the last
# line of output.
#
#   deploy/build-image.sh [TAG]          # default localhost/wasmhost:latest
#
# FROM scratch (deploy/Containerfile): a static x86_64-unknown-linux-musl
# binary (stripped), the demo components (hello, echo) under /srv/wasmhost,
# the manifest deploy/image/manifest.toml, and the precompiled cache, which
# the image build fills by running the binary itself. Uses podman, or
# docker when podman is missing. WASMHOST_IMAGE_PROFILE picks the cargo
# profile (default `image`: release, with cold code optimized for size; see
# Cargo.toml); the binary is static and not position-independent.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-localhost/wasmhost:latest}
TARGET=x86_64-unknown-linux-musl
PROFILE=${WASMHOST_IMAGE_PROFILE:-image}

if command -v podman >/dev/null; then
    ENGINE=podman
elif command -v docker >/dev/null; then
    ENGINE=docker
else
    echo "build-image.sh: neither podman nor docker is installed (apt-get install podman)" >&2
    exit 1
fi
if ! command -v musl-gcc >/dev/null; then
    # mimalloc, the static build's allocator, is C compiled for musl.
    echo "build-image.sh: musl-gcc is missing (apt-get install musl-tools)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >&2
fi

echo "building the guests and wasmhost for $TARGET ($PROFILE)" >&2
guests/build.sh >/dev/null
# Not position-independent: a static binary has no use for it, and its
# relocation table alone was 1.3 MB.
RUSTFLAGS="${RUSTFLAGS:-} -C relocation-model=static" \
    cargo build --profile "$PROFILE" --target "$TARGET" -p wasmhost --quiet >&2
out=$PROFILE
[ "$PROFILE" = dev ] && out=debug
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/$out/wasmhost

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/etc/wasmhost" "$ctx/srv/wasmhost" "$ctx/var/cache/wasmhost"
strip -o "$ctx/wasmhost" "$BIN"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' \
    > "$ctx/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$ctx/etc/group"
cp deploy/image/manifest.toml "$ctx/etc/wasmhost/manifest.toml"
for guest in hello echo; do
    cp "guests/target/wasm32-wasip2/release/$guest.wasm" "$ctx/srv/wasmhost/"
done

echo "building $TAG with $ENGINE" >&2
"$ENGINE" build --quiet -f deploy/Containerfile -t "$TAG" "$ctx" >&2
echo "$TAG"
