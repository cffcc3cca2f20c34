#!/usr/bin/env bash
# The issue-10 plan benchmarks with the sizes docs/benchmarks.md publishes (root; ~40 min plus the thin link's
# ~65 min, which runs on its own links and can run at the same time: add --with-thin-link to start it first).
# Raw records: $EDGEFLEET_BENCH_DIR/plan-results.jsonl (default /tmp/edgefleet-bench-plan); logs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${EDGEFLEET_BENCH_DIR:-/tmp/edgefleet-bench-plan}"
mkdir -p "$dir"
bench() { .venv/bin/python -m pytest -m bench -s -p no:cacheprovider "$@"; }
if [[ "${1:-}" == "--with-thin-link" ]]; then
    bench tests/bench/test_thin_link_bench.py >"$dir/thin-link.log" 2>&1 &
fi
# 40 and 400 Mbit/s with the 200 MB batch; 4 Mbit/s with 50 MB (200 MB there is ~22 min a cell)
EDGEFLEET_BENCH_MB=200 EDGEFLEET_BENCH_RATES_MBIT=40,400 bench tests/bench/test_plan_matrix_bench.py \
    >"$dir/matrix-200mb.log" 2>&1 || true
EDGEFLEET_BENCH_MB=50 EDGEFLEET_BENCH_RATES_MBIT=4 bench tests/bench/test_plan_matrix_bench.py \
    >"$dir/matrix-4mbit-50mb.log" 2>&1 || true
EDGEFLEET_BENCH_MB=200 bench tests/bench/test_link_bound_bench.py >"$dir/link-bound.log" 2>&1 || true
wait
grep -h '^|' "$dir"/matrix-*.log "$dir"/link-bound.log
