"""Asks the quickstart's served model, through mlctl's load balancer, with the two real Open
Inference Protocol v2 clients from PyPI (NVIDIA's tritonclient with binary tensors, the KServe
SDK with JSON), and checks every answer against the ONNX file run by onnx's reference
runtime: what is served is the model the pipeline trained.

    python3 client.py HOST:PORT MODEL_PATH
"""

import asyncio
import sys

import numpy as np
import onnx
import tritonclient.http as httpclient
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from onnx.reference import ReferenceEvaluator

url, model_path = sys.argv[1:3]
name = "quickstart"

model = onnx.load(model_path)
features = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
x = np.random.default_rng(7).normal(size=(16, features)).astype(np.float32)
(want,) = ReferenceEvaluator(model).run(None, {"input": x})


def check(got, what: str) -> None:
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=what)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5, err_msg=f"{what}: probabilities")


triton = httpclient.InferenceServerClient(url=url)
assert triton.is_server_ready()
assert triton.is_model_ready(name)
meta = triton.get_model_metadata(name)
assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, features]}], meta
assert meta["outputs"][0]["name"] == "probabilities", meta
inp = httpclient.InferInput("input", list(x.shape), "FP32")
inp.set_data_from_numpy(x)
check(triton.infer(name, [inp]).as_numpy("probabilities"), "tritonclient, binary tensors")


async def kserve() -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    base = f"http://{url}"
    assert await client.is_model_ready(base, name)
    inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    res = await client.infer(base, InferRequest(model_name=name, infer_inputs=[inp]), model_name=name)
    check(res.outputs[0].as_numpy(), "KServe SDK, JSON")
    await client.close()


asyncio.run(kserve())
print("ok")
