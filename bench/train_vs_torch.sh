#!/usr/bin/env bash
# Training speed side by side: `grok train` against the PyTorch
# implementation of the same function (tests/tools/torch_grok.py bench),
# same config (models/default.json, vocabulary 4096), same batch (8 × 256),
# same threads, alternating the two ROUNDS times on this machine. Prints
# each run's median seconds per step and the ratio of the medians.
# Usage: bench/train_vs_torch.sh VOCAB.gguf TEXT   (a GGUF with a 4096-piece
# vocabulary, e.g. a scripts/train-default checkpoint; a text to train on)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vocab=$1 text=$2
rounds=${ROUNDS:-3} steps=${STEPS:-10} threads=${THREADS:-2}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
config=$(/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["vocab_size"]=4096; print(json.dumps(c))' \
  "$root/models/default.json")
for r in $(seq "$rounds"); do
  "$root/build/grok" train --config "$root/models/default.json" --tokenizer "$vocab" --data "$text" --eval-data "$text" \
    --steps "$steps" --batch 8 --seq 256 --eval-every 0 --eval-windows 1 --out "$tmp/b.gguf" \
    --log "$tmp/grok-$r.jsonl" -t "$threads" 2>/dev/null
  /usr/bin/python3 "$root/tests/tools/torch_grok.py" bench --config "$config" --batch 8 --seq 256 \
    --steps "$steps" --threads "$threads" > "$tmp/torch-$r.json"
done
/usr/bin/python3 - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
g, t = [], []
for r in range(1, rounds + 1):
    steps = [json.loads(l) for l in open(f"{tmp}/grok-{r}.jsonl") if '"seconds"' in l]
    g.append(statistics.median(s["seconds"] for s in steps[2:]))  # after 2 warm-up steps
    tj = json.loads(open(f"{tmp}/torch-{r}.json").read())
    t.append(tj["median_seconds_per_step"])
    print(f"round {r}: grok {g[-1]:.3f} s/step ({2048/g[-1]:.0f} tok/s), torch {t[-1]:.3f} s/step "
          f"({2048/t[-1]:.0f} tok/s), torch/grok {t[-1]/g[-1]:.2f}  [torch BLAS: {tj.get('blas')}]")
print(f"median: grok {statistics.median(g):.3f} s/step, torch {statistics.median(t):.3f} s/step; "
      f"grok is {statistics.median(t)/statistics.median(g):.2f}x torch's tokens/s "
      f"(per-round ratios {', '.join(f'{a/b:.2f}' for a, b in zip(t, g))})")
PY
