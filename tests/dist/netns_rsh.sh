#!/bin/sh
# OpenMPI's rsh agent for "hosts" that are Linux network namespaces on this
# machine (multihost_test.sh). mpirun calls it as it would call ssh:
#   netns_rsh.sh HOST WORD...
# where the words, joined by spaces, are a command line for the remote shell
# (" orted -mca ess "env" ..."). HOST is looked up in $GROK_MH_HOSTMAP, lines
# of "ADDRESS NAMESPACE HOSTNAME"; the command runs in that namespace, in a
# UTS namespace of its own whose hostname is HOSTNAME, so that each rank
# reports its own machine.
set -eu
host=$1
shift
map=${GROK_MH_HOSTMAP:?netns_rsh.sh: GROK_MH_HOSTMAP is not set}
line=$(awk -v h="$host" '$1 == h || $3 == h { print $2, $3; exit }' "$map")
if [ -z "$line" ]; then
  echo "netns_rsh.sh: host '$host' is not in $map" >&2
  exit 255
fi
set -- "${line%% *}" "${line#* }" "$*"
exec ip netns exec "$1" unshare --uts sh -c 'hostname "$1" && exec sh -c "$2"' netns_rsh "$2" "$3"
