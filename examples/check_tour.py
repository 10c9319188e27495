#!/usr/bin/env python3
"""Check the tour's command line and its whole run.

Usage: check_tour.py TOUR

  * `tour --list` prints one line per lesson, "NAME  title", in at most 80
    columns, exit code 0;
  * `tour NAME` for an unknown NAME exits with code 2 and names the lessons
    on stderr;
  * `tour A B` runs just those two lessons, in that order;
  * docs/tour.md has a row for each lesson listed;
  * `tour` runs every lesson: exit code 0, "Tour complete: N lessons, 0
    failed.", each lesson shows a Python program that was found, and every
    line of the tour's own text (all but the examples' output, which runs
    from a "--- C++: ... ---" line to its "--- exit code" line) fits in 80
    columns, counting a wide (CJK) character as two.
The time the whole tour took is printed, not asserted: the ctest's TIMEOUT
is the bound.
"""
import os
import re
import subprocess
import sys
import time
import unicodedata


def columns(line):
    return sum(2 if unicodedata.east_asian_width(c) in 'WF' else 1 for c in line)


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def main(tour):
    failures = []

    def check(ok, what):
        print(('ok:   ' if ok else 'FAIL: ') + what)
        if not ok:
            failures.append(what)

    code, out, _ = run([tour, '--list'])
    names = [line.split()[0] for line in out.splitlines()]
    check(code == 0 and len(names) >= 20, f'--list: {len(names)} lessons, exit {code}')
    check(all(re.match(r'^[a-z_]+ +\S', l) and columns(l) <= 80
              for l in out.splitlines()), '--list: "NAME  title" lines within 80 columns')

    code, out, err = run([tour, 'no_such_lesson'])
    check(code == 2 and "unknown lesson 'no_such_lesson'" in err
          and all(n in err for n in names),
          f'unknown name: exit {code}, the lessons listed on stderr')

    pick = [names[-3], names[1]]
    code, out, _ = run([tour] + pick)
    shown = re.findall(r'^=== \d+/\d+  (\S+) ===$', out, re.M)
    check(code == 0 and shown == pick, f'tour {" ".join(pick)}: ran {shown}, exit {code}')

    start = time.monotonic()
    code, out, _ = run([tour])
    seconds = time.monotonic() - start
    shown = re.findall(r'^=== \d+/\d+  (\S+) ===$', out, re.M)
    check(code == 0 and shown == names, f'tour: ran {len(shown)} lessons in order, exit {code}')
    check(f'Tour complete: {len(names)} lessons, 0 failed.' in out, 'tour: 0 failed')
    check('(not found:' not in out and out.count('--- Python: examples/') >= len(names),
          'tour: every lesson shows its Python program')
    wide, inside = [], False
    for line in out.splitlines():
        if line.startswith('--- C++: ') and not line.endswith(' & ---'):
            inside = True
        elif line.startswith('--- exit code'):
            inside = False
        if not inside and columns(line) > 80:
            wide.append(line)
    check(not wide, 'tour: its own text fits in 80 columns' +
          ''.join('\n      ' + l for l in wide))
    page = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'docs', 'tour.md')
    with open(page, encoding='utf-8') as f:
        rows = f.read()
    missing = [n for n in names if f'| `{n}` |' not in rows]
    check(not missing, f'docs/tour.md has a row for each lesson (missing: {missing})')
    print(f'the whole tour took {seconds:.1f} s')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
