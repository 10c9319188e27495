#!/usr/bin/env bash
# tests/gdb/gdb_follow_fork.sh PROGRAM — the test behind docs/debugging.md.
#
# Runs PROGRAM (tests/gdb/gdb_target) under gdb in batch mode with the settings
# the page teaches:
#   set follow-fork-mode child     after fork(), debug the child
#   set detach-on-fork on          and let the parent run on by itself
#   break multiprocessing::BaseProcess::_bootstrap
# and checks that
#   1. gdb followed the fork into a new process (the child);
#   2. the breakpoint was hit in that child, called from Popen::_launch;
#   3. the child ran to its end and exited normally;
#   4. the parent, detached, joined the child and saw exitcode 0.
#
# Exit status: 0 pass, 1 fail, 77 skip (no gdb, or ptrace is not allowed here).
set -uo pipefail

program=${1:?usage: gdb_follow_fork.sh PROGRAM}

if ! command -v gdb >/dev/null 2>&1; then
  echo "SKIP: gdb is not installed"
  exit 77
fi

out=$(mktemp)
parent_pid=""
cleanup() {
  # The parent was detached from gdb: if something went wrong it may still
  # run.  It is our own process (gdb started it for us), so end it by its pid.
  if [ -n "$parent_pid" ] && ! grep -q '^gdb_target: child exitcode' "$out" &&
     kill -0 "$parent_pid" 2>/dev/null; then
    kill -KILL "$parent_pid" 2>/dev/null
  fi
  rm -f "$out"
}
trap cleanup EXIT

# -nx: no ~/.gdbinit, so the result does not depend on who runs the test.
# DEBUGINFOD_URLS is emptied: gdb must not go to the network for symbols.
# The parent (detached) keeps writing to the same file after gdb exits.
DEBUGINFOD_URLS="" timeout 90 gdb -q -nx -batch \
  -ex 'set pagination off' \
  -ex 'set confirm off' \
  -ex 'set breakpoint pending on' \
  -ex 'set follow-fork-mode child' \
  -ex 'set detach-on-fork on' \
  -ex 'break multiprocessing::BaseProcess::_bootstrap' \
  -ex 'run' \
  -ex 'bt 3' \
  -ex 'continue' \
  --args "$program" >"$out" 2>&1
gdb_status=$?

parent_pid=$(sed -n 's/^\[Detaching after fork from parent process \([0-9]*\)\]$/\1/p' "$out" | head -n 1)

# The parent joins the child and prints its exitcode as its last line.  Give
# it a few seconds after gdb has gone (if there was a parent to detach at all).
if [ -n "$parent_pid" ]; then
  for _ in $(seq 1 100); do
    grep -q '^gdb_target: child exitcode' "$out" && break
    sleep 0.1
  done
fi

echo "----- gdb output -----"
cat "$out"
echo "----------------------"

if grep -q 'ptrace: Operation not permitted\|Could not trace the inferior process' "$out"; then
  echo "SKIP: this machine does not allow gdb to trace processes (ptrace)"
  exit 77
fi

failed=0
# check DESCRIPTION EXTENDED-REGEX
source "$(dirname "${BASH_SOURCE[0]}")/check_lib.sh"

[ "$gdb_status" -eq 0 ] || { echo "FAIL: gdb exited with status $gdb_status"; failed=1; }

child_pid=$(sed -n 's/^\[Attaching after .* fork to child process \([0-9]*\)\]$/\1/p' "$out" | head -n 1)
check "gdb followed the fork into the child" '^\[Attaching after .* fork to child process [0-9]+\]$'
check "the child became inferior 2" "^\[New inferior 2 \(process ${child_pid:-none}\)\]$"
check "the parent was detached" '^\[Inferior 1 \(process [0-9]+\) detached\]$'
check "the breakpoint was hit" 'Breakpoint 1, (0x[0-9a-f]+ in )?multiprocessing::BaseProcess::_bootstrap'
check "bt: frame #0 is _bootstrap" '^#0 .*multiprocessing::BaseProcess::_bootstrap'
check "bt: _bootstrap was called by Popen::_launch" '^#1 .*multiprocessing::popen_fork::Popen::_launch'
check "the child ran its target" "^gdb_target: child ${child_pid:-none} got 42$"
check "the child exited normally under gdb" "^\[Inferior 2 \(process ${child_pid:-none}\) exited normally\]$"
check "the parent joined the child: exitcode 0" '^gdb_target: child exitcode 0$'

# The breakpoint must have been hit in the child, not in the parent: the
# thread that hit it belongs to inferior 2 ("Thread 2.1 ... hit Breakpoint 1").
if grep -Eq 'Breakpoint 1, ' "$out" && ! grep -Eq '^Thread 1\.[0-9]+ .*hit Breakpoint 1' "$out"; then
  echo "ok:   the breakpoint was not hit in the parent"
else
  echo "FAIL: the breakpoint was hit in the parent, or not at all"
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "gdb_follow_fork: FAILED"
  exit 1
fi
echo "gdb_follow_fork: passed"
