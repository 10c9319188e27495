#!/usr/bin/env python3
"""tests/check_cpython_tests.py -- checks tests/cpython_tests.tsv, the table that maps
every test method of CPython 3.11's Lib/test/_test_multiprocessing.py to its C++ twin.

Usage: check_cpython_tests.py TABLE TEST_BINARY [CPYTHON_TEST_FILE]

A row may carry a fourth field, "from another branch": its C++ test is being
added on another line of work.  Until the two meet, a missing name there is a
warning; once the test exists, the mark must go (the script fails until it does).

It fails (exit 1) when
  - a row is malformed: not three tab-separated fields, or a status that is none of
    "Suite.Name ...", "does not apply: <why>", "not ported: <what the C++ lacks>";
  - a C++ name in the table is not a test of TEST_BINARY (--gtest_list_tests);
  - a test method of CPython's file has no row, or a row names a method that CPython's
    file does not have (in that class).
The CPython half needs the 3.11 test suite: CPYTHON_TEST_FILE if given, else
test/_test_multiprocessing.py in this interpreter's standard library (when it is
3.11) or in python3.11's.  Without it the C++ half still runs, and the script then
exits 77, which ctest reports as skipped.
"""
import ast
import os
import re
import subprocess
import sys
import sysconfig

BRANCH_MARK = "from another branch"
CPP_NAME = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$")


def read_table(path):
    """Rows (line number, class, method, status, elsewhere); errors for malformed rows."""
    rows, errors = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if any(c in line for c in ";[]"):
                # CMake reads the table for the docs page as a list: no ; [ ].
                errors.append(f"{path}:{number}: no ';', '[' or ']' in the file: {line!r}")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            elsewhere = len(fields) == 4 and fields[3] == BRANCH_MARK
            if elsewhere:
                fields = fields[:3]
            if len(fields) != 3 or not all(fields):
                errors.append(f"{path}:{number}: expected class<TAB>method<TAB>status: {line!r}")
                continue
            cls, method, status = fields
            if status.startswith("does not apply: "):
                if not status[len("does not apply: "):].strip():
                    errors.append(f"{path}:{number}: 'does not apply' without a reason")
            elif status.startswith("not ported: "):
                if not status[len("not ported: "):].strip():
                    errors.append(f"{path}:{number}: 'not ported' without saying what is missing")
            elif not all(CPP_NAME.match(name) for name in status.split(" ")):
                errors.append(f"{path}:{number}: status is neither C++ test names (Suite.Name) "
                              f"nor 'does not apply: ...' nor 'not ported: ...': "
                              f"{status!r}")
            rows.append((number, cls, method, status, elsewhere))
    return rows, errors


def compiled_tests(binary):
    """Suite.Name of every test of the binary, without the instantiation prefix
    (WithProcesses/) and the parameter suffix (/fork)."""
    output = subprocess.run([binary, "--gtest_list_tests"], check=True,
                            capture_output=True, text=True, timeout=120).stdout
    names, suite = set(), None
    for line in output.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            suite = line.split("#")[0].strip().rstrip(".").split("/")[-1]
        else:
            names.add(f"{suite}.{line.split('#')[0].strip().split('/')[0]}")
    return names


def find_cpython_file(argv):
    if len(argv) > 3 and argv[3]:
        if not os.path.isfile(argv[3]):
            sys.exit(f"{argv[3]}: no such file (CPYTHON_TEST_FILE)")
        return argv[3]
    candidates = []
    if sys.version_info[:2] == (3, 11):
        candidates.append(os.path.join(sysconfig.get_paths()["stdlib"], "test",
                                       "_test_multiprocessing.py"))
    try:
        stdlib = subprocess.run(
            ["python3.11", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True, text=True, timeout=60).stdout.strip()
        if stdlib:
            candidates.append(os.path.join(stdlib, "test", "_test_multiprocessing.py"))
    except OSError:
        pass
    return next((c for c in candidates if os.path.isfile(c)), None)


def cpython_tests(path):
    """(class, method) of every test method, in file order."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    return [(node.name, item.name)
            for node in tree.body if isinstance(node, ast.ClassDef)
            for item in node.body
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            and item.name.startswith("test")]


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    table, binary = argv[1], argv[2]
    rows, errors = read_table(table)

    compiled = compiled_tests(binary)
    warnings = []
    for number, cls, method, status, elsewhere in rows:
        if status.startswith(("does not apply: ", "not ported: ")):
            if elsewhere:
                errors.append(f"{table}:{number}: '{BRANCH_MARK}' on a row without C++ names")
            continue
        missing = [name for name in status.split(" ") if name not in compiled]
        where = f"in {os.path.basename(binary)} --gtest_list_tests"
        if elsewhere and missing:
            warnings.append(f"{table}:{number}: {cls}.{method}: {' '.join(missing)} not {where} "
                            f"(marked '{BRANCH_MARK}')")
        elif elsewhere:
            errors.append(f"{table}:{number}: {cls}.{method}: {status} exists now: "
                          f"remove the '{BRANCH_MARK}' mark")
        else:
            errors.extend(f"{table}:{number}: {cls}.{method}: no C++ test {name} {where}"
                          for name in missing)

    source = find_cpython_file(argv)
    if source is not None:
        expected = cpython_tests(source)
        listed = [(cls, method) for _, cls, method, _, _ in rows]
        for key in expected:
            if key not in listed:
                errors.append(f"{table}: no row for {key[0]}.{key[1]} ({source})")
        for number, cls, method, _, _ in rows:
            if (cls, method) not in expected:
                errors.append(f"{table}:{number}: {cls}.{method} is not a test of {source}")
        seen = set()
        for number, cls, method, _, _ in rows:
            if (cls, method) in seen:
                errors.append(f"{table}:{number}: {cls}.{method} has two rows")
            seen.add((cls, method))

    for warning in warnings:
        print("warning:", warning)
    for error in errors:
        print(error)
    if errors:
        return 1
    counts = {"ported": 0, "does not apply": 0, "not ported": 0}
    for _, _, _, status, _ in rows:
        key = next((k for k in counts if status.startswith(k + ":")), "ported")
        counts[key] += 1
    print(f"{len(rows)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if source is None:
        print("CPython 3.11's test/_test_multiprocessing.py not found: "
              "only the C++ names were checked")
        return 77
    print(f"every test method of {source} has its row")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
