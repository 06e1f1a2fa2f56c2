#!/usr/bin/env bash
# `laminator bench` from the installed binary, every scenario on small sizes, and each HTML report
# rendered by a real browser (headless chromium): the screenshot must show every chart the scenario
# draws (scripts/check-bench-report.mjs), and a copy of a report whose SVG was broken must fail the
# same check. Run by scripts/test after the Release pass (issue 15).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LAMINATOR_BUILD_DIR:-build/release}
work=$(mktemp -d /tmp/laminator-bench-report-XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "bench_report: cmake --install $build --prefix $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
lam="$work/prefix/bin/laminator"

browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "bench_report: no chromium (scripts/setup installs it)"; exit 1; }

shot() {  # HTML PNG
  # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  "$browser" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --window-size=1000,2400 --screenshot="$2" "file://$1" >"$work/chromium.log" 2>&1 \
    || { cat "$work/chromium.log"; return 1; }
  [ -s "$2" ] || { echo "bench_report: chromium wrote no screenshot"; cat "$work/chromium.log"; return 1; }
}

passed=0
failed=0
run() {  # SCENARIO "CHARTS" ARGS...
  local scenario=$1 charts=$2
  shift 2
  echo "bench_report: laminator bench $scenario $*"
  if ! "$lam" bench "$scenario" "$@" --json "$work/$scenario.json" --html "$work/$scenario.html" \
      >"$work/$scenario.out" 2>&1; then
    echo "bench_report: FAIL laminator bench $scenario exited non-zero"; cat "$work/$scenario.out"
    failed=$((failed + 1)); return
  fi
  if shot "$work/$scenario.html" "$work/$scenario.png" &&
     node scripts/check-bench-report.mjs "$work/$scenario.png" $charts; then
    passed=$((passed + 1))
  else
    echo "bench_report: FAIL $scenario's report did not render"; failed=$((failed + 1))
  fi
}

run matcher "bars throughput" --objects 2000 --seconds 1 --repetitions 2
run replay "bars throughput" --ticks 20000 --repetitions 2
run writer "bars latency throughput" --rows 4000 --batch 100,1000 --seconds 2 --repetitions 2
run pipeline "bars latency throughput" --probes 100 --rate 10000 --frames 200000 --warmup 0.2 \
  --repetitions 2
run fanin "bars latency" --burst 1000 --probes 40 --repetitions 2

# The check can fail: the same page with its charts' markup broken renders no chart.
if [ -f "$work/pipeline.html" ]; then
  sed 's/<svg /<broken-svg /g' "$work/pipeline.html" >"$work/broken.html"
  shot "$work/broken.html" "$work/broken.png"
  if node scripts/check-bench-report.mjs "$work/broken.png" bars latency throughput >/dev/null; then
    echo "bench_report: FAIL the check passed a page without charts"; failed=$((failed + 1))
  else
    echo "bench_report: a page without charts fails the check, as it must"; passed=$((passed + 1))
  fi
fi
echo "bench_report: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
