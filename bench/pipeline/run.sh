#!/usr/bin/env bash
# Pipelines: mlctl vs Kubeflow Pipelines' local SubprocessRunner on the same DAGs of no-op steps
# (200 and 1,000 steps), in one invocation. Builds the release mlctl, installs kfp from PyPI into
# a throwaway virtualenv, and prints medians, per-step overhead and the ratio (bench.py says
# exactly what is timed).
#
#   bash bench/pipeline/run.sh [--repeats 7] [--kfp-repeats 3] [--sizes 200,1000]
#                              [--kfp-venv DIR] [--kfp-max-seconds 1200]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p mlctl
exec python3 bench/pipeline/bench.py --mlctl target/release/mlctl "$@"
