#!/usr/bin/env bash
# Tensor parallelism on one machine, side by side: decode speed of one
# process with T threads against mpirun -np N with T/N threads each, in
# alternating rounds, and each rank's peak resident memory against one
# process's. Usage: bench/tensor_parallel.sh MODEL [ROUNDS] [GEN_TOKENS]
# (bench/REPORT.md, "Tensor parallelism", was made with it).
set -euo pipefail
model=${1:?usage: bench/tensor_parallel.sh MODEL [ROUNDS] [GEN_TOKENS]}
rounds=${2:-3}
gen=${3:-32}
grok=${GROK:-$(cd "$(dirname "$0")/.." && pwd)/build/grok}
threads=${THREADS:-$(nproc)}
ranks=${RANKS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --oversubscribe --bind-to none -x GROK_ALLREDUCE -np "$ranks")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat "$model" >/dev/null 2>&1 || true  # read once: timed runs never wait on the disk
args=(bench -m "$model" -p 0 -n "$gen" -r 3 --json)
for r in $(seq "$rounds"); do
  "$grok" "${args[@]}" -t "$threads" >"$out/one-$r.json" 2>/dev/null
  "${mpi[@]}" "$grok" "${args[@]}" -t $((threads / ranks)) >"$out/split-$r.json" 2>/dev/null
  /usr/bin/python3 - "$out/one-$r.json" "$out/split-$r.json" <<'PY'
import json, sys
one, split = (json.load(open(p)) for p in sys.argv[1:])
ratio = split["gen_tokens_per_s_median"] / one["gen_tokens_per_s_median"]
print(f"round: one process {one['gen_tokens_per_s_median']:.2f} tok/s ({one['threads']} threads), "
      f"{split['ranks']} ranks {split['gen_tokens_per_s_median']:.2f} tok/s ({split['threads']} each): ratio {ratio:.3f}; "
      f"comm {1e3 * split['comm_seconds_per_token']:.3f} ms/token ({split['allreduce_algorithm']}, "
      f"{split['allreduces_per_token']:.0f} all-reduces, {split['comm_bytes_per_token'] / 1024:.1f} KiB sent by rank 0); "
      f"peak RSS one {one['peak_rss_mib']:.0f} MiB, per rank "
      + ", ".join(f"{r['peak_rss_bytes'] / 2**20:.0f}" for r in split["per_rank"])
      + f" MiB ({max(r['peak_rss_bytes'] for r in split['per_rank']) / 2**20 / one['peak_rss_mib']:.2f}x)")
PY
done
