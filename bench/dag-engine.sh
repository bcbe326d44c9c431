#!/usr/bin/env bash
# Orchestration cost per step of mlctl's DAG engine (mlctl-core::dag: build, seal, run with
# Argo's semantics) against Python's graphlib.TopologicalSorter on the same graphs, in the
# same invocation. Prints the median over REPEATS runs of each and the ratio.
#
#   bench/dag-engine.sh [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-15}"

cargo bench -q -p mlctl-core --bench dag_engine --no-run 2>/dev/null
engine=(cargo bench -q -p mlctl-core --bench dag_engine --)

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-8s %7s %16s %16s %18s %8s\n' shape steps "mlctl µs/step" "graphlib µs/step" "mlctl total ms" ratio
for shape in chain wide layered; do
  for steps in 200 1000 10000; do
    ours=$("${engine[@]}" "$shape" "$steps" "$repeats" | median)
    peer=$(python3 bench/dag_engine_peer.py "$shape" "$steps" "$repeats" | median)
    awk -v s="$shape" -v n="$steps" -v o="$ours" -v p="$peer" 'BEGIN {
      printf "%-8s %7d %16.3f %16.3f %18.3f %7.1fx\n", s, n, o/n/1000, p/n/1000, o/1e6, p/o }'
  done
done
