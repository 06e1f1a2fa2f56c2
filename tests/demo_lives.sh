#!/usr/bin/env bash
# The demo, started as the README says, keeps living: for 60 s, events keep arriving in every 10 s
# window and /healthz answers 200 (issue 12). Run by scripts/test after the Release pass; uses the
# demo's own ports (8700, 9100). `tests/demo_lives.sh --shards 3`: the scaled-out demo (three shards,
# NATS JetStream, the gateway on 8700) for 30 s, every event through the gateway carrying its shard.
set -euo pipefail
cd "$(dirname "$0")/.."
windows=6
demo_args=()
if [ "${1:-}" = --shards ]; then
  demo_args=(--shards "$2")
  windows=3
fi
out=$(mktemp /tmp/laminator-demo-test-XXXXXX)
err=$out.err
scripts/demo --duration $((windows * 10 + 20)) --all-events "${demo_args[@]}" >"$out" 2>"$err" &
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
for window in $(seq "$windows"); do
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
if [ ${#demo_args[@]} -gt 0 ]; then
  # Through the gateway every event names its shard, and every shard of the demo made some.
  for ((i = 0; i < $2; i++)); do
    n=$(grep -c "\"shard\":\"s$i\"" "$out" || true)
    echo "demo_lives: shard s$i: $n events through the gateway"
    [ "$n" -gt 0 ] || { echo "demo_lives: no event of shard s$i"; fail=1; }
  done
  if grep -v '"shard":"s' "$out" | grep -q '"seq"'; then
    echo "demo_lives: an event without its shard came through the gateway"; fail=1
  fi
fi
# The books the demo's daemon(s) and bot wrote hold every invariant (issue 28: laminator reconcile,
# against the demo's own database while it still runs).
url=$(grep -o 'PostgreSQL at [^ ]*' "$err" | head -1 | sed 's/PostgreSQL at //')
if [ -z "$url" ]; then
  echo "demo_lives: the demo did not say where its database is"; fail=1
elif ! report=$(build/release/app/laminator reconcile --database-url "$url" --limit 5 2>&1); then
  echo "demo_lives: the books break an invariant:"; echo "$report"; fail=1
else
  echo "demo_lives: $(echo "$report" | grep -m1 'reconcile:')"
fi
if [ $fail -ne 0 ]; then tail -30 "$err"; fi
echo "demo_lives: $([ $fail -eq 0 ] && echo 1 || echo 0) passed, $fail failed"
exit $fail
