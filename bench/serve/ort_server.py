#!/usr/bin/env python3
"""The Python peer for the serve-model benchmark: the same MLP served with onnxruntime behind
the same Open Inference Protocol JSON route (POST /v2/models/NAME/infer), on the fastest
plain Python stack at hand: a bare ASGI app (no framework) on uvicorn with uvloop and
httptools, orjson for JSON, one onnxruntime session with one thread. It validates the input
name, datatype and element count, as mlctl-serve does.

    python3 ort_server.py --model mlp.onnx --name mlp --port 0

prints `listening on http://127.0.0.1:PORT` on stderr once it accepts connections.
"""

import argparse
import socket
import sys

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def make_app(model_path: str, name: str):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    output_names = [o.name for o in session.get_outputs()]
    route = f"/v2/models/{name}/infer".encode()

    async def reply(send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["method"] != "POST" or scope["raw_path"] != route:
            await reply(send, 404, b'{"error":"not found"}')
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            request = orjson.loads(b"".join(chunks))
            feeds = {}
            for tensor in request["inputs"]:
                spec = inputs[tensor["name"]]
                dtype = DTYPES[tensor["datatype"]]
                data = np.asarray(tensor["data"], dtype=dtype).reshape(tensor["shape"])
                if len(spec.shape) != data.ndim:
                    raise ValueError("shape")
                feeds[tensor["name"]] = data
        except Exception as e:  # a bad request, as mlctl-serve answers it
            await reply(send, 400, orjson.dumps({"error": str(e)}))
            return
        results = session.run(output_names, feeds)
        body = {
            "model_name": name,
            "outputs": [
                {"name": n, "datatype": "FP32", "shape": list(r.shape), "data": r.reshape(-1).tolist()}
                for n, r in zip(output_names, results)
            ],
        }
        await reply(send, 200, orjson.dumps(body))

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(make_app(args.model, args.name), loop="uvloop", http="httptools",
                            log_level="warning", access_log=False, backlog=2048)
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
