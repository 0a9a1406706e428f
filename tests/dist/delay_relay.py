#!/usr/bin/env python3
"""A userspace stand-in for `tc qdisc ... netem delay` where the kernel has no
sch_netem (multihost_test.sh uses it then).

    delay_relay.py DELAY_US SUBNET_PREFIX NAMESPACE...

Creates a TUN device `tun0` in each namespace (in that order; NAMESPACE i
gets the address SUBNET_PREFIX.(i+1), which the caller assigns) and forwards
every IPv4 packet written to one of them to the TUN device of the namespace
that owns its destination address, DELAY_US microseconds after reading it:
one relay hop per message, so a message's one-way latency grows by DELAY_US
plus the relay's own cost (measure that with the delay off). Other packets
(IPv6 router solicitations and the like) are dropped. Prints "ready" once
the devices exist; SIGUSR2 turns the delay off and SIGUSR1 on again, each
answered with a line "delay US" once in effect; runs until killed. Standard library only, Linux only.
"""
import ctypes
import fcntl
import heapq
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000
PR_SET_TIMERSLACK = 29


def main():
    configured = float(sys.argv[1]) * 1e-6
    delay = configured
    prefix = sys.argv[2]
    namespaces = sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # wake up on time, not up to 50 us late
    # Real-time priority, where allowed: the ranks spin while they wait, and
    # on a machine with as many cores as ranks the relay would otherwise wait
    # for a time slice at every packet.
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except OSError:
        pass
    by_address = {}
    fds = []
    for i, ns in enumerate(namespaces):
        nsfd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        if libc.setns(nsfd, CLONE_NEWNET) != 0:
            sys.exit(f"delay_relay: setns {ns}: {os.strerror(ctypes.get_errno())}")
        os.close(nsfd)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"tun0", IFF_TUN | IFF_NO_PI))
        fds.append(fd)
        by_address[bytes(int(x) for x in f"{prefix}.{i + 1}".split("."))] = fd
    def set_delay(value):
        nonlocal delay
        delay = value
        print(f"delay {delay * 1e6:g}", flush=True)

    # SIGUSR1: delay on, SIGUSR2: delay off; each answered by a line.
    signal.signal(signal.SIGUSR1, lambda *_: set_delay(configured))
    signal.signal(signal.SIGUSR2, lambda *_: set_delay(0.0))
    print("ready", flush=True)
    pending = []  # (due, sequence, fd, packet)
    seq = 0
    while True:
        timeout = None
        if pending:
            timeout = max(0.0, pending[0][0] - time.monotonic())
        readable, _, _ = select.select(fds, [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if len(packet) < 20 or packet[0] >> 4 != 4:
                    continue
                out = by_address.get(packet[16:20])
                if out is None:
                    continue
                if delay <= 0:
                    os.write(out, packet)
                else:
                    seq += 1
                    heapq.heappush(pending, (now + delay, seq, out, packet))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out, packet = heapq.heappop(pending)
            os.write(out, packet)


if __name__ == "__main__":
    main()
