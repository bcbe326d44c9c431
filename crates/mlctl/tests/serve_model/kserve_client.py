"""Drives a running `mlctl serve-model` with the KServe SDK's InferenceRESTClient, in the v2
protocol (binary tensors, its default, and JSON) and the v1 protocol (TensorFlow Serving's
:predict), the way a KServe user's code would.

    python3 kserve_client.py HOST:PORT MODEL_PATH MODEL_NAME
"""

import asyncio
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

from reference import check, mlp

url, model_path, name = sys.argv[1:4]
base = f"http://{url}"


async def v2(x: np.ndarray, want: np.ndarray) -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    assert await client.is_server_live(base)
    assert await client.is_server_ready(base)
    assert await client.is_model_ready(base, name)

    inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x)  # binary_data=True is the SDK's default
    res = await client.infer(base, InferRequest(model_name=name, infer_inputs=[inp], request_id="k-1"), model_name=name)
    assert res.id == "k-1", res.id
    check(res.outputs[0].as_numpy(), want, "v2 binary")

    inp = InferInput(name="input", shape=list(x.shape), datatype="FP32")
    inp.set_data_from_numpy(x, binary_data=False)
    res = await client.infer(base, InferRequest(model_name=name, infer_inputs=[inp]), model_name=name)
    check(res.outputs[0].as_numpy(), want, "v2 json")

    bad = InferInput(name="nope", shape=[1, 16], datatype="FP32")
    bad.set_data_from_numpy(x[:1], binary_data=False)
    try:
        await client.infer(base, InferRequest(model_name=name, infer_inputs=[bad]), model_name=name)
        raise SystemExit("an unknown input was accepted")
    except httpx.HTTPStatusError as e:
        assert e.response.status_code == 400
        # The SDK lifts our {"error": ...} into its message.
        assert 'unknown input "nope"' in str(e), str(e)
    await client.close()


async def v1(x: np.ndarray, want: np.ndarray) -> None:
    client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0))
    assert await client.is_model_ready(base, name)
    res = await client.infer(base, {"instances": x.tolist()}, model_name=name)
    check(res["predictions"], want, "v1 instances")
    res = await client.infer(base, {"inputs": x.tolist()}, model_name=name)
    check(res["outputs"], want, "v1 inputs")
    await client.close()


async def main() -> None:
    x = np.random.default_rng(2).normal(size=(5, 16)).astype(np.float32)
    want = mlp(model_path, x)
    await v2(x, want)
    await v1(x, want)


asyncio.run(main())
print("kserve: ok")
