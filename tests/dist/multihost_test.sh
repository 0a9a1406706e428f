#!/usr/bin/env bash
# Tensor parallelism across real (virtual) hosts: three Linux network
# namespaces h0, h1, h2 joined by a bridge, OpenMPI's ranks spread over them
# with TCP as the only transport between ranks (btl tcp,self, pml ob1), each
# rank started through tests/dist/netns_rsh.sh as ssh would start it.
#
#   multihost_test.sh GROK_BINARY [MODEL_GGUF]
#
# Without MODEL_GGUF a tiny random model is made with `grok init --preset
# tiny`. Checks (exit 1 on any failure):
#   - `grok logits --all-positions` over 2 and 3 hosts equals one process's
#     within 1e-4 (the token ids include pad token 0);
#   - greedy `grok generate` over 2 and 3 hosts prints the same bytes;
#   - the followers' hosts sent at least their share of the logits over
#     their eth0 (interface byte counters), and each rank reports its own
#     host name (h0, h1, h2: every host has its own UTS namespace).
# Then, printed only (no timing is asserted): `grok bench` per-token time
# over np 2 and np 3 for each all-reduce algorithm, without and with a netem
# delay on every host's eth0, against a latency model.
# GROK_MH_NETEM=0 leaves the netem part out; GROK_MH_DELAY_US sets the delay
# (default 50); GROK_MH_BENCH_NPS the rank counts measured (default "2 3").
#
# Exit 77 (CTest's SKIP_RETURN_CODE) when namespaces or OpenMPI are not
# available: not root, `ip netns add` refused (a container without
# CAP_SYS_ADMIN), mpirun missing.
set -euo pipefail
# Sanitizer builds: OpenMPI keeps allocations (some in components it has
# unloaded, so no suppression can name them) until exit; leaks are checked
# by the single-process tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 GROK_BINARY [MODEL_GGUF]" >&2
  exit 2
fi

skip() {
  echo "SKIP: $*"
  exit 77
}
die() {
  echo "FAIL: $*" >&2
  exit 1
}
say() { echo "multihost: $*"; }

GROK=$(readlink -f -- "$1")
MODEL=${2:-}
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
RSH=$HERE/netns_rsh.sh
DELAY_US=${GROK_MH_DELAY_US:-50}
TOKENS=5,0,17,300,0,9,1,2  # two pad tokens (id 0)
PROMPT="The capital of France"

[[ -x $GROK ]] || die "no executable grok at '$1'"
[[ -x $RSH ]] || die "$RSH is missing or not executable"
[[ -z $MODEL || -f $MODEL ]] || die "no model file '$MODEL'"
[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces (ip netns add); run as root"
command -v ip >/dev/null || skip "iproute2's ip is not installed"
command -v mpirun >/dev/null || skip "mpirun (OpenMPI) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
PY=
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import json, array, ast, struct' 2>/dev/null; then
    PY=$p
    break
  fi
done
[[ -n $PY ]] || skip "python3 is not installed (needed to compare .npy files and read JSON)"

PFX=grokmh$$
HUB=$PFX-hub
NS=("$PFX-h0" "$PFX-h1" "$PFX-h2")
NAMES=(h0 h1 h2)
ADDR=(10.213.1.1 10.213.1.2 10.213.1.3)
SUBNET=10.213.1.0/24
RELAY_PREFIX=10.213.2  # delay_relay.py's TUN devices, when the kernel has no netem
CREATED=()
RELAY_PID=
WORK=$(mktemp -d "${TMPDIR:-/tmp}/grok-multihost.XXXXXX")

# Every process still in one of our namespaces (mpirun, orted, grok) is ours:
# TERM, a short wait for them to go, then KILL; then the namespaces (their
# veths and the bridge go with them).
cleanup() {
  local rc=$? ns pids i
  set +e
  trap - EXIT INT TERM
  [[ -n $RELAY_PID ]] && kill "$RELAY_PID" 2>/dev/null
  for ns in "${CREATED[@]}"; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -n $pids ]] && kill -TERM $pids 2>/dev/null
  done
  for ns in "${CREATED[@]}"; do
    for ((i = 0; i < 50; ++i)); do
      pids=$(ip netns pids "$ns" 2>/dev/null)
      [[ -z $pids ]] && break
      sleep 0.1  # waiting for processes to exit: no readiness event to poll
    done
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns delete "$ns" 2>/dev/null || echo "multihost: could not delete namespace $ns" >&2
  done
  rm -rf -- "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

add_ns() {
  local err
  if ! err=$(ip netns add "$1" 2>&1); then
    [[ ${#CREATED[@]} -eq 0 ]] && skip "cannot create network namespaces: ip netns add $1: $err"
    die "ip netns add $1: $err"
  fi
  CREATED+=("$1")
}

# --- the hosts --------------------------------------------------------------
add_ns "$HUB"
ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge stp_state 0 forward_delay 0
ip -n "$HUB" link set br0 up
: >"$WORK/hostmap"
for i in 0 1 2; do
  add_ns "${NS[$i]}"
  ip -n "$HUB" link add "p$i" type veth peer name eth0 netns "${NS[$i]}"
  ip -n "$HUB" link set "p$i" master br0 up
  ip -n "${NS[$i]}" link set lo up
  ip -n "${NS[$i]}" addr add "${ADDR[$i]}/24" dev eth0
  ip -n "${NS[$i]}" link set eth0 up
  echo "${ADDR[$i]} ${NS[$i]} ${NAMES[$i]}" >>"$WORK/hostmap"
  echo "$RELAY_PREFIX.$((i + 1)) ${NS[$i]} ${NAMES[$i]}" >>"$WORK/hostmap"
done
# Ready when every host's eth0 has carrier and every bridge port forwards.
ready=0
for ((try = 0; try < 100; ++try)); do
  ready=1
  for i in 0 1 2; do
    [[ $(ip netns exec "${NS[$i]}" cat /sys/class/net/eth0/operstate) == up ]] || ready=0
    [[ $(ip -n "$HUB" -d link show "p$i") == *"state forwarding"* ]] || ready=0
  done
  [[ $ready == 1 ]] && break
  sleep 0.05
done
[[ $ready == 1 ]] || die "the namespaces' links did not come up: $(ip -n "$HUB" -br link)"
say "hosts: ${NAMES[0]}=${ADDR[0]} ${NAMES[1]}=${ADDR[1]} ${NAMES[2]}=${ADDR[2]} (namespaces ${NS[*]}, bridge in $HUB)"

# --- the model --------------------------------------------------------------
if [[ -z $MODEL ]]; then
  MODEL=$WORK/tiny.gguf
  "$GROK" init --preset tiny "$MODEL" --seed 7 -t 1 >"$WORK/init.log" 2>&1 || {
    cat "$WORK/init.log" >&2
    die "grok init --preset tiny failed"
  }
fi
MODEL=$(readlink -f -- "$MODEL")
HAS_VOCAB=1
"$GROK" tokenize -m "$MODEL" -p "$PROMPT" >/dev/null 2>&1 || HAS_VOCAB=0
say "model: $MODEL"

# --- running ----------------------------------------------------------------
# rx/tx bytes of host i's eth0.
bytes() { ip netns exec "${NS[$1]}" cat "/sys/class/net/eth0/statistics/$2_bytes"; }

# mpi NP OUT ERR GROK-ARGS...: grok over hosts h0..h(NP-1), one rank each,
# at addresses MPI_ADDR in MPI_SUBNET; mpirun runs on h0. Rank 0's stdout to
# OUT, everything else to ERR.
MPI_ADDR=("${ADDR[@]}")
MPI_SUBNET=$SUBNET
mpi() {
  local np=$1 out=$2 err=$3 i
  shift 3
  : >"$WORK/hostfile"
  for ((i = 0; i < np; ++i)); do echo "${MPI_ADDR[$i]} slots=1" >>"$WORK/hostfile"; done
  ip netns exec "${NS[0]}" unshare --uts sh -c 'hostname "$0" && exec "$@"' "${NAMES[0]}" \
    env GROK_MH_HOSTMAP="$WORK/hostmap" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    GROK_ALLREDUCE="${GROK_ALLREDUCE:-}" \
    timeout 240 mpirun -np "$np" --hostfile "$WORK/hostfile" --map-by node --bind-to none --oversubscribe \
    --mca plm_rsh_agent "$RSH" --mca plm_rsh_no_tree_spawn 1 --mca orte_keep_fqdn_hostnames 1 \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$MPI_SUBNET" --mca oob_tcp_if_include "$MPI_SUBNET" \
    -x GROK_ALLREDUCE "$GROK" "$@" >"$out" 2>"$err"
}

# max |a - b| of two float32 .npy files, and their shape; exit 1 when the
# shapes differ or either holds a NaN.
compare_npy() {
  "$PY" - "$1" "$2" <<'PYEOF'
import array, ast, math, struct, sys
def load(path):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            sys.exit(f"{path}: not a .npy file")
        major = f.read(2)[0]
        n = struct.unpack("<H", f.read(2))[0] if major == 1 else struct.unpack("<I", f.read(4))[0]
        h = ast.literal_eval(f.read(n).decode("latin1"))
        if h["descr"] != "<f4" or h["fortran_order"]:
            sys.exit(f"{path}: not little-endian float32 in C order: {h}")
        a = array.array("f")
        a.frombytes(f.read())
        if sys.byteorder != "little":
            a.byteswap()
        return tuple(h["shape"]), a
(sa, a), (sb, b) = load(sys.argv[1]), load(sys.argv[2])
if sa != sb or len(a) != len(b):
    sys.exit(f"shapes differ: {sa} vs {sb}")
if any(math.isnan(x) for x in b):
    sys.exit("NaN in the distributed logits")
print(max(abs(x - y) for x, y in zip(a, b)), *sa)
PYEOF
}

FAILS=0
fail() {
  echo "FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}

say "single process: logits and generate"
"$GROK" logits -m "$MODEL" --tokens "$TOKENS" --all-positions -o "$WORK/ref.npy" -t 1 >/dev/null 2>"$WORK/ref.err" ||
  { cat "$WORK/ref.err" >&2; die "single-process grok logits failed"; }
if [[ $HAS_VOCAB == 1 ]]; then
  "$GROK" generate -m "$MODEL" -p "$PROMPT" -n 24 --temperature 0 -t 1 >"$WORK/ref.txt" 2>"$WORK/ref-gen.err" ||
    { cat "$WORK/ref-gen.err" >&2; die "single-process grok generate failed"; }
else
  say "NOTE: the model has no vocabulary (no Grok-1 tokenizer.model was found for grok init): generate is not checked"
fi

for np in 2 3; do
  for i in 0 1 2; do tx0[$i]=$(bytes "$i" tx); done
  if ! mpi "$np" "$WORK/np$np.out" "$WORK/np$np.err" logits -m "$MODEL" --tokens "$TOKENS" --all-positions \
    -o "$WORK/np$np.npy" -t 1; then
    cat "$WORK/np$np.err" >&2
    fail "logits over $np hosts: mpirun failed"
    continue
  fi
  if ! cmp_out=$(compare_npy "$WORK/ref.npy" "$WORK/np$np.npy" 2>&1); then
    fail "logits over $np hosts: $cmp_out"
    continue
  fi
  read -r maxdiff positions vocab <<<"$cmp_out"
  if "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 1e-4 else 1)" "$maxdiff"; then
    say "logits np $np: [$positions, $vocab] max |distributed - single| = $maxdiff <= 1e-4: ok"
  else
    fail "logits over $np hosts differ from one process's by $maxdiff (> 1e-4)"
  fi
  # Each follower gathers about positions x vocab/np floats to rank 0 over
  # its eth0; ask for half of that, in case the split is uneven.
  want=$((positions * vocab * 4 / np / 2))
  for ((i = 1; i < np; ++i)); do
    sent=$(($(bytes "$i" tx) - tx0[i]))
    if ((sent >= want)); then
      say "logits np $np: ${NAMES[$i]} sent $sent bytes over its eth0 (its logits share is ~$((2 * want))): ok"
    else
      fail "logits over $np hosts: ${NAMES[$i]}'s eth0 sent only $sent bytes, less than $want: the ranks did not talk over TCP between the namespaces"
    fi
  done
  if [[ $HAS_VOCAB == 1 ]]; then
    if ! mpi "$np" "$WORK/gen$np.txt" "$WORK/gen$np.err" generate -m "$MODEL" -p "$PROMPT" -n 24 --temperature 0 -t 1; then
      cat "$WORK/gen$np.err" >&2
      fail "generate over $np hosts: mpirun failed"
    elif cmp -s "$WORK/ref.txt" "$WORK/gen$np.txt"; then
      say "generate np $np: $(wc -c <"$WORK/ref.txt") bytes identical to one process's: ok"
    else
      fail "generate over $np hosts printed something else than one process:"$'\n'"  single: $(cat "$WORK/ref.txt")"$'\n'"  np $np:   $(cat "$WORK/gen$np.txt")"
    fi
  fi
done

# Which host each rank ran on, as the ranks report it (bench --json's per_rank).
bench() {  # bench NP ALGORITHM OUT
  GROK_ALLREDUCE=$2 mpi "$1" "$3" "$3.err" bench -m "$MODEL" -p 0 -n 64 -r 3 --json -t 1 --probe-mib 8
}
json() { "$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"j": j}))' "$@"; }

if bench 3 doubling "$WORK/hosts.json"; then
  hosts=$(json "$WORK/hosts.json" '",".join(r["host"] for r in j["per_rank"])')
  if [[ $hosts == h0,h1,h2 ]]; then
    say "bench np 3: ranks 0,1,2 report hosts $hosts: ok"
  else
    fail "bench over 3 hosts: the ranks report hosts '$hosts', not h0,h1,h2"
  fi
else
  cat "$WORK/hosts.json.err" >&2
  fail "bench over 3 hosts: mpirun failed"
fi

if ((FAILS > 0)); then
  echo "FAIL: $FAILS check(s) failed" >&2
  exit 1
fi
say "all correctness checks passed"

# --- latency against per-token time (printed, never asserted) ----------------
[[ ${GROK_MH_NETEM:-1} == 0 ]] && exit 0
# The delay: netem on every host's eth0 (egress) where the kernel has it;
# else delay_relay.py, which moves every packet between TUN devices tun0 of
# the hosts (a second network, $RELAY_PREFIX.0/24) DELAY_US after reading it.
# Either way each message is delayed once: +DELAY_US one-way per message.
# With the relay, the baseline is the relay without delay (its own cost is
# then in both), and the bridge's time is shown too.
METHOD=netem
if ! command -v tc >/dev/null; then
  METHOD=relay
  say "tc is not installed: the delay comes from delay_relay.py"
elif ! ip netns exec "${NS[0]}" tc qdisc add dev eth0 root netem delay "${DELAY_US}us" 2>"$WORK/tc.err"; then
  METHOD=relay
  say "netem is not available here ($(head -1 "$WORK/tc.err") - a kernel without CONFIG_NET_SCH_NETEM?): the delay comes from delay_relay.py"
else
  ip netns exec "${NS[0]}" tc qdisc del dev eth0 root
fi
if [[ $METHOD == relay ]]; then
  coproc RELAY { exec "$PY" "$HERE/delay_relay.py" "$DELAY_US" "$RELAY_PREFIX" "${NS[@]}" 2>"$WORK/relay.err"; }
  RELAY_PID=$RELAY_PID  # cleanup ends it
  read -r line <&"${RELAY[0]}" || true
  [[ ${line:-} == ready ]] || die "delay_relay.py did not start: $(cat "$WORK/relay.err")"
  for i in 0 1 2; do
    ip -n "${NS[$i]}" addr add "$RELAY_PREFIX.$((i + 1))/24" dev tun0
    ip -n "${NS[$i]}" link set tun0 up
  done
fi
# delay on|off: with netem, a qdisc on each host's eth0; with the relay, a
# signal it answers once the change is in effect.
delay() {
  local i line
  if [[ $METHOD == netem ]]; then
    for i in 0 1 2; do
      if [[ $1 == on ]]; then
        ip netns exec "${NS[$i]}" tc qdisc replace dev eth0 root netem delay "${DELAY_US}us"
      else
        ip netns exec "${NS[$i]}" tc qdisc del dev eth0 root 2>/dev/null || true
      fi
    done
  else
    kill -s "$([[ $1 == on ]] && echo USR1 || echo USR2)" "$RELAY_PID"
    read -r line <&"${RELAY[0]}"
    [[ $line == "delay $([[ $1 == on ]] && echo "$DELAY_US" || echo 0)" ]] || die "delay_relay.py answered '$line'"
  fi
}
over() {  # over bridge|delayed: which network the next benches use
  if [[ $1 == delayed && $METHOD == relay ]]; then
    MPI_ADDR=("$RELAY_PREFIX.1" "$RELAY_PREFIX.2" "$RELAY_PREFIX.3")
    MPI_SUBNET=$RELAY_PREFIX.0/24
  else
    MPI_ADDR=("${ADDR[@]}")
    MPI_SUBNET=$SUBNET
  fi
}

# The model: a token's critical path holds allreduces_per_token all-reduces
# of `rounds` sequential message steps each, plus the plan broadcast (two
# MPI_Ibcast: its length, then its words) and the logits gather: 3 steps.
rounds() {  # rounds ALGORITHM NP
  case $1 in
    doubling) "$PY" -c 'import sys; n = int(sys.argv[1]); p = 1 << (n.bit_length() - 1); print((p.bit_length() - 1) + (2 if p < n else 0))' "$2" ;;
    ring) echo $((2 * ($2 - 1))) ;;
    allgather) echo 1 ;;  # one MPI_Iallgather: every rank sends to every other at once
    mpi) "$PY" -c 'import math, sys; print(2 * math.ceil(math.log2(int(sys.argv[1]))))' "$2" ;;  # reduce + bcast trees
  esac
}
say "delay: ${DELAY_US} us per message one-way, by $METHOD; grok bench -p 0 -n 64 -r 3 -t 1, medians"
printf '%-3s %-10s %9s %9s %9s %9s %7s %6s %6s %9s %9s %6s %9s %9s\n' np algorithm bridge_ms base_ms delay_ms \
  extra_us ar/tok rounds steps model_us comm_ms ratio comm_x_us bytes/tok | tee "$WORK/table"
for np in ${GROK_MH_BENCH_NPS:-2 3}; do
  for alg in doubling ring allgather mpi; do
    ok=1
    over bridge
    bench "$np" "$alg" "$WORK/bridge.json" || ok=0
    if [[ $METHOD == relay ]]; then
      over delayed
      delay off
      [[ $ok == 1 ]] && { bench "$np" "$alg" "$WORK/base.json" || ok=0; }
    else
      cp "$WORK/bridge.json" "$WORK/base.json"
    fi
    delay on
    [[ $ok == 1 ]] && { bench "$np" "$alg" "$WORK/delay.json" || ok=0; }
    delay off
    over bridge
    if [[ $ok == 0 ]]; then
      say "bench np $np $alg failed:"
      tail -5 "$WORK"/*.json.err
      continue
    fi
    "$PY" - "$WORK/bridge.json" "$WORK/base.json" "$WORK/delay.json" "$np" "$alg" "$(rounds "$alg" "$np")" \
      "$DELAY_US" <<'PYEOF' | tee -a "$WORK/table"
import json, sys
bridge, base, slow = (json.load(open(p)) for p in sys.argv[1:4])
np_, alg, rounds, delay = int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), float(sys.argv[7])
for b in (bridge, base, slow):
    assert b["allreduce_algorithm"] == alg and b["ranks"] == np_, (b["allreduce_algorithm"], b["ranks"])
ms = lambda b: 1e3 / b["gen_tokens_per_s_median"]
extra = (ms(slow) - ms(base)) * 1e3
steps = slow["allreduces_per_token"] * rounds + 3
model = steps * delay
comm_extra = (slow["comm_seconds_per_token"] - base["comm_seconds_per_token"]) * 1e6
print(f"{np_:<3} {alg:<10} {ms(bridge):9.3f} {ms(base):9.3f} {ms(slow):9.3f} {extra:9.0f} "
      f"{slow['allreduces_per_token']:7.1f} {rounds:6d} {steps:6.0f} {model:9.0f} "
      f"{1e3 * slow['comm_seconds_per_token']:9.3f} {extra / model:6.2f} {comm_extra:9.0f} "
      f"{slow['comm_bytes_per_token']:9.0f}")
PYEOF
  done
done
say "columns: ms per generated token (1000 / gen_tokens_per_s_median) over the bridge, over the delay path"
say "  with the delay off (base) and on (delay); extra_us = delay - base; ar/tok = allreduces_per_token;"
say "  steps = ar/tok x rounds + 3 (2 plan broadcasts, 1 logits gather); model_us = steps x ${DELAY_US} us;"
say "  comm_ms = comm_seconds_per_token with the delay; ratio = extra_us / model_us;"
say "  comm_x_us = growth of comm_seconds_per_token; bytes/tok = comm_bytes_per_token (sent by rank 0)"
