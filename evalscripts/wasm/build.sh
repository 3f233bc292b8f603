#!/usr/bin/env bash
# Builds C evalscripts to WebAssembly modules with clang + wasm-ld (Debian: apt-get install
# clang lld). Usage: build.sh [OUT_DIR [FILE.c ...]]; by default every .c file of this
# folder into this folder. Each FILE.c becomes OUT_DIR/FILE.wasm, following the ABI
# documented in src/evalscript/wasm/precompiled.rs. Submit the .wasm file itself to
# `tessera eval`/`tessera run`, or over HTTP as `//!tessera-wasm base64:$(base64 -w0 FILE.wasm)`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE}
shift || true
if [ "$#" -eq 0 ]; then set -- "$HERE"/*.c; fi
CC=${CC:-clang}
mkdir -p "$OUT"
for src in "$@"; do
    name=$(basename "$src" .c)
    # --target=wasm32 -nostdlib: bare WebAssembly, no libc; -msimd128: let the loop
    # vectorise; --no-entry: a library (no main); --export=__heap_base: where the host
    # may put the I/O planes without overwriting the module's data and stack.
    "$CC" --target=wasm32 -O3 -msimd128 -nostdlib \
        -Wl,--no-entry -Wl,--export=__heap_base -Wl,--strip-all \
        -o "$OUT/$name.wasm" "$src"
done
