"""Step 2 of the quickstart: data-parallel training of a small MLP in numpy, exported to ONNX.

Run alone, or as N workers that mlctl starts together with the distributed environment
(MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK; see dist.py). Each rank trains on its shard of the
training rows (rows rank, rank + N, ...). After every mini-batch the ranks average their gradients
with an all-reduce, so all ranks apply the same update and hold the same weights, which is
checked at the end. Rank 0 then exports the model to DIR/model.onnx and writes the output
parameter `model-path` (the absolute path of that file) to $MLCTL_OUTPUTS/model-path.

    python train.py --data data/ --out model/ [--epochs 20] [--hidden 32] [--lr 0.01] [--seed 0]

The model: input "input" float32 [batch, features] -> Gemm -> Relu -> Gemm -> Softmax ->
output "probabilities" float32 [batch, 2] (ONNX opset 17).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import dist
from data import DataError, load_split, write_output

OPSET = 17
IR_VERSION = 8  # the oldest IR that opset 17 allows, so that older runtimes load the model too


class MLP:
    """features -> hidden (ReLU) -> 2 (softmax). All parameters live in one flat float64 vector
    (`flat`, with named views in `p`), so a gradient is one array to all-reduce."""

    def __init__(self, features: int, hidden: int, rng: np.random.Generator):
        shapes = {"w1": (features, hidden), "b1": (hidden,), "w2": (hidden, 2), "b2": (2,)}
        self.flat = np.zeros(sum(int(np.prod(s)) for s in shapes.values()))
        self.grad = np.zeros_like(self.flat)
        self.p, self.g, start = {}, {}, 0
        for name, shape in shapes.items():
            end = start + int(np.prod(shape))
            self.p[name] = self.flat[start:end].reshape(shape)
            self.g[name] = self.grad[start:end].reshape(shape)
            start = end
        self.p["w1"][:] = rng.normal(scale=np.sqrt(2 / features), size=(features, hidden))
        self.p["w2"][:] = rng.normal(scale=np.sqrt(2 / hidden), size=(hidden, 2))

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the hidden activations and the class probabilities."""
        hidden = np.maximum(x @ self.p["w1"] + self.p["b1"], 0.0)
        logits = hidden @ self.p["w2"] + self.p["b2"]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return hidden, exp / exp.sum(axis=1, keepdims=True)

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy on (x, y) and its gradient (the flat `grad` buffer)."""
        hidden, probs = self.forward(x)
        rows = np.arange(len(y))
        loss = float(-np.log(probs[rows, y] + 1e-12).mean())
        d_logits = probs
        d_logits[rows, y] -= 1.0
        d_logits /= len(y)
        self.g["w2"][:] = hidden.T @ d_logits
        self.g["b2"][:] = d_logits.sum(axis=0)
        d_hidden = (d_logits @ self.p["w2"].T) * (hidden > 0)
        self.g["w1"][:] = x.T @ d_hidden
        self.g["b1"][:] = d_hidden.sum(axis=0)
        return loss, self.grad

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on (x, y)."""
        _, probs = self.forward(x)
        loss = float(-np.log(probs[np.arange(len(y)), y] + 1e-12).mean())
        return loss, float((probs.argmax(axis=1) == y).mean())


class Adam:
    """The Adam optimizer on a flat parameter vector, updated in place."""

    def __init__(self, size: int, lr: float, beta1: float = 0.9, beta2: float = 0.999):
        self.lr, self.beta1, self.beta2, self.t = lr, beta1, beta2, 0
        self.m, self.v = np.zeros(size), np.zeros(size)

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        params -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def to_onnx(model: MLP) -> onnx.ModelProto:
    """The trained MLP as a checked ONNX model: Gemm -> Relu -> Gemm -> Softmax."""
    features = model.p["w1"].shape[0]
    weights = [numpy_helper.from_array(model.p[n].astype(np.float32), n) for n in model.p]
    nodes = [
        helper.make_node("Gemm", ["input", "w1", "b1"], ["hidden_linear"]),
        helper.make_node("Relu", ["hidden_linear"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "quickstart-mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=weights,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="mlctl-quickstart",
        doc_string="binary classifier from examples/quickstart/train.py",
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export(model: MLP, x_check: np.ndarray, out_dir: Path) -> Path:
    """Write out_dir/model.onnx after checking that ONNX computes what numpy computed."""
    onnx_model = to_onnx(model)
    (onnx_probs,) = ReferenceEvaluator(onnx_model).run(None, {"input": x_check})
    _, numpy_probs = model.forward(x_check)
    diff = float(np.abs(onnx_probs - numpy_probs).max())
    if diff > 1e-4:
        raise RuntimeError(f"the exported model disagrees with the trained one by {diff:g}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = (out_dir / "model.onnx").resolve()
    tmp = path.with_suffix(".onnx.tmp")
    onnx.save(onnx_model, tmp)
    os.replace(tmp, path)  # never leave a half-written model behind
    print(f"exported {path} ({path.stat().st_size} bytes; ONNX matches numpy within {diff:.1e})")
    return path


def train(args: argparse.Namespace) -> None:
    started = time.monotonic()
    dist.init(timeout=args.dist_timeout)
    rank, world = dist.rank(), dist.world_size()
    x_all, y_all = load_split(args.data, "train")
    if len(y_all) < world:
        raise DataError(f"{len(y_all)} training rows cannot be split over {world} workers")
    x, y = x_all[rank::world], y_all[rank::world]
    print(f"rank {rank}/{world}: training on {len(y)} of {len(y_all)} rows", flush=True)

    model = MLP(x.shape[1], args.hidden, np.random.default_rng(args.seed))  # same on every rank
    optimizer = Adam(model.flat.size, args.lr)
    shuffle = np.random.default_rng([args.seed, rank])
    # every rank must take the same number of steps: derive it from numbers all ranks share
    steps_per_epoch = -(-(len(y_all) // world) // args.batch_size)
    report_every = max(1, args.epochs // 5)
    for epoch in range(1, args.epochs + 1):
        order = shuffle.permutation(len(y))
        for step in range(steps_per_epoch):
            batch = order[(step * args.batch_size + np.arange(args.batch_size)) % len(y)]
            _, grad = model.loss_and_grad(x[batch], y[batch])
            optimizer.step(model.flat, dist.all_reduce_mean(grad))
        if epoch % report_every == 0 or epoch == args.epochs:
            loss, accuracy = dist.all_reduce_mean(np.array(model.evaluate(x, y)))
            if rank == 0:
                print(
                    f"epoch {epoch}/{args.epochs}: loss {loss:.4f}, train accuracy {accuracy:.4f}",
                    flush=True,
                )

    dist.check_identical(model.flat, "weights")
    dist.close()
    print(
        f"rank {rank}/{world}: done in {time.monotonic() - started:.2f}s, weights identical "
        "on all ranks",
        flush=True,
    )
    if rank == 0:
        path = export(model, x_all[:256], Path(args.out))
        write_output("model-path", str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="directory with train.npz (from data.py)")
    parser.add_argument("--out", required=True, help="directory to write model.onnx to")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the data (default 20)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units (default 32)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per step and worker")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the other workers (default 60)",
    )
    args = parser.parse_args()
    for name in ("epochs", "hidden", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not (args.lr > 0 and args.dist_timeout > 0):
        parser.error("--lr and --dist-timeout must be positive")
    try:
        train(args)
    except (dist.DistError, DataError, OSError, RuntimeError) as e:
        rank = os.environ.get("RANK", "0")
        sys.exit(f"error: rank {rank}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
