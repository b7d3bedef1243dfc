#!/usr/bin/env bash
# Build the Python wasi:http guest (guests-py/hello) into a component.
#   usage: guests-py/build.sh OUT.wasm
# Needs python3 >= 3.10 + pip the first time (installs a pinned componentize-py);
# afterwards it runs fully offline (the WIT lives in guests-py/wit/).
set -euo pipefail

COMPONENTIZE_PY_VERSION="0.25.1"

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

PYTHON="${PYTHON:-python3}"

have_cpy() {
    local v
    v="$("$1" -c 'import importlib.metadata as m; print(m.version("componentize-py"))' 2>/dev/null || true)"
    [ "$v" = "$COMPONENTIZE_PY_VERSION" ]
}

venv="$here/.venv"
if have_cpy "$PYTHON"; then
    :
elif have_cpy "$venv/bin/python"; then
    PYTHON="$venv/bin/python"
else
    echo "installing componentize-py==${COMPONENTIZE_PY_VERSION}" >&2
    if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check \
            "componentize-py==${COMPONENTIZE_PY_VERSION}"; then
        # e.g. PEP 668 "externally managed" interpreters: use a private venv.
        "$PYTHON" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "componentize-py==${COMPONENTIZE_PY_VERSION}"
        PYTHON="$venv/bin/python"
    fi
fi

# Run the CLI through the interpreter we installed into (avoids PATH/shim issues).
cpy() {
    "$PYTHON" -c 'import sys, componentize_py; sys.argv[0] = "componentize-py"; sys.exit(componentize_py.script())' "$@"
}

cd "$here/hello"
cpy -d "$here/wit" -w hello componentize app -o "$out"
echo "built $out ($(wc -c <"$out") bytes)" >&2
