#!/usr/bin/env bash
# Side-by-side speed of grok and llama.cpp's llama-bench on the same GGUF
# files, alternating the two programs in each round (the machines here are
# shared and noisy: compare within a round, report medians and ratios).
#
#   bench/side_by_side.sh LLAMA_BENCH_BINARY MODEL.gguf [MODEL.gguf ...]
#
# Environment: GROK (build/grok), ROUNDS (3), THREADS (2), PP (512), TG (128), REPS (3).
# llama.cpp runs with OMP_WAIT_POLICY=passive: its default busy-waiting
# OpenMP threads collapse when the cores are shared.
set -euo pipefail
llama_bench=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
grok="${GROK:-$root/build/grok}"
rounds=${ROUNDS:-3} threads=${THREADS:-2} pp=${PP:-512} tg=${TG:-128} reps=${REPS:-3}

for m in "$@"; do cat "$m" >/dev/null; done  # read each file once before timing
echo "round,model,engine,pp${pp},tg${tg},load"
for round in $(seq "$rounds"); do
  for m in "$@"; do
    g=$("$grok" bench -m "$m" -p "$pp" -n "$tg" -r "$reps" -t "$threads" --probe-mib 512 --json 2>/dev/null |
      /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print(f\"{j['prompt_tokens_per_s_median']:.1f},{j['gen_tokens_per_s_median']:.1f}\")")
    echo "$round,$(basename "$m"),grok,$g,$(cut -d' ' -f1 /proc/loadavg)"
    l=$(OMP_WAIT_POLICY=passive "$llama_bench" -m "$m" -t "$threads" -p "$pp" -n "$tg" -r "$reps" -o json 2>/dev/null |
      /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print(','.join(f\"{x['avg_ts']:.1f}\" for x in j))")
    echo "$round,$(basename "$m"),llama.cpp,$l,$(cut -d' ' -f1 /proc/loadavg)"
  done
done
