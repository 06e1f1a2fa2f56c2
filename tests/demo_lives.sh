#!/usr/bin/env bash
# The demo, started as the README says, keeps living: for 60 s, events keep arriving in every 10 s
# window and /healthz answers 200 (issue 12). Run by scripts/test after the Release pass; uses the
# demo's own ports (8700, 9100).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/laminator-demo-test-XXXXXX)
err=$out.err
scripts/demo --duration 80 --all-events >"$out" 2>"$err" &
demo=$!
trap 'kill -INT $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -f "$out" "$err"' EXIT
# Until the daemon serves (build, seed and start take a while on a fresh machine).
for _ in $(seq 600); do
  curl -sf http://127.0.0.1:8700/healthz >/dev/null 2>&1 && break
  kill -0 $demo 2>/dev/null || { echo "demo_lives: the demo exited early"; tail -20 "$err"; exit 1; }
  sleep 0.5
done
sleep 5  # past the seeded alerts' first burst
fail=0
before=$(wc -l <"$out")
for window in 1 2 3 4 5 6; do
  sleep 10
  now=$(wc -l <"$out")
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8700/healthz || true)
  echo "demo_lives: window $window: $((now - before)) events, /healthz $code"
  if [ "$now" -le "$before" ]; then echo "demo_lives: no event in window $window"; fail=1; fi
  if [ "$code" != 200 ]; then
    echo "demo_lives: /healthz answered $code: $(curl -s http://127.0.0.1:8700/healthz)"; fail=1
  fi
  before=$now
done
if [ $fail -ne 0 ]; then tail -30 "$err"; fi
echo "demo_lives: $([ $fail -eq 0 ] && echo 1 || echo 0) passed, $fail failed"
exit $fail
