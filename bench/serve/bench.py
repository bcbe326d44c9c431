#!/usr/bin/env python3
"""serve-model benchmark: `mlctl serve-model` (release build) against a Python server of the
same model with onnxruntime (ort_server.py), driven by the same load generator (wrk) in the
same run, at several concurrency levels. Prints throughput, p50 and p99 for both and the
ratios, and a Markdown table for BENCHMARKS.md.

    python3 bench/serve/bench.py [--rounds 5] [--duration 3] [--concurrency 1,8,32,64] [--no-build]
                                 [--busy-poll 0]

At each concurrency level both servers are measured in alternating order for several rounds, and
the medians over rounds are reported (throughput, p50, p99), which keeps a burst of load from
elsewhere on the machine from deciding the result.

Needs: wrk (Debian: apt-get install wrk), taskset (util-linux), and the Python packages in
bench/serve/requirements.txt. By default each server is pinned to CPU 0 and wrk to CPU 1
(`--server-cpus`, `--load-cpus`), so both servers get the same single core and the load
generator never competes with them; onnxruntime and tract both run one thread.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MAKE_MODELS = ROOT / "crates/mlctl-serve/tests/fixtures/make_models.py"


def fail(message: str) -> None:
    sys.exit(f"error: {message}")


NICE = 0


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    if NICE:
        argv = ["nice", "-n", str(NICE)] + argv
    return argv


def start(argv: list[str], cpus: str | None, log: Path) -> tuple[subprocess.Popen, str]:
    """Starts a server that prints `listening on http://HOST:PORT` on stderr; returns it and
    the base URL once it prints that line."""
    argv = pinned(argv, cpus)
    err = open(log, "w+")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        err.seek(0)
        for line in err.read().splitlines():
            if line.startswith("listening on "):
                return proc, line.removeprefix("listening on ").strip()
        if proc.poll() is not None:
            err.seek(0)
            fail(f"{argv[0]} exited: {err.read()}")
        time.sleep(0.05)
    proc.kill()
    fail(f"{' '.join(argv)} printed no 'listening on' line")


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    fail(f"{url} never answered 200")


def infer(url: str, body: bytes) -> list[float]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["outputs"][0]["data"]


def wrk(url: str, body_file: Path, connections: int, seconds: int, cpus: str | None) -> dict:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(HERE / "post.lua"), url]
    argv = pinned(argv, cpus)
    out = subprocess.run(argv, capture_output=True, text=True,
                         env=dict(os.environ, WRK_BODY=str(body_file)), check=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="measurements per server and level")
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measurement")
    parser.add_argument("--concurrency", default="1,8,32,64", help="open connections, comma separated")
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list for the servers ('' = no pinning)")
    parser.add_argument("--load-cpus", default="1", help="taskset CPU list for wrk ('' = no pinning)")
    parser.add_argument("--nice", type=int, default=0,
                        help="run both servers and wrk at this nice level (e.g. -10 on a machine busy with other work)")
    parser.add_argument("--no-build", action="store_true", help="use target/release/mlctl as it is")
    parser.add_argument("--busy-poll", help="pass --busy-poll to serve-model (e.g. 0 to measure it off; default: its own default)")
    args = parser.parse_args()
    global NICE
    NICE = args.nice
    for tool in ["wrk"] + (["taskset"] if args.server_cpus or args.load_cpus else []):
        if shutil.which(tool) is None:
            fail(f"{tool} is not installed (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})")
    try:
        import onnxruntime, uvicorn, orjson, uvloop, httptools  # noqa: F401
    except ImportError as e:
        fail(f"{e}; pip install -r {HERE / 'requirements.txt'}")

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "mlctl", "--locked"], cwd=ROOT, check=True)
    mlctl = ROOT / "target/release/mlctl"

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    subprocess.run([sys.executable, str(MAKE_MODELS), str(work)], check=True)
    model = work / "mlp.onnx"
    row = [round(0.1 * i - 0.8, 2) for i in range(16)]
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 16], "datatype": "FP32", "data": row}]}).encode()
    body_file = work / "body.json"
    body_file.write_bytes(body)

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    servers = {}
    try:
        busy_poll = ["--busy-poll", args.busy_poll] if args.busy_poll is not None else []
        proc, base = start([str(mlctl), "serve-model", "--model", str(model), "--name", "mlp", "--port", "0"] + busy_poll,
                           args.server_cpus, work / "mlctl.log")
        servers["mlctl serve-model"] = (proc, base)
        proc, base = start([sys.executable, str(HERE / "ort_server.py"), "--model", str(model), "--name", "mlp", "--port", "0"],
                           args.server_cpus, work / "ort.log")
        servers["python onnxruntime"] = (proc, base)
        wait_ready(servers["mlctl serve-model"][1] + "/v2/health/ready")
        outputs = {}
        for label, (_, base) in servers.items():
            deadline = time.monotonic() + 60
            while True:
                try:
                    outputs[label] = infer(base + "/v2/models/mlp/infer", body)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        a, b = outputs.values()
        if any(abs(x - y) > 1e-5 for x, y in zip(a, b)) or len(a) != len(b):
            fail(f"the servers disagree: {outputs}")

        levels = [int(c) for c in args.concurrency.split(",")]
        results = {}
        for c in levels:
            runs = {label: [] for label in servers}
            for label, (_, base) in servers.items():
                if args.warmup:
                    wrk(base + "/v2/models/mlp/infer", body_file, c, args.warmup, args.load_cpus or None)
            for round_ in range(args.rounds):
                order = list(servers.items())
                if round_ % 2:
                    order.reverse()
                for label, (_, base) in order:
                    r = wrk(base + "/v2/models/mlp/infer", body_file, c, args.duration, args.load_cpus or None)
                    if r["socket_errors"] or r["non2xx_status"]:
                        fail(f"{label} at {c} connections: {r}")
                    runs[label].append(r)
            for label, rs in runs.items():
                m = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_us", "p99_us")}
                results[(label, c)] = m
                print(f"  {label:<20} c={c:<4} {m['rps']:>9.0f} req/s  p50 {m['p50_us'] / 1000:6.2f} ms"
                      f"  p99 {m['p99_us'] / 1000:6.2f} ms   (medians of {len(rs)};"
                      f" req/s {min(r['rps'] for r in rs):.0f}..{max(r['rps'] for r in rs):.0f})", flush=True)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    ours, peer = servers.keys()
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or platform.platform()}); "
          f"servers on CPU {args.server_cpus or 'any'}, wrk on CPU {args.load_cpus or 'any'}; "
          f"medians of {args.rounds} runs of {args.duration}s per server and level, alternating, after "
          f"{args.warmup}s warm-up; nice {args.nice}; serve-model --busy-poll {args.busy_poll or 'default'}; load average before: {load_before}; body {len(body)} bytes (1x16 FP32, JSON)")
    print()
    print("| connections | mlctl req/s | python req/s | throughput ratio | mlctl p50 | python p50 | mlctl p99 | python p99 | p99 ratio (python/mlctl) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in levels:
        m, p = results[(ours, c)], results[(peer, c)]
        print(f"| {c} | {m['rps']:,.0f} | {p['rps']:,.0f} | {m['rps'] / p['rps']:.2f}x "
              f"| {m['p50_us'] / 1000:.2f} ms | {p['p50_us'] / 1000:.2f} ms "
              f"| {m['p99_us'] / 1000:.2f} ms | {p['p99_us'] / 1000:.2f} ms | {p['p99_us'] / max(m['p99_us'], 1):.2f}x |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
