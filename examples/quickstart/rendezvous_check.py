"""Check the distributed environment for real: start it as every worker of a distributed job.

Each worker connects to MASTER_ADDR:MASTER_PORT (dist.py), all-reduces its RANK and checks that
the ranks are exactly 0..WORLD_SIZE-1 (their sum is WORLD_SIZE*(WORLD_SIZE-1)/2 and each appears
once). It also checks that the rest of the contract is consistent, the way torchrun and Kubernetes
Indexed Jobs define it:

- RANK = NODE_RANK * PET_NPROC_PER_NODE + LOCAL_RANK, with LOCAL_RANK < PET_NPROC_PER_NODE;
- WORLD_SIZE = PET_NNODES * PET_NPROC_PER_NODE, NODE_RANK = PET_NODE_RANK < PET_NNODES;
- JOB_COMPLETION_INDEX = NODE_RANK (the index of the worker's pod, which is torchrun's node);
- PET_MASTER_ADDR/PET_MASTER_PORT = MASTER_ADDR/MASTER_PORT, and every rank sees the same
  MASTER_*, WORLD_SIZE, PET_NNODES and PET_NPROC_PER_NODE.

Exit status: 0 all good, 1 a check failed here or on another rank (or a peer failed), 2 usage,
3 failed on purpose. mlctl's runtime tests use the flags below to exercise gang restarts,
deadlines and cancellation:

    python rendezvous_check.py                       # every rank checks and exits 0
    python rendezvous_check.py --fail-rank 1         # rank 1 exits 3 after the rendezvous
    python rendezvous_check.py --fail-rank 1 --fail-once /tmp/marker   # ...only the first time
    python rendezvous_check.py --hang-rank 0 [--ignore-sigterm]        # rank 0 never finishes
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

import dist

INTEGER_VARS = [
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "JOB_COMPLETION_INDEX",
    "MASTER_PORT",
    "PET_NPROC_PER_NODE",
    "PET_NNODES",
    "PET_NODE_RANK",
    "PET_MASTER_PORT",
]
TEXT_VARS = ["MASTER_ADDR", "PET_MASTER_ADDR"]
SHARED_VARS = ["MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "PET_NNODES", "PET_NPROC_PER_NODE"]


def read_env() -> dict[str, int | str]:
    """Every variable of the contract, integers parsed; SystemExit listing what is wrong."""
    missing = [name for name in INTEGER_VARS + TEXT_VARS if name not in os.environ]
    if missing:
        sys.exit(f"error: the distributed environment lacks {', '.join(missing)}")
    env: dict[str, int | str] = {name: os.environ[name] for name in TEXT_VARS}
    for name in INTEGER_VARS:
        try:
            env[name] = int(os.environ[name])
        except ValueError:
            sys.exit(f"error: {name}={os.environ[name]!r} is not an integer")
    return env


def local_problems(e: dict[str, int | str]) -> list[str]:
    """What is inconsistent in this worker's own environment."""
    nproc, nnodes = e["PET_NPROC_PER_NODE"], e["PET_NNODES"]
    rules = [
        (0 <= e["RANK"] < e["WORLD_SIZE"], "RANK must be in [0, WORLD_SIZE)"),
        (e["WORLD_SIZE"] == nnodes * nproc, "WORLD_SIZE must be PET_NNODES * PET_NPROC_PER_NODE"),
        (e["NODE_RANK"] == e["PET_NODE_RANK"], "NODE_RANK must equal PET_NODE_RANK"),
        (0 <= e["NODE_RANK"] < nnodes, "NODE_RANK must be in [0, PET_NNODES)"),
        (0 <= e["LOCAL_RANK"] < nproc, "LOCAL_RANK must be in [0, PET_NPROC_PER_NODE)"),
        (
            e["RANK"] == e["NODE_RANK"] * nproc + e["LOCAL_RANK"],
            "RANK must be NODE_RANK * PET_NPROC_PER_NODE + LOCAL_RANK",
        ),
        (e["JOB_COMPLETION_INDEX"] == e["NODE_RANK"], "JOB_COMPLETION_INDEX must equal NODE_RANK"),
        (e["PET_MASTER_ADDR"] == e["MASTER_ADDR"], "PET_MASTER_ADDR must equal MASTER_ADDR"),
        (e["PET_MASTER_PORT"] == e["MASTER_PORT"], "PET_MASTER_PORT must equal MASTER_PORT"),
    ]
    shown = ", ".join(f"{name}={e[name]}" for name in INTEGER_VARS + TEXT_VARS)
    return [f"{message} ({shown})" for ok, message in rules if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fail-rank", type=int, metavar="R", help="rank R exits 3 on purpose")
    parser.add_argument(
        "--fail-once",
        metavar="PATH",
        help="with --fail-rank: fail only if PATH does not exist, and create it",
    )
    parser.add_argument("--hang-rank", type=int, metavar="R", help="rank R waits forever")
    parser.add_argument(
        "--ignore-sigterm",
        action="store_true",
        help="ignore SIGTERM (to test that the runtime escalates to SIGKILL)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the other workers (default 60)",
    )
    args = parser.parse_args()
    if args.fail_once and args.fail_rank is None:
        parser.error("--fail-once needs --fail-rank")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    env = read_env()
    rank, world = env["RANK"], env["WORLD_SIZE"]
    problems = local_problems(env)
    print(
        f"rank {rank}/{world}: node {env['NODE_RANK']}/{env['PET_NNODES']}, local "
        f"{env['LOCAL_RANK']}/{env['PET_NPROC_PER_NODE']}, index {env['JOB_COMPLETION_INDEX']}, "
        f"master {env['MASTER_ADDR']}:{env['MASTER_PORT']}, CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')}",
        flush=True,
    )
    try:
        dist.init(timeout=args.timeout)
        print(f"rank {rank}/{world}: rendezvous done", flush=True)
        if rank == args.fail_rank and not (args.fail_once and marker_exists(args.fail_once)):
            print(f"rank {rank}/{world}: failing on purpose (--fail-rank)", flush=True)
            # end at once, as a crashing worker does: its connections close as it exits, not
            # before (a normal return closes them first, and the peers, which then fail, could
            # be seen failing before this rank has finished exiting)
            os._exit(3)
        if rank == args.hang_rank:
            print(f"rank {rank}/{world}: hanging on purpose (--hang-rank)", flush=True)
            while True:
                signal.pause()

        rank_sum = int(dist.all_reduce_sum(np.array([rank], dtype=np.int64))[0])
        if rank_sum != world * (world - 1) // 2:
            problems.append(f"the ranks sum to {rank_sum}, not {world * (world - 1) // 2}")
        seen = dist.all_reduce_sum(np.eye(1, world, k=rank, dtype=np.int64)[0])
        if np.any(seen != 1):
            problems.append(f"each rank must appear once; times seen, by rank: {seen.tolist()}")
        shared = ";".join(f"{name}={env[name]}" for name in SHARED_VARS).encode()
        try:
            dist.check_identical(np.frombuffer(shared, dtype=np.uint8), " ".join(SHARED_VARS))
        except dist.DistError as e:
            problems.append(str(e))
        elsewhere = int(dist.all_reduce_sum(np.array([len(problems)], dtype=np.int64))[0])
        dist.close()
    except dist.DistError as e:
        print(f"error: rank {rank}: {e}", file=sys.stderr)
        return 1

    for problem in problems:
        print(f"error: rank {rank}: {problem}", file=sys.stderr)
    if elsewhere > len(problems):
        print(
            f"error: rank {rank}: {elsewhere - len(problems)} problem(s) on other ranks",
            file=sys.stderr,
        )
    if elsewhere:
        return 1
    print(
        f"rank {rank}/{world}: ok (ranks sum to {rank_sum}, all {world} seen once, "
        "environment consistent)",
        flush=True,
    )
    return 0


def marker_exists(path: str) -> bool:
    """True if `path` already existed; otherwise create it (so only the first attempt fails)."""
    try:
        with open(path, "x"):
            return False
    except FileExistsError:
        return True


if __name__ == "__main__":
    sys.exit(main())
