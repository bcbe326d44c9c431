"""A Dask job: statistics of a large random array, computed by the Dask workers that mlctl
started (locally) or the DaskJob's cluster (on Kubernetes).

    python3 dask_stats.py [--rows N]

It connects to DASK_SCHEDULER_ADDRESS and waits for DASK_N_WORKERS workers (both set by mlctl).
"""

import argparse
import os
import sys

import dask.array as da
from dask.distributed import Client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="array length")
    args = parser.parse_args()
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if not address:
        sys.exit("error: DASK_SCHEDULER_ADDRESS is not set (run me with mlctl run)")
    with Client(address) as client:
        workers = int(os.environ.get("DASK_N_WORKERS", "1"))
        client.wait_for_workers(workers, timeout=60)
        x = da.random.default_rng(0).normal(10.0, 2.0, size=args.rows, chunks=args.rows // 8)
        mean, std = da.compute(x.mean(), x.std())
        print(f"{len(client.scheduler_info()['workers'])} workers: mean {mean:.3f}, std {std:.3f} over {args.rows} rows")
        if abs(mean - 10.0) > 0.05 or abs(std - 2.0) > 0.05:
            sys.exit(f"error: unexpected statistics {mean}, {std}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
