#!/usr/bin/env python3
"""Run a C++ example and the Python program it mirrors; compare their output.

Usage:
  compare_output.py [--mask REGEX]... [--uniq] [--sort] [--stderr] [--timeout S]
                    CXX_PROGRAM [ARG...] -- PY_SCRIPT [ARG...]

Both programs must exit with code 0, and their standard output (with
--stderr, standard error too, after it) must be the same once masked.  The
script prints the masked C++ output, then a unified diff if they differ, and
exits 0 (same), 1 (different output or a failed exit code) or 2 (bad usage).

Masking rules, applied to both outputs in this order:
  1. An integer of 9 or more digits becomes <id>: Python's id() and a C++
     object's address.  A pid never has that many digits (pid_max is at most
     4194304), and no lesson prints a count that large.
  2. 0x followed by hex digits becomes <addr>.
  3. Each --mask REGEX (Python re syntax, MULTILINE): where it matches, each
     group it captured, or the whole match when it has no group, becomes
     <...>.  An example uses this for pids, durations and the numbers a
     race decides, the things that change from run to run; its entry in
     examples/CMakeLists.txt says why.
  4. With --uniq, a run of identical lines counts as one line: for a
     process that prints the same line once per tick, where how many ticks
     fit in the run depends on the machine's load.
  5. With --sort, the lines are compared sorted: for output whose line order
     depends on which process the scheduler runs first, and only there.
"""
import difflib
import os
import re
import subprocess
import sys

ID = re.compile(r'\b\d{9,}\b')
ADDR = re.compile(r'\b0x[0-9a-fA-F]+\b')


def hide(m):
    """The match with each captured group (or the whole match) as <...>."""
    if not m.re.groups:
        return '<...>'
    whole, base, out, last = m.group(0), m.start(), [], 0
    for g in range(1, m.re.groups + 1):
        if m.start(g) < 0:
            continue
        out += [whole[last:m.start(g) - base], '<...>']
        last = m.end(g) - base
    return ''.join(out) + whole[last:]


def mask(text, patterns):
    text = ID.sub('<id>', text)
    text = ADDR.sub('<addr>', text)
    for pattern in patterns:
        text = re.sub(pattern, hide, text, flags=re.M)
    return text


def run(argv, merge_stderr, timeout):
    # Python's own buffering, whatever the caller's environment says: with
    # PYTHONUNBUFFERED, print() writes its text and its newline in two
    # write()s, and two processes' lines could be cut into each other.
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONUNBUFFERED'}
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, env=env)
    out = proc.stdout.decode('utf-8', 'replace')
    err = proc.stderr.decode('utf-8', 'replace')
    if merge_stderr:
        out += err
    elif err:
        sys.stderr.write(err)
    return proc.returncode, out


def main(args):
    patterns, uniq, sort, merge, timeout = [], False, False, False, 60.0
    while args and args[0].startswith('--'):
        opt = args.pop(0)
        if opt == '--mask' and args:
            patterns.append(args.pop(0))
        elif opt == '--uniq':
            uniq = True
        elif opt == '--sort':
            sort = True
        elif opt == '--stderr':
            merge = True
        elif opt == '--timeout' and args:
            timeout = float(args.pop(0))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if '--' not in args or args.index('--') == 0 or args[-1] == '--':
        print(__doc__, file=sys.stderr)
        return 2
    split = args.index('--')
    cxx, py = args[:split], [sys.executable] + args[split + 1:]
    results = []
    for argv in (cxx, py):
        code, out = run(argv, merge, timeout)
        results.append((code, mask(out, patterns)))
    (cxx_code, cxx_out), (py_code, py_out) = results
    sys.stdout.write(cxx_out)
    ok = True
    for name, code in (('C++ example', cxx_code), ('Python program', py_code)):
        if code != 0:
            print(f'{name} exited with code {code}')
            ok = False
    a, b = cxx_out.splitlines(), py_out.splitlines()
    if uniq:
        a = [line for i, line in enumerate(a) if i == 0 or a[i - 1] != line]
        b = [line for i, line in enumerate(b) if i == 0 or b[i - 1] != line]
    if sort:
        a, b = sorted(a), sorted(b)
    if a != b:
        sys.stdout.writelines(line + '\n' for line in difflib.unified_diff(
            b, a, 'python3 ' + args[split + 1], cxx[0], lineterm=''))
        ok = False
    if ok:
        print(f'same output as python3 {args[split + 1]} ({len(a)} lines)')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
