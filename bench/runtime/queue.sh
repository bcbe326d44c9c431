#!/usr/bin/env bash
# Scheduling + spawn overhead per job of the local runtime: N queued TrainingJobs that each run
# `true` and request a whole CPU, so that at most (cores) run at once and the rest queue.
# Prints the median of R repetitions, per job, next to the cost of spawning `true` N times from
# a shell loop (the floor no runtime can beat), and the ratio.
#
#   bash bench/runtime/queue.sh [N=500] [R=5]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-500}
R=${2:-5}
cargo build --release -q -p mlctl
MLCTL=$PWD/target/release/mlctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$N"); do
  printf -- '---\napiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: job-%d}\nspec:\n  run: ["true"]\n  resources: {cpu: 1, memory: 16Mi}\n' "$i"
done > "$work/jobs.yaml"
cores=$(nproc)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mlctl_times=()
for r in $(seq 1 "$R"); do
  export MLCTL_HOME="$work/home-$r"
  start=$(date +%s.%N)
  "$MLCTL" run -f "$work/jobs.yaml" --cpus "$cores" >/dev/null 2>&1
  end=$(date +%s.%N)
  mlctl_times+=("$(echo "$end - $start" | bc -l)")
  ok=$("$MLCTL" get runs -o json | grep -c '"phase": "Succeeded"')
  [ "$ok" -eq "$N" ] || { echo "only $ok of $N runs succeeded" >&2; exit 1; }
done
shell_times=()
for r in $(seq 1 "$R"); do
  start=$(date +%s.%N)
  for i in $(seq 1 "$N"); do /bin/true; done
  end=$(date +%s.%N)
  shell_times+=("$(echo "$end - $start" | bc -l)")
done
m=$(printf '%s\n' "${mlctl_times[@]}" | median)
s=$(printf '%s\n' "${shell_times[@]}" | median)
printf 'jobs: %d queued on %d cores, %d repetitions\n' "$N" "$cores" "$R"
printf 'mlctl run: median %.3f s total, %.2f ms per job (scheduling, store, spawn, supervision)\n' "$m" "$(echo "$m * 1000 / $N" | bc -l)"
printf 'shell loop spawning true: median %.3f s total, %.2f ms per job\n' "$s" "$(echo "$s * 1000 / $N" | bc -l)"
printf 'ratio: %.1fx the bare spawn cost\n' "$(echo "$m / $s" | bc -l)"
