#!/usr/bin/env bash
# tests/check_pages.sh SOURCE_DIR — the pages say what the code does today.
# Fails if the project's own issues are named ("issue 5", "Issue #12") in docs/,
# README.md or a header of multiprocessing/ (a reader has no tracker to follow),
# or if docs/ or README.md promise something with "not yet".  CPython's issues
# stay allowed where a comment names the bug behind a quirk: "CPython issue
# #12352", "bpo-11675", "gh-88118".
set -euo pipefail
cd "${1:?usage: check_pages.sh SOURCE_DIR}"

status=0
# -P for the look-behind: "issue N" not preceded by "CPython ".
issue='(?<!cpython )\bissue #?[0-9]+'
if grep -rnIiP "$issue" docs README.md; then status=1; fi
if grep -rnIiP --include='*.hpp' "$issue" multiprocessing; then status=1; fi
if grep -rnIi 'not yet' docs README.md; then status=1; fi
if [ "$status" -ne 0 ]; then
  echo "check_pages: the lines above name the project's issues or say 'not yet';" \
       "say what the code does today (CPython's issues: 'CPython issue N', bpo-N, gh-N)." >&2
fi
exit "$status"
