"""Step 3 of the quickstart: measure the exported model's accuracy on the test set.

Runs the ONNX file itself (with onnx's reference runtime, not the training code), so what is
measured is what will be served. Prints the accuracy and writes it, with four decimals (e.g.
`0.9412`), to $MLCTL_OUTPUTS/accuracy, where a pipeline's `when` condition can compare it.

    python evaluate.py --data data/ --model model/model.onnx
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from data import DataError, load_split, write_output


def load_model(path: str) -> tuple[onnx.ModelProto, int]:
    """Load and check the model; return it with the number of features its input expects."""
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except FileNotFoundError:
        raise DataError(f"model {path} does not exist; run train.py first") from None
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError, checker errors, I/O errors
        raise DataError(f"{path} is not a valid ONNX model ({type(e).__name__}: {e})") from None
    inputs = {i.name: i for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    if "input" not in inputs or outputs != ["probabilities"]:
        raise DataError(
            f"{path} must take 'input' and return 'probabilities' (has "
            f"{sorted(inputs)} -> {outputs})"
        )
    dims = inputs["input"].type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[1].HasField("dim_value"):
        raise DataError(f"{path}: 'input' must have the shape [batch, features]")
    return model, dims[1].dim_value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="directory with test.npz (from data.py)")
    parser.add_argument("--model", required=True, help="the ONNX model (from train.py)")
    args = parser.parse_args()
    try:
        x, y = load_split(args.data, "test")
        model, features = load_model(args.model)
        if x.shape[1] != features:
            raise DataError(f"the model expects {features} features, the test set has {x.shape[1]}")
    except DataError as e:
        sys.exit(f"error: {e}")

    (probabilities,) = ReferenceEvaluator(model).run(None, {"input": x})
    accuracy = float((np.argmax(probabilities, axis=1) == y).mean())
    print(f"accuracy {accuracy:.4f} on {len(y)} test rows ({args.model})")
    write_output("accuracy", f"{accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
