#!/usr/bin/env bash
# Throughput of `headroom emulate` on small InvokeModel calls, measured with
# wrk and hey (from apt) against the built binary on loopback.
#
#   scripts/bench-emulator.sh [DURATION_SECONDS] [CONNECTIONS]
#
# The emulator runs with quotas far above what the load can spend, so every
# request goes through admission and settlement and none is throttled, and
# answers of 10 tokens. Target (issue 2): at least 10,000 requests/s on a
# 2-core machine, load tool included.
set -euo pipefail

duration=${1:-10}
conns=${2:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
emu_pid=""
cleanup() {
	if [[ -n $emu_pid ]]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/headroom" ./cmd/headroom)

cat >"$work/bench.yaml" <<'YAML'
regions:
  - name: us-east-1
    buckets:
      - {name: tpm, kind: tpm, limit: 1000000000000000}
      - {name: tpd, kind: tpd, limit: 1000000000000000}
generation:
  output_tokens: {distribution: fixed, min: 10, mean: 10, max: 10}
YAML
body='{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"Say hi."}]}'
printf '%s' "$body" >"$work/body.json"
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

"$work/headroom" emulate --addr 127.0.0.1:0 --config "$work/bench.yaml" --log-level warn >"$work/out" 2>"$work/err" &
emu_pid=$!
for _ in $(seq 50); do
	url=$(sed -n 's/^headroom emulate: an offline Bedrock on \(http[^ ]*\).*/\1/p' "$work/out")
	[[ -n $url ]] && break
	sleep 0.1
done
[[ -n $url ]] || { cat "$work/err"; exit 1; }
target="$url/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"

echo "== $(uname -m), $(nproc) cores, $(go version | cut -d' ' -f3), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== warm-up"
wrk -t2 -c"$conns" -d2s -s "$work/post.lua" "$target" >/dev/null
echo "== wrk -t2 -c$conns -d${duration}s (small InvokeModel, keep-alive)"
wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$work/post.lua" "$target"
echo "== hey -c $conns -z ${duration}s"
hey -c "$conns" -z "${duration}s" -m POST -T application/json -D "$work/body.json" "$target" |
	sed -n '/Summary/,/Requests\/sec/p;/Latency distribution/,/99%/p;/Status code distribution/,/^$/p'
echo "== emulator state after the runs (no request may be throttled)"
curl -s "$url/_emulator/state" | head -c 400; echo
