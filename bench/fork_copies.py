#!/usr/bin/env python3
"""bench/fork_copies.py — the parent's page faults per fork, split by whether
its latest child was still alive when the fault came, from `perf script` text.

    perf record -e page-faults -c 1 -e sched:sched_process_fork \\
        -e sched:sched_process_exit -o FILE.data \\
        build/release/bench/bench_process --count=lib_fork:200
    perf script -i FILE.data > FILE.txt
    bench/fork_copies.py FILE.txt

fork() write-protects every private page of the parent.  The first write to
such a page afterwards is a fault; while the child lives, the page is still
shared with it, and the fault copies it (4 KiB, a new page); once the child has
exited, the kernel gives the page back to the parent without a copy.  The
first kind costs about twice the second on the VM of bench/README.md ("Fork:
page faults and system calls", fifth round).  The parent is the lowest pid in
the file; a fault counts as "child alive" when a child it forked has started
and not yet exited.
"""
import re
import sys

LINE = re.compile(r'\s*\S+\s+(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+(?:\d+\s+)?(\S+):\s*(.*)')


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    events = []
    with open(argv[1]) as f:
        for line in f:
            m = LINE.match(line)
            if m:
                events.append((float(m.group(2)), int(m.group(1)), m.group(3), m.group(4)))
    if not events:
        print('no events in ' + argv[1], file=sys.stderr)
        return 1
    events.sort()
    parent = min(pid for _, pid, _, _ in events)
    alive = set()
    forks = while_alive = otherwise = 0
    for _, pid, event, rest in events:
        if event == 'sched:sched_process_fork' and pid == parent:
            alive.add(int(re.search(r'child_pid=(\d+)', rest).group(1)))
            forks += 1
        elif event == 'sched:sched_process_exit':
            alive.discard(pid)
        elif event == 'page-faults' and pid == parent and forks > 0:
            if alive:
                while_alive += 1
            else:
                otherwise += 1
    print('%d forks; parent page faults per fork: %.2f while the child lives (copies), '
          '%.2f after it exited' % (forks, while_alive / forks, otherwise / forks))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
