#!/usr/bin/env bash
# How soon a quality hold shows as blocked stock: publishes a hold (then its release) for an
# item with 6 EA on hand straight onto CANONICAL, five times each, and times each from the
# publish to `millrace projection show inventory` reporting the stock blocked (or free).
# The figure includes starting the two CLI processes, so it is an upper bound.
# Usage: bench/hold-latency.sh   (builds the release binary if needed; uses port 14333)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x target/release/millrace ] || cargo build --release -p millrace
M=$ROOT/target/release/millrace
D=$(mktemp -d)
nats-server -p 14333 -js -sd "$D/js" >/dev/null 2>&1 &
NS=$!
HOST=
trap 'kill $NS $HOST 2>/dev/null || true; rm -rf "$D"' EXIT
sleep 1
cat > "$D/millrace.toml" <<TOML
[nats]
url = "nats://127.0.0.1:14333"
[host]
state_dir = "$ROOT/target/hold-latency"
[routes.line]
subjects = ["raw.test.*.cmd"]
plugin = "$ROOT/tests/guests/misbehave"
config = { site = "PLANT9" }
[projection]
enabled = true
TOML
$M run --config "$D/millrace.toml" 2>"$D/host.log" &
HOST=$!
until grep -q "route serving" "$D/host.log"; do sleep 0.2; done
for n in 1 2 3; do echo "ok $n" > "$D/ok$n.txt"; done
$M publish raw.test.lab.cmd "$D"/ok1.txt "$D"/ok2.txt "$D"/ok3.txt -c "$D/millrace.toml" >/dev/null
until $M projection show inventory --json -c "$D/millrace.toml" 2>/dev/null | grep -q '"on_hand": "6"'; do sleep 0.1; done
for i in 1 2 3 4 5; do
  for action in placed released; do
    want=$([ $action = placed ] && echo '"blocked": "6"' || echo '"blocked": "0"')
    printf '{"specversion":"1.0","id":"hold-%s-%s","source":"/PLANT9/qms","type":"millrace.quality-hold.v1","time":"2026-11-27T0%s:%s0:00Z","subject":"QH-17@PLANT9","datacontenttype":"application/json","data":{"hold_id":"QH-17","action":"%s","scope":{"item":"ITEM-1"},"reason":"cracks"},"route":"qms","plugin":"quality-webhook","pluginversion":"1.0.0","rawsequence":%s}' \
      $i $action $i $([ $action = placed ] && echo 1 || echo 3) $action $i > "$D/hold.json"
    t0=$(date +%s%N)
    $M publish canonical.quality-hold.PLANT9 "$D/hold.json" -c "$D/millrace.toml" >/dev/null 2>&1
    until $M projection show inventory --json -c "$D/millrace.toml" 2>/dev/null | grep -q "$want"; do :; done
    t1=$(date +%s%N)
    echo "$action: $(( (t1 - t0) / 1000000 )) ms (publish + apply + one query process)"
  done
done
