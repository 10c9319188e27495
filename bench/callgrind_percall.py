#!/usr/bin/env python3
"""bench/callgrind_percall.py — instructions per call of named functions, from
one callgrind output file (one process: valgrind writes one file per process
with --callgrind-out-file=DIR/cg.%p).

    bench/callgrind_percall.py FILE NAME...

For each NAME (a substring of the demangled function name, e.g.
'BaseProxy::_callmethod(' or 'Server::_dispatch('), it adds up, over every call
site whose callee matches, the number of calls and their inclusive cost (Ir),
and prints the calls, the total and the cost per call.  bench/README.md
(Managers) uses it on bench_managers, one file for the manager's server process
and one for the client child.
"""
import re
import sys


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    path, patterns = argv[1], argv[2:]
    names = {}  # callgrind compresses names: "(12) name" once, then "(12)"

    def name_of(token):
        m = re.match(r'\((\d+)\)(?: (.*))?', token)
        if not m:
            return token
        if m.group(2):
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), '?')

    totals = {p: [0, 0] for p in patterns}
    callee, pending_calls = None, None
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('fn='):
                name_of(line[3:])
                callee, pending_calls = None, None
            elif line.startswith('cfn='):
                callee = name_of(line[4:])
            elif line.startswith('calls='):
                pending_calls = int(line.split('=')[1].split()[0])
            elif pending_calls is not None and line and (line[0].isdigit() or line[0] in '+-*'):
                # The line after calls=: the call's position and its inclusive cost.
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                for p in patterns:
                    if callee and p in callee:
                        totals[p][0] += pending_calls
                        totals[p][1] += cost
                pending_calls = None
    for p in patterns:
        calls, ir = totals[p]
        per_call = ir / calls if calls else 0
        print(f"{p:40s} calls {calls:8d}  inclusive Ir {ir:12d}  per call {per_call:9.0f}")


if __name__ == '__main__':
    main(sys.argv)
