# tests/gdb/check_lib.sh — sourced by the gdb test scripts.
# check DESCRIPTION EXTENDED-REGEX: "ok:" when a line of the file "$out"
# matches, else "FAIL:" and failed=1.
check() {
  if grep -Eq -- "$2" "$out"; then
    echo "ok:   $1"
  else
    echo "FAIL: $1 (no line matches: $2)"
    failed=1
  fi
}
