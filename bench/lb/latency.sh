#!/usr/bin/env bash
# Latency the local load balancer (mlctl-local::lb) adds to a request, against the same request
# sent straight to the backend, by the same keep-alive client in the same run (alternating).
# Prints the median over REPEATS repetitions of each one's p50 and p99, and the difference.
# If `wrk` is installed (apt-get install wrk), also compares throughput and latency under
# CONCURRENCY connections, direct and through the balancer, alternating, WRK_REPEATS times.
#
#   bench/lb/latency.sh [REQUESTS=10000] [REPEATS=7] [CONCURRENCY=16] [WRK_REPEATS=5]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests="${1:-10000}"
repeats="${2:-7}"
concurrency="${3:-16}"
wrk_repeats="${4:-5}"

exe=$(cargo bench -q -p mlctl-local --bench lb_latency --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "lb_latency" and m.get("executable"):
        print(m["executable"])')

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$exe" latency "$requests" "$repeats" >"$out"
d50=$(col 1 "$out"); d99=$(col 2 "$out"); l50=$(col 3 "$out"); l99=$(col 4 "$out")
a50=$(awk '{print $3-$1}' "$out" | median); a99=$(awk '{print $4-$2}' "$out" | median)
echo "sequential keep-alive requests, $requests per repetition, median of $repeats repetitions (µs)"
printf '%-10s %10s %10s %10s\n' "" direct balancer added
awk -v d="$d50" -v l="$l50" -v a="$a50" 'BEGIN {printf "%-10s %10.1f %10.1f %10.1f\n", "p50", d/1000, l/1000, a/1000}'
awk -v d="$d99" -v l="$l99" -v a="$a99" 'BEGIN {printf "%-10s %10.1f %10.1f %10.1f\n", "p99", d/1000, l/1000, a/1000}'

command -v wrk >/dev/null || { echo "(wrk not installed: skipping the load comparison)"; exit 0; }

# CPU time (user + system, in clock ticks) of one named thread of the server.
ticks() { for t in /proc/"$SERVER_PID"/task/*; do
  [ "$(cat "$t/comm")" = "$1" ] && awk '{print $14 + $15}' "$t/stat"; done; }
hz=$(getconf CLK_TCK)
# wrk prints latencies as 812.00us, 1.20ms or 2.00s; convert to µs.
us() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else {sub(/s$/,"",v); print v*1000000}}'; }
lua=$(mktemp --suffix=.lua)
trap 'rm -f "$out" "$out.direct" "$out.lb" "$lua"' EXIT
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"input","shape":[1,8],"datatype":"FP32","data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}]}'
LUA
# The server runs until its stdin closes, which happens when this script exits.
coproc SERVER { exec "$exe" serve; }
read -r direct lb <&"${SERVER[0]}"
: >"$out.direct"; : >"$out.lb"
for _ in $(seq 1 "$wrk_repeats"); do
  for target in direct lb; do
    addr=$([ "$target" = direct ] && echo "$direct" || echo "$lb")
    before=$(ticks balancer)
    w=$(wrk -t1 -c"$concurrency" -d3s --latency -s "$lua" "http://$addr/v2/models/mlp/infer")
    after=$(ticks balancer)
    total=$(echo "$w" | awk '/requests in/ {print $1}')
    # The balancer's CPU time per request it proxied (0 when the run went direct).
    cpu=$(awk -v b="$before" -v a="$after" -v n="$total" -v hz="$hz" 'BEGIN {print (a-b)*1e6/hz/n}')
    rps=$(echo "$w" | awk '/^Requests\/sec/ {print $2}')
    p50=$(echo "$w" | awk '$1 == "50%" {print $2}' | us)
    p99=$(echo "$w" | awk '$1 == "99%" {print $2}' | us)
    errs=$(echo "$w" | awk '/Non-2xx|Socket errors/' | head -1)
    [ -z "$errs" ] || { echo "wrk saw errors against $target: $errs" >&2; exit 1; }
    echo "$rps $p50 $p99 $cpu" >>"$out.$target"
  done
done
echo
echo "wrk, $concurrency connections, 3 s each, median of $wrk_repeats alternating runs"
printf '%-10s %12s %10s %10s\n' "" "requests/s" "p50 µs" "p99 µs"
for target in direct lb; do
  printf '%-10s %12.0f %10.1f %10.1f\n' "$([ "$target" = direct ] && echo direct || echo balancer)" \
    "$(col 1 "$out.$target")" "$(col 2 "$out.$target")" "$(col 3 "$out.$target")"
done
printf 'balancer CPU time per proxied request: %.1f µs (user + system)\n' "$(col 4 "$out.lb")"
