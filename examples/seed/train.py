"""Training entry point of the seed's TrainingJobs (01, 02 and 12): the quickstart's numpy MLP,
on one process or as distributed workers (it reads the torchrun environment mlctl sets).

    python3 train.py --data DIR --out DIR [--epochs N]

The training set lives in --data (on the `training-data` volume in 01): the first run fills an
empty one with the quickstart's synthetic data set, later runs train on what is there. The
model is written to --out as model.onnx. Every other flag is the quickstart's train.py's.
"""

import os
import sys
from pathlib import Path

# the quickstart's modules, next to this directory (resolved through mlctl's working-directory view)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "quickstart"))

import numpy as np  # noqa: E402

import data  # noqa: E402
import train  # noqa: E402


def ensure_data(directory: Path) -> None:
    """Write the synthetic data set into `directory` unless it holds one already. Every worker
    may do it: the set is deterministic, and each file appears whole (written, then renamed)."""
    if (directory / "train.npz").exists() and (directory / "test.npz").exists():
        return
    x, y = data.make(4000, 8, seed=0)
    n_test = round(len(x) * data.TEST_FRACTION)
    directory.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("RANK", "0")
    for split, rows in (("test", slice(None, n_test)), ("train", slice(n_test, None))):
        partial = directory / f".{split}.{rank}.npz"
        np.savez(partial, x=x[rows], y=y[rows])
        os.replace(partial, directory / f"{split}.npz")
    print(f"no training set in {directory}: wrote the synthetic one there")


def main() -> int:
    argv = sys.argv[1:]
    if "--data" not in argv or argv.index("--data") + 1 >= len(argv):
        sys.exit("error: --data DIR is required")
    ensure_data(Path(argv[argv.index("--data") + 1]))
    return train.main()


if __name__ == "__main__":
    sys.exit(main())
