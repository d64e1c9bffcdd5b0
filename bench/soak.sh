#!/usr/bin/env bash
# The reader soak test for longer than scripts/test runs it: 8 threads search while a snapshot is
# published and refreshed every 250 ms. Usage: bench/soak.sh [seconds] (default 60); needs
# build/shardvec_tests. Prints the test's figures (snapshots, searches, VmRSS and open files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_SOAK="${1:-60}"
REPORT="$(mktemp)"
trap 'rm -f "$REPORT"' EXIT
SHARDVEC_SOAK_SECONDS="$SECONDS_TO_SOAK" "$ROOT/build/shardvec_tests" --gtest_brief=1 \
  --gtest_filter='ReaderSoakTest.*' --gtest_output="xml:$REPORT"
grep -o '<property name="[a-z_]*" value="[0-9]*"' "$REPORT" | sed 's/<property name="\([a-z_]*\)" value="\([0-9]*\)"/\1: \2/'
