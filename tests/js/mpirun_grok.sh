#!/usr/bin/env bash
# grok under mpirun, usable as GROK_BINARY for the JS tests:
#
#   GROK_BINARY=tests/js/mpirun_grok.sh GROK_REAL_BINARY=$PWD/build/grok node --test openai_client.test.js
#
# The commands grok runs under mpirun (generate, logits, bench, serve,
# inspect) run as `mpirun -np ${GROK_RANKS:-2} <GROK_REAL_BINARY> ARGS...`;
# the others (tokenize, detokenize, ...: grok refuses them under mpirun) and
# --help/--version run the real binary as one process. Either way the exit
# status is the command's own, except for serve stopped by this wrapper:
#
# serve: SIGTERM or SIGINT to this script is forwarded to mpirun, which ends
# every rank. mpirun exits 1 after such a signal whatever its ranks did, so
# that 1 becomes 0 when rank 0 printed `grok: stopped` (a clean stop: no
# pass was cut); a stop that cut a request (`grok: error: stopped with N
# requests running`), a rank that died, or any other status stays as it is.
# Rank 0's stderr is copied to this script's stderr as it comes.
#
# odls_base_sigkill_timeout (GROK_MPI_SIGKILL_TIMEOUT, default 3): OpenMPI
# 4.1 stops its ranks (on its own SIGTERM, or when a rank died) with SIGCONT,
# a sleep of this many seconds, SIGTERM, another sleep, SIGKILL. The second
# sleep is rank 0's time to answer its clients and exit; it is cut short by
# the first rank's exit and rounds down to whole seconds, so 1 (the default)
# SIGKILLs rank 0 almost at once. 3 gives rank 0 two seconds or more (it needs
# milliseconds) and a clean stop takes about 4 s; 10 would take about 19 s,
# too close to the 20 s lib/server.js waits before SIGKILL.
set -uo pipefail

real=${GROK_REAL_BINARY:-$(cd "$(dirname "$0")/../.." && pwd)/build/grok}
if [[ ! -x $real ]]; then
  echo "mpirun_grok.sh: GROK_REAL_BINARY ($real) is not an executable grok" >&2
  exit 2
fi
if ! command -v mpirun >/dev/null; then
  echo "mpirun_grok.sh: mpirun is not on PATH" >&2
  exit 2
fi
if [[ $(id -u) == 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
fi
mpirun=(mpirun --oversubscribe --bind-to none -np "${GROK_RANKS:-2}"
  --mca odls_base_sigkill_timeout "${GROK_MPI_SIGKILL_TIMEOUT:-3}" "$real")

case ${1:-} in
  generate | logits | bench | inspect) exec "${mpirun[@]}" "$@" ;;
  serve) ;;
  *) exec "$real" "$@" ;;
esac

# serve: stderr goes through tee into a log, to see whether rank 0 printed
# `grok: stopped`. tee ignores the stop signals (a Ctrl-C reaches the whole
# process group) so that it copies everything up to mpirun's end.
log=$(mktemp "${TMPDIR:-/tmp}/mpirun_grok.XXXXXX")
trap 'rm -f "$log"' EXIT
exec 3> >(trap '' TERM INT; exec tee "$log" >&2)
tee_pid=$!
# The traps come first: a signal before mpirun has started is sent on to it
# once it has.
forwarded="" pid=""
# shellcheck disable=SC2317  # called by the traps below
forward() {  # signal name
  forwarded=$1
  [[ -z $pid ]] || kill "-$1" "$pid" 2>/dev/null
}
trap 'forward TERM' TERM
trap 'forward INT' INT
"${mpirun[@]}" "$@" 2>&3 &
pid=$!
exec 3>&-
[[ -z $forwarded ]] || kill "-$forwarded" "$pid" 2>/dev/null

# A trapped signal ends `wait` early (status > 128) while mpirun runs on:
# wait again until it has exited; bash keeps an exited child's status, so the
# last wait returns mpirun's own.
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
wait "$pid"
status=$?
wait "$tee_pid" 2>/dev/null  # tee has copied the last line (EOF once mpirun is gone)

if [[ -n $forwarded && $status == 1 ]] && grep -qx 'grok: stopped' "$log"; then
  status=0
fi
exit "$status"
