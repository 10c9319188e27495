#!/usr/bin/env bash
# tests/gdb/gdb_printers.sh PROGRAM PRINTERS — the test of the gdb
# pretty-printers that docs/debugging.md describes.
#
# PROGRAM is tests/gdb/gdb_printers_target; PRINTERS is
# tools/gdb/multiprocessing_printers.py.  gdb stops the program in
# stop_here(), goes up to main() and prints each object there, twice:
#   1. with the printers auto-loaded from the program's .debug_gdb_scripts
#      section (its directory added to gdb's auto-load safe-path);
#   2. with auto-loading off and the one documented line
#      `source .../multiprocessing_printers.py`.
# Each printed line must match what the printer is meant to show.
#
# Exit status: 0 pass, 1 fail, 77 skip (no gdb, or ptrace is not allowed here).
set -uo pipefail

program=${1:?usage: gdb_printers.sh PROGRAM PRINTERS}
printers=${2:?usage: gdb_printers.sh PROGRAM PRINTERS}

if ! command -v gdb >/dev/null 2>&1; then
  echo "SKIP: gdb is not installed"
  exit 77
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT

prints=(
  -ex 'print unstarted' -ex 'print finished'
  -ex 'print reader' -ex 'print writer' -ex 'print duplex'
  -ex 'print lock' -ex 'print rlock' -ex 'print semaphore'
  -ex 'print none' -ex 'print flag' -ex 'print number' -ex 'print real'
  -ex 'print text' -ex 'print data' -ex 'print list' -ex 'print single' -ex 'print dict'
  -ex 'print queue' -ex 'print shared'
)

run_gdb() {  # run_gdb LOAD-OPTIONS... : gdb's output goes to $out
  # -nx: no ~/.gdbinit.  The program runs to its end after the prints
  # (`continue`), so that its manager and queue shut down as usual.
  # </dev/null: the program's stdin is not the test's.
  DEBUGINFOD_URLS="" timeout 150 gdb -q -nx -batch "$@" \
    -ex 'set pagination off' -ex 'set confirm off' -ex 'set print pretty off' \
    -ex 'break stop_here' -ex 'run' -ex 'up' \
    -ex 'info auto-load python-scripts' \
    "${prints[@]}" \
    -ex 'continue' \
    --args "$program" >"$out" 2>&1 </dev/null
}

failed=0
# check DESCRIPTION EXTENDED-REGEX
source "$(dirname "${BASH_SOURCE[0]}")/check_lib.sh"

check_prints() {
  check "a Process not started: name, parent, initial" \
    "^\\\$1 = <ForkProcess name='Unstarted' parent=[0-9]+ initial>\$"
  check "a Process joined: name, pid, parent, stopped, exitcode" \
    "^\\\$2 = <ForkProcess name='ForkProcess-2' pid=[0-9]+ parent=[0-9]+ stopped exitcode=0>\$"
  check "a pipe's read end" '^\$3 = .*<Connection fd=[0-9]+ readable>$'
  check "a pipe's write end" '^\$4 = .*<Connection fd=[0-9]+ writable>$'
  check "a duplex connection" '^\$5 = .*<Connection fd=[0-9]+ readable writable>$'
  check "a Lock: name, kind, value, count" \
    "^\\\$6 = <Lock name='/mp-[a-z0-9_]+' kind=SEMAPHORE value=1 maxvalue=1 count=0>\$"
  check "an RLock held twice" \
    "^\\\$7 = <RLock name='/mp-[a-z0-9_]+' kind=RECURSIVE_MUTEX value=0 maxvalue=1 count=2>\$"
  check "a Semaphore(3)" \
    "^\\\$8 = <Semaphore name='/mp-[a-z0-9_]+' kind=SEMAPHORE value=3 maxvalue=[0-9]+ count=0>\$"
  check "Object: None" '^\$9 = None$'
  check "Object: True" '^\$10 = True$'
  check "Object: 42" '^\$11 = 42$'
  check "Object: 2.5" '^\$12 = 2\.5$'
  check "Object: a str" "^\\\$13 = \"hello 'bob'\"\$"
  check "Object: bytes" "^\\\$14 = b'ab\\\\x01'\$"
  check "Object: a list" "^\\\$15 = \\[1, 'two', 3\\.0\\]\$"
  check "Object: a 1-tuple" '^\$16 = \(1,\)$'
  check "Object: a dict" "^\\\$17 = \\{'a': \\[\\], 2: None\\}\$"
  check "a Queue: its state, then its parts" \
    '^\$18 = <Queue maxsize=[0-9]+ buffered=[0-9]+ feeder=started open> = \{reader = <Connection fd=[0-9]+ readable>, writer = <Connection fd=[0-9]+ writable>, rlock = <Lock .*>, wlock = <Lock .*>, sem = <BoundedSemaphore .*>\}$'
  check "a manager proxy: typeid and id, then address, proxytype, exposed" \
    "^\\\$19 = <DictProxy object, typeid 'dict', id '[0-9a-f]+'> = \\{address = '/.*/listener-[a-z0-9_]+', proxytype = DictProxy, exposed = \\[.*'__getitem__'.*\\]\\}\$"
  check "the program ran to its end" '^\[Inferior 1 \(process [0-9]+\) exited normally\]$'
}

echo "===== 1. auto-loaded from the program's .debug_gdb_scripts section"
run_gdb -iex "add-auto-load-safe-path $(dirname "$program")"
gdb_status=$?
cat "$out"
echo "-----"
if grep -q 'ptrace: Operation not permitted\|Could not trace the inferior process' "$out"; then
  echo "SKIP: this machine does not allow gdb to trace processes (ptrace)"
  exit 77
fi
[ "$gdb_status" -eq 0 ] || { echo "FAIL: gdb exited with status $gdb_status"; failed=1; }
check "gdb auto-loaded the printers" '^Yes +multiprocessing_printers\.py'
check_prints

echo "===== 2. loaded by the documented line: source $printers"
run_gdb -iex 'set auto-load python-scripts off' -ex "source $printers"
gdb_status=$?
cat "$out"
echo "-----"
[ "$gdb_status" -eq 0 ] || { echo "FAIL: gdb exited with status $gdb_status"; failed=1; }
if grep -Eq '^Yes +multiprocessing_printers\.py' "$out"; then
  echo "FAIL: the printers were auto-loaded although auto-loading was off"
  failed=1
fi
check_prints

if [ "$failed" -ne 0 ]; then
  echo "gdb_printers: FAILED"
  exit 1
fi
echo "gdb_printers: passed"
