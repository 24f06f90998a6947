#!/usr/bin/env bash
# Train two readers side by side on one CUDA GPU and pack what comes back.
#
# The prepared script for a lent accelerator (see qa/models/reader/MODEL_CARD.md): it runs from
# the repository root on a machine with python3, torch, transformers, tokenizers and typer but
# none of the index stack, reads the training data from a kit folder, and writes each run's
# best-on-validation weights, without the frozen word-embedding matrix (which stays that of the
# starting reader), split into files of at most 15 MiB.
#
#   KIT=.devkit OUT=out bash scripts/train-reader-gpu.sh
#
# KIT holds qa-train.tar.xz (a tar of the qa-train folder), tydiqa-en-dev.json (qa-val) and,
# where the machine lacks it, a sentencex wheel. MINUTES is each run's training budget; DEVICE
# and EXTRA (more train-reader options, e.g. --max-features 300 for a smoke test) are for trying
# the script on a CPU first.
set -uo pipefail
KIT=${KIT:?folder of the training kit}
OUT=${OUT:?folder for the results}
MINUTES=${MINUTES:-5}
DEVICE=${DEVICE:-cuda}
EXTRA=${EXTRA:-}
WORKERS=${WORKERS:-7}
DEADLINE=${DEADLINE:-500}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
work=$(mktemp -d)
if ! python3 -c "import sentencex" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$work/site" "$KIT"/sentencex-*.whl || exit 1
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$work/data" "$OUT" && tar -xJf "$KIT/qa-train.tar.xz" -C "$work/data" || exit 1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null

# Runs side by side, each "name learning-rate batch-size seed epochs"; separated by ';'.
IFS=';' read -r -a runs <<<"${RUNS:-A 5e-5 32 31 3;B 1e-4 64 32 3}"
for run in "${runs[@]}"; do
  read -r name lr batch seed epochs <<<"$run"
  timeout "$DEADLINE" python3 -c "import sys; from qa.cli import app; sys.argv[0] = 'qa'; app()" \
    train-reader --data "$work/data/qa-train" --out "$work/$name" --base-model qa/models/reader \
    --device "$DEVICE" --workers "$WORKERS" --max-length 192 --stride 64 --batch-size "$batch" \
    --lr "$lr" --seed "$seed" --sample-seed 21 --epochs "$epochs" --max-minutes "$MINUTES" --fit-budget \
    --eval-every 1000 --val-file "$KIT/tydiqa-en-dev.json" \
    --fraction new_wiki_v1.0.json=0.6 --fraction reddit_v1.0.json=0.4 \
    --fraction amazon_reviews_v1.0.json=0.4 --fraction covid_qa.json=0.5 $EXTRA \
    >"$work/$name.log" 2>&1 &
done
wait
for run in "${runs[@]}"; do
  read -r name _ <<<"$run"
  echo "=== run $name"; grep -v "^train:\|^windows:\|^evaluate:" "$work/$name.log" | tail -n 60
  python3 - "$work/$name" "$OUT/$name" <<'PY'
import json, shutil, sys
from pathlib import Path
from safetensors.torch import load_file, save_file

run, out = Path(sys.argv[1]), Path(sys.argv[2])
source = run / "model.safetensors"
if not source.is_file():  # stopped by the deadline: the best validated weights so far
    source = run / "checkpoints" / "best" / "model.safetensors"
if not source.is_file():
    sys.exit(f"no weights in {run}")
tensors = {k: v for k, v in load_file(source).items() if not k.endswith("word_embeddings.weight")}
out.mkdir(parents=True, exist_ok=True)
part, size, n = {}, 0, 0
for key in sorted(tensors):
    nbytes = tensors[key].numel() * tensors[key].element_size()
    if part and size + nbytes > 15 * 2**20:
        save_file(part, str(out / f"part{n}.safetensors")); part, size, n = {}, 0, n + 1
    part[key] = tensors[key]; size += nbytes
save_file(part, str(out / f"part{n}.safetensors"))
if (run / "metrics.json").is_file():
    shutil.copy(run / "metrics.json", out / "metrics.json")
print(f"packed {len(tensors)} tensors from {source} into {n + 1} files")
PY
done
cat "$work"/*.log | grep -v "^train:\|^windows:\|^evaluate:" > "$OUT/run.log"
