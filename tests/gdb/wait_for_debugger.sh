#!/usr/bin/env bash
# tests/gdb/wait_for_debugger.sh PROGRAM — the test of
# MULTIPROCESSING_WAIT_FOR_DEBUGGER, as docs/debugging.md describes it.
#
# PROGRAM is tests/gdb/gdb_target.  For each start method it runs
# `PROGRAM METHOD` with MULTIPROCESSING_WAIT_FOR_DEBUGGER=1 and checks that
#   1. the new child writes "[<pid>] ForkProcess-1 waiting for a debugger: ..."
#      to stderr, and that process <pid> is stopped (state T), before its
#      target ran, while the parent waits in join();
#   2. once resumed, the child runs its target and the program ends with the
#      child's exit code 0.
# The child is resumed the two ways the page teaches: `kill -CONT <pid>`
# (fork), and `gdb -p <pid>`, `handle SIGSTOP nostop noprint nopass` (gdb
# would first report the stop) and `continue` (spawn and forkserver; with no
# gdb, or no ptrace allowed, by kill -CONT as well).  Under gdb the backtrace
# must show the stop in util::_wait_for_debugger, called by _bootstrap.
#
# Exit status: 0 pass, 1 fail.
set -uo pipefail

program=${1:?usage: wait_for_debugger.sh PROGRAM}
dir=$(mktemp -d)
main_pid=""
child_pid=""
cleanup() {
  # Only our own processes, by pid: a stopped child first resumed, so that
  # it can be ended, then the program.
  if [ -n "$child_pid" ]; then kill -CONT "$child_pid" 2>/dev/null; fi
  if [ -n "$main_pid" ] && kill -0 "$main_pid" 2>/dev/null; then
    kill -KILL "$main_pid" 2>/dev/null
    [ -n "$child_pid" ] && kill -KILL "$child_pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

have_gdb=0
command -v gdb >/dev/null 2>&1 && have_gdb=1

failed=0
ok() { echo "ok:   $*"; }
fail() { echo "FAIL: $*"; failed=1; }

process_state() {  # the state letter of /proc/PID/stat (after the "(comm)" field)
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1
}

for method in fork spawn forkserver; do
  echo "===== $method"
  out=$dir/$method.out err=$dir/$method.err
  MULTIPROCESSING_WAIT_FOR_DEBUGGER=1 "$program" "$method" >"$out" 2>"$err" </dev/null &
  main_pid=$!
  child_pid=""
  for _ in $(seq 1 600); do
    child_pid=$(sed -n 's/^\[\([0-9]*\)\] .* waiting for a debugger: gdb -p [0-9]*, or kill -CONT [0-9]*$/\1/p' "$err" | head -n 1)
    [ -n "$child_pid" ] && break
    sleep 0.1
  done
  if [ -z "$child_pid" ]; then
    fail "$method: no child said it waits for a debugger"
    cat "$err"
    kill -KILL "$main_pid" 2>/dev/null
    wait "$main_pid" 2>/dev/null
    main_pid=""
    continue
  fi
  ok "$method: the child $child_pid says: $(sed -n "s/^\[$child_pid\] //p" "$err" | head -n 1)"
  state=""
  for _ in $(seq 1 100); do
    state=$(process_state "$child_pid")
    [ "$state" = T ] && break
    sleep 0.1
  done
  [ "$state" = T ] && ok "$method: the child is stopped (state T)" ||
    fail "$method: the child's state is '$state', not T (stopped)"
  grep -q "got 42" "$out" && fail "$method: the target ran before the child was resumed" ||
    ok "$method: the target has not run yet"
  kill -0 "$main_pid" 2>/dev/null && ok "$method: the parent waits" ||
    fail "$method: the parent ended while its child was stopped"

  if [ "$method" != fork ] && [ "$have_gdb" -eq 1 ]; then
    DEBUGINFOD_URLS="" timeout 60 gdb -q -nx -batch -p "$child_pid" \
      -ex 'bt' -ex 'handle SIGSTOP nostop noprint nopass' -ex 'continue' >"$dir/gdb.out" 2>&1 </dev/null
    if grep -q 'ptrace: Operation not permitted\|Could not attach' "$dir/gdb.out"; then
      echo "note: gdb may not attach here (ptrace); resuming with SIGCONT"
      kill -CONT "$child_pid"
    else
      sed 's/^/    gdb: /' "$dir/gdb.out" | grep -E 'gdb: #|Inferior|exited' | head -n 12
      grep -Eq '^#[0-9]+ .*multiprocessing::util::_wait_for_debugger' "$dir/gdb.out" &&
        ok "$method: gdb -p: the child stopped in util::_wait_for_debugger" ||
        fail "$method: gdb -p: no frame in util::_wait_for_debugger"
      grep -Eq '^#[0-9]+ .*multiprocessing::BaseProcess::_bootstrap' "$dir/gdb.out" &&
        ok "$method: gdb -p: called by _bootstrap" ||
        fail "$method: gdb -p: no frame in _bootstrap"
      grep -Eq "^\[Inferior 1 \(process $child_pid\) exited normally\]" "$dir/gdb.out" &&
        ok "$method: gdb's continue ran the child to its end" ||
        fail "$method: the child did not exit normally under gdb"
    fi
  else
    kill -CONT "$child_pid"
  fi

  status=0
  wait "$main_pid" || status=$?
  main_pid=""
  [ "$status" -eq 0 ] && ok "$method: the program ended with status 0" ||
    fail "$method: the program ended with status $status"
  grep -q "^gdb_target: child $child_pid got 42\$" "$out" && ok "$method: the child ran its target" ||
    fail "$method: no 'gdb_target: child $child_pid got 42'"
  grep -q '^gdb_target: child exitcode 0$' "$out" && ok "$method: the parent saw exitcode 0" ||
    fail "$method: the parent did not see exitcode 0"
  child_pid=""
done

if [ "$failed" -ne 0 ]; then
  echo "wait_for_debugger: FAILED"
  exit 1
fi
echo "wait_for_debugger: passed"
