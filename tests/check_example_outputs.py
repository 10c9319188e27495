#!/usr/bin/env python3
"""tests/check_example_outputs.py DOCS_DIR EXAMPLES_DIR — the pages show what the examples print.

A page shows an example's output as a fenced block right after a marker line:

    <!-- output of: manager_dict fork (numbers vary on lines: 3) -->
    ```
    1. len(temp_dict) = 100
    ...
    ```

(an HTML comment: Doxygen leaves it out of the page).  This check runs
EXAMPLES_DIR/manager_dict with the arguments fork, and compares its standard
output with the block, line by line.  What may differ from run to run is
said in parentheses, each part separated by "; ", lines counted from 1:
  numbers vary on lines: 3, 5-7   each run of digits (with its minus sign)
                                  matches any run of digits
                                  (pids, counts that depend on a race);
  any order on lines: 4-9         those lines may come in another order
                                  (processes that print at the same time);
  free lines: 2                   those lines are not compared (a state that
                                  depends on timing), but must be there.
Every other character must be equal, and the program must exit with 0.

Exits 0 when every block matches (and there is at least one), 1 otherwise,
with a diff of each block that does not match.
"""
import difflib
import glob
import os
import re
import subprocess
import sys

MARKER = re.compile(r"^<!-- output of: (\S+)((?: [^(]\S*)*)(?: \((.*)\))? -->$")
OPTIONS = ("numbers vary on lines", "any order on lines", "free lines")


def line_set(text):
    """{3, 5, 6, 7} from "3, 5-7"."""
    out = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def options(text):
    """{option: set of lines} from the parenthesis of a marker."""
    found = {name: set() for name in OPTIONS}
    for part in filter(None, (text or "").split("; ")):
        name, _, lines = part.partition(": ")
        if name not in found:
            raise ValueError(f"unknown option {name!r} (known: {', '.join(OPTIONS)})")
        found[name] = line_set(lines)
    return found


def blocks(page):
    """(line number, program, args, varying lines, expected lines) for each marker of page."""
    with open(page, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            yield i + 1, None, None, None, f"no ``` block right after the marker"
            continue
        end = lines.index("```", i + 2)
        yield i + 1, m.group(1), m.group(2).split(), options(m.group(3)), lines[i + 2:end]


def comparable(lines, opts):
    """The lines with what may vary taken out: masked numbers, free lines
    blanked, and each any-order run sorted."""
    out = []
    for n, line in enumerate(lines, start=1):
        if n in opts["free lines"]:
            line = "(free)"
        elif n in opts["numbers vary on lines"]:
            line = re.sub(r"-?[0-9]+", "N", line)
        out.append(line)
    order = sorted(opts["any order on lines"])
    if order:
        idx = [n - 1 for n in order if n <= len(out)]
        for i, line in zip(idx, sorted(out[i] for i in idx)):
            out[i] = line
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_example_outputs.py DOCS_DIR EXAMPLES_DIR")
    docs, examples = sys.argv[1:]
    checked, failed = 0, 0
    for page in sorted(glob.glob(os.path.join(docs, "*.md"))):
        for lineno, program, args, opts, expected in blocks(page):
            where = f"{os.path.relpath(page, docs)}:{lineno}"
            if program is None:
                print(f"{where}: {expected}")
                failed += 1
                continue
            checked += 1
            run = subprocess.run([os.path.join(examples, program), *args], capture_output=True, text=True,
                                 timeout=240)
            actual = run.stdout.rstrip("\n").split("\n")
            ok = (run.returncode == 0 and len(actual) == len(expected)
                  and comparable(actual, opts) == comparable(expected, opts))
            if ok:
                print(f"{where}: {program} {' '.join(args)}: the output matches")
                continue
            failed += 1
            print(f"{where}: {program} {' '.join(args)} (exit code {run.returncode}) printed something else:")
            sys.stdout.writelines(difflib.unified_diff([e + "\n" for e in expected], [a + "\n" for a in actual],
                                                       "the page", "the program"))
            if run.stderr:
                print(run.stderr)
    print(f"check_example_outputs: {checked} outputs checked, {failed} different")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
