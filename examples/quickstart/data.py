"""Step 1 of the quickstart: write a synthetic binary classification data set.

Each class is a pair of Gaussian blobs on opposite corners of a square (an XOR layout), so no
straight line separates the classes but a small MLP does. The blobs overlap a little, so the best
possible accuracy is about 0.95, not 1.0. The two informative coordinates are mixed with
`features - 2` noise coordinates by a random rotation: every feature carries some signal.

    python data.py --out data/ [--samples 4000] [--features 8] [--seed 0]

writes data/train.npz and data/test.npz (80/20 split), each with `x` (float32 [rows, features])
and `y` (int64 [rows], 0 or 1). The other steps read them back with `load_split`, which also
lives here together with `write_output` (mlctl's output-parameter contract).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

SEPARATION = 1.0  # blob centres sit at (±SEPARATION, ±SEPARATION)
SPREAD = 0.5  # standard deviation of each blob; SEPARATION/SPREAD = 2 gives ~0.955 Bayes accuracy
TEST_FRACTION = 0.2


class DataError(Exception):
    """A data file is missing or is not what the quickstart writes."""


def make(samples: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return `samples` rows of `features` float32 features and their int64 labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=samples)
    corner = rng.choice([-1.0, 1.0], size=samples)  # which of its class's two blobs a row is in
    # class 0 lives at (+,+) and (-,-), class 1 at (+,-) and (-,+)
    centres = SEPARATION * np.stack([corner, np.where(y == 0, corner, -corner)], axis=1)
    informative = centres + rng.normal(scale=SPREAD, size=(samples, 2))
    noise = rng.normal(size=(samples, features - 2))
    rotation, _ = np.linalg.qr(rng.normal(size=(features, features)))
    x = np.concatenate([informative, noise], axis=1) @ rotation
    return x.astype(np.float32), y.astype(np.int64)


def load_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read DIR/<split>.npz as written by this script, checking shapes, dtypes and labels."""
    path = Path(data_dir) / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not {"x", "y"} <= set(npz.files):
                raise DataError(f"{path} has arrays {npz.files}, not x and y as data.py writes")
            x, y = npz["x"], npz["y"]
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; run data.py --out {data_dir} first") from None
    except (ValueError, OSError):
        raise DataError(f"{path} is not an .npz archive written by data.py") from None
    if x.ndim != 2 or x.dtype != np.float32 or not np.isfinite(x).all():
        raise DataError(f"{path}: x must be a finite float32 matrix, got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or not np.isin(y, (0, 1)).all():
        raise DataError(f"{path}: y must hold one label (0 or 1) per row of x")
    if x.shape[0] == 0:
        raise DataError(f"{path} has no rows")
    return x, y.astype(np.int64)


def write_output(name: str, value: str) -> None:
    """Write an output parameter where mlctl reads it: $MLCTL_OUTPUTS/<name>, no trailing newline.

    Does nothing when MLCTL_OUTPUTS is unset (the script runs outside mlctl)."""
    outputs = os.environ.get("MLCTL_OUTPUTS")
    if not outputs:
        return
    Path(outputs).mkdir(parents=True, exist_ok=True)
    (Path(outputs) / name).write_text(value)
    print(f"output {name} = {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for train.npz and test.npz")
    parser.add_argument("--samples", type=int, default=4000, help="total rows (default 4000)")
    parser.add_argument("--features", type=int, default=8, help="features per row (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    if args.samples < 10:
        parser.error("--samples must be at least 10")
    if args.features < 2:
        parser.error("--features must be at least 2 (two of them carry the signal)")

    x, y = make(args.samples, args.features, args.seed)
    n_test = max(1, round(args.samples * TEST_FRACTION))
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "train.npz", x=x[n_test:], y=y[n_test:])
        np.savez(out / "test.npz", x=x[:n_test], y=y[:n_test])
    except OSError as e:
        sys.exit(f"error: cannot write the data set to {out}: {e}")
    print(
        f"wrote {len(x) - n_test} training and {n_test} test rows of {args.features} features "
        f"to {out}/{{train,test}}.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
