"""Drives a running `mlctl serve-model` with NVIDIA's tritonclient (HTTP), as a Triton user
would: health, metadata, inference with binary tensors (the client's default) and JSON,
the versioned route, concurrent async requests, and an error.

    python3 triton_client.py HOST:PORT MODEL_PATH MODEL_NAME
"""

import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from reference import check, mlp

url, model_path, name = sys.argv[1:4]
client = httpclient.InferenceServerClient(url=url, concurrency=8)

assert client.is_server_live()
assert client.is_server_ready()
assert client.is_model_ready(name)
assert client.is_model_ready(name, "1")
assert not client.is_model_ready("no-such-model")
assert client.get_server_metadata()["name"] == "mlctl"
meta = client.get_model_metadata(name)
assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 16]}], meta
assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}], meta

rng = np.random.default_rng(1)
x = rng.normal(size=(7, 16)).astype(np.float32)
want = mlp(model_path, x)

# The client's defaults: binary input, and binary outputs when none are named.
inp = httpclient.InferInput("input", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
result = client.infer(name, [inp])
check(result.as_numpy("output"), want, "binary in, binary out")

# JSON both ways, a named output, a request id, the versioned route.
inp.set_data_from_numpy(x, binary_data=False)
out = httpclient.InferRequestedOutput("output", binary_data=False)
result = client.infer(name, [inp], outputs=[out], request_id="req-7", model_version="1")
check(result.as_numpy("output"), want, "json in, json out")
assert result.get_response()["id"] == "req-7", result.get_response()

# Many requests at once: the server batches them and must split the answers right.
pending = []
for i in range(32):
    row = x[i % 7 : i % 7 + 1]
    one = httpclient.InferInput("input", [1, 16], "FP32")
    one.set_data_from_numpy(row)
    pending.append((i % 7, client.async_infer(name, [one])))
for row, request in pending:
    check(request.get_result().as_numpy("output"), want[row : row + 1], f"async row {row}")

# A wrong shape is a clear error.
bad = httpclient.InferInput("input", [1, 15], "FP32")
bad.set_data_from_numpy(np.zeros((1, 15), dtype=np.float32))
try:
    client.infer(name, [bad])
    raise SystemExit("a wrong shape was accepted")
except InferenceServerException as e:
    assert e.status() == "400", e.status()
    assert "has shape [1, 15], but the model takes [-1, 16]" in e.message(), e.message()

client.close()
print("tritonclient: ok")
