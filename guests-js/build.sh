#!/usr/bin/env bash
# Build the JavaScript wasi:http guest (guests-js/hello.js) into a component.
#   usage: guests-js/build.sh OUT.wasm
# Needs node >= 20 + npm the first time: installs the pinned componentize-js
# (package.json, every transitive version fixed by package-lock.json) from the
# npm registry into $WASMHOST_JS_CACHE (default ~/.cache/wasmhost-js), with
# install scripts off; nothing else is downloaded (the engine, wizer and the
# WASI adapter ship inside the npm packages). Afterwards it runs fully
# offline (the WIT lives in guests-js/wit/). About 15 s per build.
set -euo pipefail

COMPONENTIZE_JS_VERSION="0.23.0"

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
case "$out" in
    /*) ;;
    *) out="$PWD/$out" ;;
esac
mkdir -p "$(dirname "$out")"

for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "$0: needs $tool (node >= 20)" >&2; exit 1; }
done
grep -q "\"@bytecodealliance/componentize-js\": \"$COMPONENTIZE_JS_VERSION\"" "$here/package.json" || {
    echo "$0: package.json does not pin componentize-js $COMPONENTIZE_JS_VERSION" >&2
    exit 1
}

# One folder per lockfile: a changed pin installs next to the old one.
cache="${WASMHOST_JS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmhost-js}"
lock_id="$(sha256sum "$here/package-lock.json" | cut -c1-12)"
tools="$cache/componentize-js-$COMPONENTIZE_JS_VERSION-$lock_id"
cli="$tools/node_modules/@bytecodealliance/componentize-js/src/cli.js"

if [ ! -f "$tools/.installed" ]; then
    echo "installing componentize-js@${COMPONENTIZE_JS_VERSION} into $tools (npm, once)" >&2
    mkdir -p "$cache"
    staging="$(mktemp -d "$cache/.install.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    cp "$here/package.json" "$here/package-lock.json" "$staging/"
    (cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    touch "$staging/.installed"
    # Concurrent first builds: whoever renames first wins, the rest use it.
    if ! mv -T "$staging" "$tools" 2>/dev/null; then
        [ -f "$tools/.installed" ] || { echo "$0: could not install into $tools" >&2; exit 1; }
    fi
    trap - EXIT
    rm -rf "$staging"
fi

rm -f "$out"
node "$cli" "$here/hello.js" --wit "$here/wit" --world-name hello --out "$out" >&2
[ -s "$out" ] || { echo "$0: componentize-js wrote no $out" >&2; exit 1; }
echo "built $out ($(wc -c <"$out") bytes)" >&2
