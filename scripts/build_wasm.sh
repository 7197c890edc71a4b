#!/usr/bin/env bash
# Builds the page's crop module (mobile_demo/wasm/crop.c -> mobile_demo/static/wasm/crop.wasm) and writes
# crop.wasm.json beside it: the command, the compiler and the source's SHA-256, which tests/test_crop_wasm.py
# checks against crop.c (a change to the C that was not rebuilt fails the suite). The .wasm is committed:
# the page and the tests need no compiler. Needs Debian's clang and lld (apt-get install clang lld).
set -euo pipefail
cd "$(dirname "$0")/.."
src=mobile_demo/wasm/crop.c
out=mobile_demo/static/wasm/crop.wasm
flags=(--target=wasm32 -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint -ffp-contract=off -nostdlib
       -Wl,--no-entry -Wl,--export=__heap_base -Wl,--strip-all)
command -v clang >/dev/null && command -v wasm-ld >/dev/null || {
  echo "build_wasm: needs clang and wasm-ld (apt-get install clang lld)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
clang "${flags[@]}" -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
python3 - "$src" "$out" "${flags[*]}" <<'PY'
import hashlib, json, subprocess, sys
src, out, flags = sys.argv[1:]
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
clang = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
doc = {"source": src, "source_sha256": sha(src), "wasm_sha256": sha(out), "compiler": clang,
       "command": f"clang {flags} -o {out} {src}", "made_by": "scripts/build_wasm.sh (make wasm)"}
with open(out + ".json", "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"wrote {out} ({len(open(out, 'rb').read())} bytes) and {out}.json")
PY
