#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run):
#   1. gdal-bin (gdalinfo) via apt-get if missing
#   2. Python venv tests/.venv with tests/python/requirements.txt (reinstalled only when they change),
#      tests/.venv-v2 with tests/python/requirements-v2.txt (sentinelhub 3.12.0, zarr, xarray),
#      Azurite (npm) into tests/.npm
#   3. cargo build --bins            (debug; boa is optimised in the dev profile)
#   4. cargo test                    (every Rust target is compiled; benches are compiled but not run)
#   5. pytest tests/python           (against target/debug/tessera, or $CARGO_TARGET_DIR/debug/tessera),
#      then the v2 suite again with tests/.venv-v2
# Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/tests/.venv
REQS=$ROOT/tests/python/requirements.txt

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
APT_UPDATED=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# -- 1. gdalinfo ----------------------------------------------------------------------------------------------------------
if ! command -v gdalinfo >/dev/null 2>&1; then
    step "installing gdal-bin (gdalinfo is missing)"
    apt_install gdal-bin
fi

if ! /usr/bin/python3 -c 'import osgeo' >/dev/null 2>&1; then
    step "installing python3-gdal (GDAL's COG validator runs with /usr/bin/python3)"
    apt_install python3-gdal
fi

# -- 1b. clang + wasm-ld: the precompiled WebAssembly evalscript tests build evalscripts/wasm/*.c ------------------------
if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
    step "installing clang and lld (the WebAssembly evalscript example is built from C)"
    apt_install clang lld
fi

# -- 2. Python venv -------------------------------------------------------------------------------------------------------
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PYTHON=$(command -v "$cand"); break; fi
    done
fi
[ -n "$PYTHON" ] || { echo "error: no python3.11 or python3 on PATH" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    step "removing a broken venv at tests/.venv"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    step "creating the venv tests/.venv with $PYTHON"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python needs the venv/ensurepip package
        rm -rf "$VENV"
        pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python${pyver}-venv" || apt_install python3-venv
        "$PYTHON" -m venv "$VENV"
    fi
fi
STAMP=$VENV/.requirements.sha256
want=$( { cat "$REQS"; "$VENV/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
    step "installing tests/python/requirements.txt into tests/.venv"
    rm -f "$STAMP"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQS"
    echo "$want" > "$STAMP"
fi

# The Batch v2 suite (tests/python/test_sentinelhub_v2.py) needs sentinelhub 3.12.0, which cannot share a venv with
# the pinned 3.11.1: its own venv tests/.venv-v2 from tests/python/requirements-v2.txt (also zarr and xarray).
VENV_V2=$ROOT/tests/.venv-v2
REQS_V2=$ROOT/tests/python/requirements-v2.txt
if [ -x "$VENV_V2/bin/python" ] && ! "$VENV_V2/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV_V2"
fi
[ -x "$VENV_V2/bin/python" ] || { step "creating the venv tests/.venv-v2 with $PYTHON"; "$PYTHON" -m venv "$VENV_V2"; }
STAMP_V2=$VENV_V2/.requirements.sha256
want=$( { cat "$REQS_V2"; "$VENV_V2/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP_V2" 2>/dev/null || true)" != "$want" ]; then
    step "installing tests/python/requirements-v2.txt into tests/.venv-v2"
    rm -f "$STAMP_V2"
    "$VENV_V2/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$REQS_V2"
    echo "$want" > "$STAMP_V2"
fi

# moto_server (a real S3-compatible server on 127.0.0.1) for the S3 tests, Rust and Python.
export PATH="$VENV/bin:$PATH"

# Azurite (Microsoft's Azure Blob emulator) on 127.0.0.1 for the az:// tests, Rust and Python
# (gcp-storage-emulator for gs:// comes with requirements.txt).
AZURITE_VERSION=3.37.0
AZURITE_DIR=$ROOT/tests/.npm
if ! grep -qs "\"version\": \"$AZURITE_VERSION\"" "$AZURITE_DIR/node_modules/azurite/package.json"; then
    command -v npm >/dev/null 2>&1 || { step "installing npm (for Azurite)"; apt_install nodejs npm; }
    step "installing azurite@$AZURITE_VERSION into tests/.npm"
    npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION"
fi
export TESSERA_AZURITE_BLOB=$AZURITE_DIR/node_modules/.bin/azurite-blob

# -- 3. build -------------------------------------------------------------------------------------------------------------
step "cargo build --bins"
cargo build --bins

# -- 4. Rust tests --------------------------------------------------------------------------------------------------------
step "cargo test (all targets compiled; benches not run)"
cargo test --all-targets --no-run
# The four mutation-fuzz targets (src/fuzz_tests.rs) run 15 s each: about a minute in all.
TESSERA_FUZZ_SECS=${TESSERA_FUZZ_SECS:-15} cargo test --lib --bins --tests --examples

# -- 5. Python acceptance tests -------------------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
export TESSERA_BIN=$TARGET_DIR/debug/tessera
[ -x "$TESSERA_BIN" ] || { echo "error: $TESSERA_BIN was not built" >&2; exit 1; }

step "pytest tests/python (TESSERA_BIN=$TESSERA_BIN)"
export OAUTHLIB_INSECURE_TRANSPORT=1
"$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider --durations=10

# The v2 files skip themselves under 3.11.1 above; here they run with sentinelhub 3.12.0.
step "pytest tests/python/test_sentinelhub_v2.py with sentinelhub 3.12.0 (tests/.venv-v2)"
PATH="$VENV_V2/bin:$PATH" "$VENV_V2/bin/python" -m pytest tests/python/test_sentinelhub_v2.py -q -p no:cacheprovider \
    --durations=5
