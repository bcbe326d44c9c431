"""The MLP of mlctl-serve's fixture mlp.onnx computed by numpy from the weights in the file,
shared by the client scripts: what every answer of the server must match."""

import numpy as np
import onnx
from onnx import numpy_helper


def mlp(model_path: str, x: np.ndarray) -> np.ndarray:
    graph = onnx.load(model_path).graph
    w = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    ops = [n.op_type for n in graph.node]
    assert ops == ["Gemm", "Relu", "Gemm", "Softmax"], ops
    h = np.maximum(x @ w["w1"] + w["b1"], 0.0)
    z = h @ w["w2"] + w["b2"]
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def check(got, want, what: str) -> None:
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)
