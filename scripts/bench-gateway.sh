#!/usr/bin/env bash
# Gateway overhead: `headroom serve` in front of `headroom emulate` against
# the same emulator called directly, in the same run, on loopback, with wrk
# and hey (from apt). Figures go in /work/notes/bench-gateway.md and BENCHMARKS.md.
#
#   scripts/bench-gateway.sh [SECONDS] [STREAMS] [ROUNDS]
#
# 1. Added latency at moderate load (4 connections pausing 10 ms between
#    requests), p50 and p99, with wrk, the median of ROUNDS (default 3)
#    rounds in which direct and gateway alternate (so a noisy spell on a
#    shared machine hits both):
#    a small InvokeModel, an 86 KB Claude Code-shaped
#    InvokeModelWithResponseStream (max_tokens 32,000 + thinking, which the
#    gateway clamps and rewrites), and an 86 KB Claude Code-shaped Messages
#    API stream (POST /anthropic/v1/messages, stream: true, Anthropic
#    server-sent events; max_tokens 32,000 with adaptive thinking, clamped
#    and rewritten, anthropic_version added), 50-token answers; and the
#    Messages stream through the raw TCP relay (scripts/tcprelay.go), the
#    floor of what any proxy adds on the machine at the time.
# 2. Throughput at saturation (64 connections, small InvokeModel), twice:
#    shared (wrk, emulator and proxy all on both cores) and pinned (wrk and
#    the emulator on core 1, the proxy alone on core 0, as a gateway runs
#    on its own machine in production; the target's measure, see
#    BENCHMARKS.md), each time direct and gateway alternating for ROUNDS
#    rounds (the median ratio is reported), then three baselines: a
#    bare httputil.ReverseProxy (scripts/bareproxy.go), and a TCP relay
#    with no HTTP at all (scripts/tcprelay.go), the floor for any proxy;
#    plus, when its module can be fetched, a fasthttp reverse proxy
#    (scripts/fasthttpproxy, its own module) to show what leaving net/http
#    would buy.
# 3. RSS of the gateway idle, and with STREAMS (default 1,000) concurrent
#    open streams against a second emulator that answers slowly.
# Targets (issue 3): p50 <= 0.3 ms and p99 <= 1 ms added; throughput >= 60%
# of direct; RSS <= 50 MB idle, <= 200 MB with 1,000 open streams.
#
# BENCH_ONLY=latency runs part 1 alone. BENCH_ONLY=messages runs only the
# Messages stream's latency rounds, and with BASELINE=BINARY (a `headroom`
# built from another commit) compares two gateways in the same rounds: each
# round measures direct, the TCP relay, `serve` of this tree and `serve` of
# BASELINE in front of the same emulator, in an order that rotates from round
# to round (so neither gateway always runs right after the other), and the
# result is the median of the rounds' differences, this tree minus BASELINE.
# BENCH_DOOR=stream runs those rounds on the 86 KB Bedrock stream
# (InvokeModelWithResponseStream) instead, which older binaries also serve.
# BENCH_ONLY=paired measures the same stream with scripts/latpair.go, which
# interleaves the targets request by request instead of 5 s window by
# window (BASELINE and BENCH_DOOR apply as for BENCH_ONLY=messages); with
# BENCH_PIN=1 the relay and the gateways run alone on core 0 and the
# emulator and the client on core 1, as for the pinned saturation run.
set -euo pipefail

duration=${1:-5}
streams=${2:-1000}
rounds=${3:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

(cd "$root" && go build -o "$work/headroom" ./cmd/headroom && go build -o "$work/bareproxy" scripts/bareproxy.go &&
	go build -o "$work/tcprelay" scripts/tcprelay.go && go build -o "$work/latpair" scripts/latpair.go)
(cd "$root/scripts/fasthttpproxy" && go build -o "$work/fasthttpproxy" .) 2>/dev/null ||
	echo "(fasthttp could not be fetched: no fasthttp baseline)"
(cd "$root" && HEADROOM_BENCH_BODY_OUT="$work/cc86k.json" HEADROOM_BENCH_MESSAGES_OUT="$work/cc86k-messages.json" \
	go test -run '^TestWriteBenchBody$' ./internal/gateway/ >/dev/null)
printf '%s' '{"anthropic_version":"bedrock-2023-05-31","max_tokens":100,"messages":[{"role":"user","content":"Say hi."}]}' >"$work/small.json"

buckets='
      - {name: tpm, kind: tpm, limit: 1000000000000000}
      - {name: tpd, kind: tpd, limit: 1000000000000000}'
cat >"$work/fast.yaml" <<YAML
regions:
  - name: us-east-1
    buckets: $buckets
generation:
  output_tokens: {distribution: fixed, min: 50, mean: 50, max: 50}
YAML
# 100 tokens at 20 tokens/s: every stream stays open about 5 s.
cat >"$work/slow.yaml" <<YAML
regions:
  - name: us-east-1
    buckets: $buckets
generation:
  output_tokens: {distribution: fixed, min: 100, mean: 100, max: 100}
  tokens_per_second: 20
  chunk_tokens: 1
YAML

# start NAME CMD...: runs CMD in the background, waits for its URL line.
start() {
	local name=$1
	shift
	: >"$work/$name.out"
	"$@" >"$work/$name.out" 2>"$work/$name.err" &
	pids+=($!)
	eval "${name}_pid=$!"
	for _ in $(seq 100); do
		url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/$name.out" | head -1 || true)
		[[ -n $url ]] && break
		sleep 0.1
	done
	[[ -n $url ]] || { echo "$name did not start"; cat "$work/$name.err"; exit 1; }
	eval "${name}_url=$url"
}

serve_config() { # EMULATOR_URL
	cat <<YAML
listen: 127.0.0.1:0
upstreams:
  - name: emu
    region: us-east-1
    endpoint: $1
    auth: {mode: none}
    buckets: $buckets
YAML
}

start fast "$work/headroom" emulate --addr 127.0.0.1:0 --config "$work/fast.yaml" --log-level warn
start slow "$work/headroom" emulate --addr 127.0.0.1:0 --config "$work/slow.yaml" --log-level warn
serve_config "$fast_url" >"$work/serve-fast.yaml"
serve_config "$slow_url" >"$work/serve-slow.yaml"
key=$("$work/headroom" keys create bench --data-dir "$work/data" --json | sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p')
[[ -n $key ]] || { echo "no key"; exit 1; }
# One data directory per serve (a serve refuses a directory another one
# holds), each a copy made before any starts, so the one key works on all.
cp -r "$work/data" "$work/data-pinned"
cp -r "$work/data" "$work/data-slow"
start gw "$work/headroom" serve --config "$work/serve-fast.yaml" --data-dir "$work/data"
if [[ -n ${BASELINE:-} ]]; then
	cp -r "$work/data" "$work/data-base"
	start gwbase "$BASELINE" serve --config "$work/serve-fast.yaml" --data-dir "$work/data-base"
fi
start bare "$work/bareproxy" "$fast_url"
start relay "$work/tcprelay" "${fast_url#http://}"
fh_pid= fh_url= pfh_pid= pfh_url=
if [[ -x $work/fasthttpproxy ]]; then
	start fh "$work/fasthttpproxy" "${fast_url#http://}"
fi
# Pinned copies for the second saturation run: the emulator on core 1 with
# the load generator, each proxy alone on core 0 (GOMAXPROCS follows).
start pemu taskset -c 1 "$work/headroom" emulate --addr 127.0.0.1:0 --config "$work/fast.yaml" --log-level warn
serve_config "$pemu_url" >"$work/serve-pinned.yaml"
start pgw taskset -c 0 "$work/headroom" serve --config "$work/serve-pinned.yaml" --data-dir "$work/data-pinned"
if [[ -n ${BASELINE:-} && -n ${BENCH_PIN:-} ]]; then
	cp -r "$work/data" "$work/data-pinned-base"
	start pgwbase taskset -c 0 "$BASELINE" serve --config "$work/serve-pinned.yaml" --data-dir "$work/data-pinned-base"
fi
start pbare taskset -c 0 "$work/bareproxy" "$pemu_url"
start prelay taskset -c 0 "$work/tcprelay" "${pemu_url#http://}"
if [[ -x $work/fasthttpproxy ]]; then
	start pfh taskset -c 0 "$work/fasthttpproxy" "${pemu_url#http://}"
fi
start gwslow "$work/headroom" serve --config "$work/serve-slow.yaml" --data-dir "$work/data-slow" --log-level warn

rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }
model=us.anthropic.claude-sonnet-4-20250514-v1:0
# wrkrun LABEL BASE OP BODY CONNS DURATION [PAUSE_MS]: wrk with microsecond
# latency percentiles (time to the whole answer, stream included); with
# PAUSE_MS each connection waits that long between requests (moderate load,
# not saturation).
wrkprefix=()
wrkrun() {
	local label=$1 base=$2 op=$3 body=$4 conns=$5 dur=$6 pause=${7:-0}
	cat >"$work/post.lua" <<LUA
local f = io.open("$body", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.headers["x-headroom-emulator-output-tokens"] = "50"
if $pause > 0 then
	delay = function() return $pause end
end
done = function(summary, latency, requests)
	io.write(string.format("RESULT %.3f %.3f %.0f %d %d\\n", latency:percentile(50)/1000, latency:percentile(99)/1000,
		summary.requests/(summary.duration/1e6), summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
LUA
	local r path="/model/$model/$op"
	[[ $op == /* ]] && path=$op # a path of its own (the Messages API)
	r=$("${wrkprefix[@]}" wrk -t1 -c"$conns" -d"$dur" -s "$work/post.lua" "$base$path" | awk '/^RESULT/ {print $2, $3, $4, $5, $6}')
	read -r p50 p99 rps bad errs <<<"$r"
	printf '%-24s p50 %7s ms  p99 %7s ms  %7s req/s  non-2xx %s, socket errors %s\n' "$label" "$p50" "$p99" "$rps" "$bad" "$errs"
	local v=${label// /_}
	eval "${v}_p50=$p50; ${v}_p99=$p99; ${v}_rps=$rps"
}

echo "== $(uname -m), $(nproc) cores, $(go version | cut -d' ' -f3), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== RSS idle: gateway $(rss "$gw_pid")"
echo "== warm-up"
wrkrun warm_direct "$fast_url" invoke "$work/small.json" 8 2s >/dev/null
wrkrun warm_gateway "$gw_url" invoke "$work/small.json" 8 2s >/dev/null

# median COLUMN VALUES...: the median of one column of "p50 p99" pairs.
median() {
	local col=$1
	shift
	printf '%s\n' "$@" | awk -v c="$col" '{print $c}' | sort -g | awk '{v[NR]=$1} END {printf "%.3f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
# diff2 A B: "p50 p99" of B minus A (both variable prefixes of wrkrun).
diff2() {
	awk -v a="$(eval echo "\$${1}_p50")" -v b="$(eval echo "\$${2}_p50")" \
		-v c="$(eval echo "\$${1}_p99")" -v d="$(eval echo "\$${2}_p99")" 'BEGIN {printf "%.3f %.3f", b-a, d-c}'
}
if [[ ${BENCH_ONLY:-} == messages ]]; then
	echo "== 86 KB ${BENCH_DOOR:-messages} stream at moderate load (4 connections pausing 10 ms; wrk), $rounds rounds of ${duration}s, order rotating"
	names=(direct relay gateway)
	[[ -n ${BASELINE:-} ]] && names+=(baseline)
	declare -A url=([direct]=$fast_url [relay]=$relay_url [gateway]=$gw_url [baseline]=${gwbase_url:-})
	m_relay=() m_gw=() m_base=() m_vs=()
	for round in $(seq "$rounds"); do
		echo "-- round $round"
		k=$(((round - 1) % ${#names[@]}))
		for j in $(seq 0 $((${#names[@]} - 1))); do
			n=${names[$(((k + j) % ${#names[@]}))]}
			if [[ ${BENCH_DOOR:-messages} == stream ]]; then
				wrkrun "m_$n" "${url[$n]}" invoke-with-response-stream "$work/cc86k.json" 4 "${duration}s" 10
			else
				wrkrun "m_$n" "${url[$n]}" /anthropic/v1/messages "$work/cc86k-messages.json" 4 "${duration}s" 10
			fi
		done
		m_relay+=("$(diff2 m_direct m_relay)")
		m_gw+=("$(diff2 m_direct m_gateway)")
		line="   added p50/p99: relay ${m_relay[-1]/ / / } ms, gateway ${m_gw[-1]/ / / } ms"
		if [[ -n ${BASELINE:-} ]]; then
			m_base+=("$(diff2 m_direct m_baseline)")
			m_vs+=("$(diff2 m_baseline m_gateway)")
			line+=", baseline ${m_base[-1]/ / / } ms; gateway - baseline ${m_vs[-1]/ / / } ms"
		fi
		echo "$line"
	done
	echo "added to direct, median of $rounds rounds, p50 / p99 (ms): relay $(median 1 "${m_relay[@]}") / $(median 2 "${m_relay[@]}"), gateway $(median 1 "${m_gw[@]}") / $(median 2 "${m_gw[@]}")"
	if [[ -n ${BASELINE:-} ]]; then
		echo "baseline $(median 1 "${m_base[@]}") / $(median 2 "${m_base[@]}"); gateway minus baseline, median of the rounds' differences: p50 $(median 1 "${m_vs[@]}") ms, p99 $(median 2 "${m_vs[@]}") ms"
	fi
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

if [[ ${BENCH_ONLY:-} == paired ]]; then
	# The same measure with the targets interleaved request by request
	# (scripts/latpair.go): every connection sends the request to direct,
	# the relay, the gateway (and BASELINE) in turn, pausing 10 ms after
	# each, so all are measured in the same milliseconds.
	door=${BENCH_DOOR:-messages}
	path=/anthropic/v1/messages body=$work/cc86k-messages.json
	if [[ $door == stream ]]; then
		path=/model/$model/invoke-with-response-stream body=$work/cc86k.json
	fi
	targets=("direct=$fast_url" "relay=$relay_url" "gateway=$gw_url")
	[[ -n ${BASELINE:-} ]] && targets+=("baseline=$gwbase_url")
	pin=() where="everything on both cores"
	if [[ -n ${BENCH_PIN:-} ]]; then
		# As a gateway runs in production, on a machine of its own: the
		# proxies alone on core 0, the emulator and the client on core 1.
		targets=("direct=$pemu_url" "relay=$prelay_url" "gateway=$pgw_url")
		[[ -n ${BASELINE:-} ]] && targets+=("baseline=$pgwbase_url")
		pin=(taskset -c 1) where="the relay and the gateways on core 0, the emulator and the client on core 1"
	fi
	echo "== 86 KB $door stream, interleaved (4 connections, each visiting every target in turn, pausing 10 ms after each request), $((duration * rounds))s in $rounds rounds; $where"
	"${pin[@]}" "$work/latpair" -d "$((duration * rounds))s" -rounds "$rounds" -c 4 -pause 10ms -body "$body" -path "$path" \
		-H "Authorization: Bearer $key" -H "x-headroom-emulator-output-tokens: 50" "${targets[@]}"
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

echo "== latency at moderate load (4 connections, each pausing 10 ms between requests; wrk, time to the whole answer)"
echo "   $rounds rounds of ${duration}s per path, direct and gateway alternating, so a noisy spell hits both"
added_small=() added_stream=() added_messages=() relay_added=()
for round in $(seq "$rounds"); do
	echo "-- round $round"
	wrkrun direct_small "$fast_url" invoke "$work/small.json" 4 "${duration}s" 10
	wrkrun gateway_small "$gw_url" invoke "$work/small.json" 4 "${duration}s" 10
	wrkrun direct_stream "$fast_url" invoke-with-response-stream "$work/cc86k.json" 4 "${duration}s" 10
	wrkrun gateway_stream "$gw_url" invoke-with-response-stream "$work/cc86k.json" 4 "${duration}s" 10
	added_small+=("$(awk -v a="$direct_small_p50" -v b="$gateway_small_p50" -v c="$direct_small_p99" -v d="$gateway_small_p99" 'BEGIN {printf "%.3f %.3f", b-a, d-c}')")
	wrkrun direct_messages "$fast_url" /anthropic/v1/messages "$work/cc86k-messages.json" 4 "${duration}s" 10
	wrkrun gateway_messages "$gw_url" /anthropic/v1/messages "$work/cc86k-messages.json" 4 "${duration}s" 10
	# The floor: the raw TCP relay (no HTTP, no work) in front of the same
	# emulator adds the wake-ups and loopback copies any proxy adds.
	wrkrun relay_messages "$relay_url" /anthropic/v1/messages "$work/cc86k-messages.json" 4 "${duration}s" 10
	relay_added+=("$(awk -v a="$direct_messages_p50" -v b="$relay_messages_p50" -v c="$direct_messages_p99" -v d="$relay_messages_p99" 'BEGIN {printf "%.3f %.3f", b-a, d-c}')")
	added_stream+=("$(awk -v a="$direct_stream_p50" -v b="$gateway_stream_p50" -v c="$direct_stream_p99" -v d="$gateway_stream_p99" 'BEGIN {printf "%.3f %.3f", b-a, d-c}')")
	added_messages+=("$(awk -v a="$direct_messages_p50" -v b="$gateway_messages_p50" -v c="$direct_messages_p99" -v d="$gateway_messages_p99" 'BEGIN {printf "%.3f %.3f", b-a, d-c}')")
	echo "   added: small p50/p99 ${added_small[-1]/ / / } ms; 86 KB stream p50/p99 ${added_stream[-1]/ / / } ms; 86 KB Messages stream p50/p99 ${added_messages[-1]/ / / } ms (TCP relay ${relay_added[-1]/ / / } ms)"
done
echo "added, small InvokeModel (median of $rounds rounds):            p50 $(median 1 "${added_small[@]}") ms, p99 $(median 2 "${added_small[@]}") ms"
echo "added, 86 KB Claude Code-shaped stream (median of $rounds rounds): p50 $(median 1 "${added_stream[@]}") ms, p99 $(median 2 "${added_stream[@]}") ms"
echo "added, 86 KB Claude Code-shaped Messages stream (median of $rounds rounds): p50 $(median 1 "${added_messages[@]}") ms, p99 $(median 2 "${added_messages[@]}") ms"
echo "added by the raw TCP relay to the same Messages stream, the floor for any proxy (median of $rounds rounds): p50 $(median 1 "${relay_added[@]}") ms, p99 $(median 2 "${relay_added[@]}") ms"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ ${BENCH_ONLY:-} == latency ]]; then
	exit 0 # BENCH_ONLY=latency: the latency rounds alone
fi

echo "== throughput at saturation (64 connections, ${duration}s, small InvokeModel)"
# cputicks PID: user+system CPU time of a process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# perreq LABEL PID BEFORE RPS: CPU microseconds per request during the last run.
perreq() {
	awk -v l="$1" -v a="$(cputicks "$2")" -v b="$3" -v r="$4" -v d="$duration" -v t="$(getconf CLK_TCK)" \
		'BEGIN {printf "   %s CPU per request: %.0f us\n", l, (a-b)/t*1e6/(r*d)}'
}
# saturate SUFFIX EMULATOR_PID EMULATOR_URL GATEWAY_PID GATEWAY_URL BARE_PID BARE_URL RELAY_PID RELAY_URL FH_PID FH_URL [WRK_PREFIX...]
saturate() {
	local sfx=$1 epid=$2 eurl=$3 gpid=$4 gurl=$5 bpid=$6 burl=$7 rpid=$8 rurl=$9 fpid=${10} furl=${11}
	shift 11
	local e0 g0 ratios=() round
	wrkprefix=("$@")
	# Direct and gateway alternate for ROUNDS rounds; the target is judged
	# on the median of the rounds' ratios.
	for round in $(seq "$rounds"); do
		e0=$(cputicks "$epid")
		wrkrun "direct_$sfx" "$eurl" invoke "$work/small.json" 64 "${duration}s"
		perreq emulator "$epid" "$e0" "$(eval echo "\$direct_${sfx}_rps")"
		e0=$(cputicks "$epid")
		g0=$(cputicks "$gpid")
		wrkrun "gateway_$sfx" "$gurl" invoke "$work/small.json" 64 "${duration}s"
		perreq "gateway " "$gpid" "$g0" "$(eval echo "\$gateway_${sfx}_rps")"
		perreq "emulator behind it" "$epid" "$e0" "$(eval echo "\$gateway_${sfx}_rps")"
		ratios+=("$(awk -v a="$(eval echo "\$direct_${sfx}_rps")" -v b="$(eval echo "\$gateway_${sfx}_rps")" 'BEGIN {printf "%.1f", 100*b/a}')")
		echo "   round $round: gateway ${ratios[-1]}% of direct"
	done
	echo "gateway of direct, median of $rounds rounds: $(median 1 "${ratios[@]}" | awk '{printf "%.1f", $1}')% (rounds: ${ratios[*]})"
	# The baselines once, against the last round's direct.
	g0=$(cputicks "$bpid")
	wrkrun "bare_proxy_$sfx" "$burl" invoke "$work/small.json" 64 "${duration}s"
	perreq "bare proxy" "$bpid" "$g0" "$(eval echo "\$bare_proxy_${sfx}_rps")"
	g0=$(cputicks "$rpid")
	wrkrun "tcp_relay_$sfx" "$rurl" invoke "$work/small.json" 64 "${duration}s"
	perreq "tcp relay" "$rpid" "$g0" "$(eval echo "\$tcp_relay_${sfx}_rps")"
	if [[ -n $fpid ]]; then
		g0=$(cputicks "$fpid")
		wrkrun "fasthttp_proxy_$sfx" "$furl" invoke "$work/small.json" 64 "${duration}s"
		perreq "fasthttp proxy" "$fpid" "$g0" "$(eval echo "\$fasthttp_proxy_${sfx}_rps")"
	fi
	awk -v a="$(eval echo "\$direct_${sfx}_rps")" -v c="$(eval echo "\$bare_proxy_${sfx}_rps")" \
		-v d="$(eval echo "\$tcp_relay_${sfx}_rps")" -v e="$(eval echo "\${fasthttp_proxy_${sfx}_rps:-0}")" \
		'BEGIN {printf "baselines of the last direct: bare proxy %.0f%%, tcp relay %.0f%%", 100*c/a, 100*d/a
			if (e > 0) printf ", fasthttp proxy %.0f%%", 100*e/a
			printf "\n"}'
	wrkprefix=()
}
echo "-- shared: wrk, emulator and proxy on both cores"
saturate shared "$fast_pid" "$fast_url" "$gw_pid" "$gw_url" "$bare_pid" "$bare_url" "$relay_pid" "$relay_url" "$fh_pid" "$fh_url"
echo "-- pinned: wrk and emulator on core 1, the proxy alone on core 0"
saturate pinned "$pemu_pid" "$pemu_url" "$pgw_pid" "$pgw_url" "$pbare_pid" "$pbare_url" "$prelay_pid" "$prelay_url" "$pfh_pid" "$pfh_url" taskset -c 1
echo "== RSS after the load: gateway $(rss "$gw_pid")"

echo "== $streams concurrent open streams (slow emulator, ~5 s each)"
echo "   RSS before: $(rss "$gwslow_pid")"
hey -c "$streams" -n "$streams" -t 60 -m POST -T application/json -H "Authorization: Bearer $key" -D "$work/small.json" \
	"$gwslow_url/model/$model/invoke-with-response-stream" >"$work/streams.out" &
hey_pid=$!
peak=0
maxopen=0
for _ in $(seq 40); do
	sleep 0.25
	kb=$(awk '/VmRSS/ {print $2}' "/proc/$gwslow_pid/status")
	((kb > peak)) && peak=$kb
	open=$(curl -s "$gwslow_url/metrics" | awk '/^headroom_in_flight_requests/ {printf "%d", $2}')
	((${open:-0} > maxopen)) && maxopen=$open
	kill -0 "$hey_pid" 2>/dev/null || break
done
wait "$hey_pid" || true
echo "   most streams open at once (sampled): $maxopen; peak RSS $(awk -v k="$peak" 'BEGIN {printf "%.1f MB", k/1024}')"
sed -n '/Status code distribution/,/^$/p' "$work/streams.out"
echo "== upstream throttles: $(curl -s "$gw_url/metrics" | awk '/^headroom_upstream_throttles_total/ {s+=$2} END {print s+0}')"
