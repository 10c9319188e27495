#!/usr/bin/env python3
"""tests/trace/check_trace.py EXPECTED PROGRAM [ARG...] -- the test of trace mode.

Runs PROGRAM with MULTIPROCESSING_TRACE=1 in its environment, collects the
trace lines it and its children write to stderr ("[<pid>] <step>"), and
compares them with the file EXPECTED.

The lines of each process are compared on their own, in the order that
process wrote them: processes run at once, so only the order within one of
them is fixed.  Processes get names by the order in which they are
announced: P0 is the program itself (it writes the first line); a line
"fork: child pid N", "posix_spawn: ... -> child pid N", "forkserver: child
pid N", "forkserver fork: child pid N" or "resource_tracker fork: child pid
N" of an announced process names pid N
as the next Pk.  Every pid in a line is replaced by its name.

EXPECTED holds sections:
  == Pk          the lines of process Pk, all of them, in order
  == somewhere   lines that must each match a line of some process
In an expected line, {N} stands for any number (an fd, a byte count that
depends on the build directory) and {S} for any run of non-blank characters
(a semaphore's random name).  Lines starting with '#' are comments.

Exit status: 0 when every section matches, 1 otherwise (the report says
which line differs), 77 when PROGRAM cannot be run.
"""
import os
import re
import subprocess
import sys

ANNOUNCE = re.compile(r"(?:^fork: child pid |^posix_spawn: \S+ -> child pid |"
                      r"^forkserver: child pid |^forkserver fork: child pid |"
                      r"^resource_tracker fork: child pid )(\d+)$")


def pattern(expected_line):
    parts = re.split(r"(\{N\}|\{S\})", expected_line)
    regex = "".join({"{N}": r"\d+", "{S}": r"\S+"}.get(p, re.escape(p)) for p in parts)
    return re.compile(regex + r"\Z")


def parse_expected(path):
    sections, current = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("== "):
                current = line[3:].strip()
                sections[current] = []
            elif current is None:
                sys.exit(f"{path}: a line before the first '== ' section: {line!r}")
            else:
                sections[current].append(line)
    return sections


def streams_of(stderr_text):
    """Per-process lists of trace lines, pids replaced by P0, P1..."""
    order, by_pid = [], {}
    for raw in stderr_text.splitlines():
        m = re.match(r"^\[(\d+)\] (.*)$", raw)
        if not m:
            continue
        pid, text = m.group(1), m.group(2)
        if pid not in by_pid:
            by_pid[pid] = []
            order.append(pid)
        by_pid[pid].append(text)
    if not order:
        return {}
    names = {order[0]: "P0"}
    queue = [order[0]]
    while queue:  # breadth first: a process's children in the order it announced them
        pid = queue.pop(0)
        for text in by_pid.get(pid, []):
            m = ANNOUNCE.search(text)
            if m and m.group(1) not in names:
                names[m.group(1)] = f"P{len(names)}"
                queue.append(m.group(1))
    for pid in order:  # a process nobody announced still gets a name
        names.setdefault(pid, f"P{len(names)}(unannounced)")

    def mask(text):
        return re.sub(r"\b\d+\b", lambda m: names.get(m.group(0), m.group(0)), text)

    return {names[pid]: [mask(t) for t in by_pid[pid]] for pid in order}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    expected = parse_expected(sys.argv[1])
    env = dict(os.environ, MULTIPROCESSING_TRACE="1")
    try:
        run = subprocess.run(sys.argv[2:], env=env, capture_output=True, text=True, timeout=240)
    except OSError as e:
        print(f"SKIP: cannot run {sys.argv[2]}: {e}")
        return 77
    streams = streams_of(run.stderr)
    print("----- the trace, by process (pids named) -----")
    for name, lines in streams.items():
        print(f"== {name}")
        for line in lines:
            print(line)
    print("-----")
    failed = run.returncode != 0
    if failed:
        print(f"FAIL: the program exited with {run.returncode}; its stdout:\n{run.stdout}")
    for section, want in expected.items():
        if section == "somewhere":
            every = [line for lines in streams.values() for line in lines]
            for w in want:
                if not any(pattern(w).match(line) for line in every):
                    print(f"FAIL: no process wrote a line like: {w}")
                    failed = True
            continue
        got = streams.get(section)
        if got is None:
            print(f"FAIL: no process {section} in the trace")
            failed = True
            continue
        for i in range(max(len(want), len(got))):
            w = want[i] if i < len(want) else "(nothing more)"
            g = got[i] if i < len(got) else "(nothing more)"
            if i >= len(want) or i >= len(got) or not pattern(w).match(g):
                print(f"FAIL: {section} line {i + 1}:\n  expected: {w}\n  got:      {g}")
                failed = True
                break
    extra = set(streams) - set(expected) - {"somewhere"}
    if any(s != "somewhere" for s in expected) and extra:
        print(f"FAIL: processes the expected file does not list: {sorted(extra)}")
        failed = True
    print("check_trace: FAILED" if failed else "check_trace: passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
