"""Pipelines: mlctl vs Kubeflow Pipelines local (issue 4's benchmark). Run it through run.sh,
which builds the release mlctl first:

    bash bench/pipeline/run.sh [--repeats 7] [--kfp-repeats 3] [--sizes 200,1000]

The same DAG shape on both sides (dag.py): 10 layers of no-op steps, every step after the first
layer needs two steps of the layer before it.

- mlctl: `mlctl run -f pipeline.yaml` (steps `run: ["true"]`), a fresh MLCTL_HOME per run, the
  spec alone in its directory; timed from start to exit of the command (parsing, validation, the
  store, every step, the summary). The home is initialised before the clock starts (`mlctl get
  runs` creates its store), as kfp's `local.init()` is: a home's creation (the database, its WAL
  and five fsyncs) is paid once, at its first command, not at every run. Every run is checked:
  the run succeeded and every step did. Also timed with `parallelism: 1`, which runs one step at
  a time as kfp local does.
- kfp: kfp_peer.py in a throwaway virtualenv with the `kfp` package from PyPI,
  `kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False))`, no-op lightweight Python
  components; timed inside the Python process from defining the pipeline to its end (the
  interpreter's start and `import kfp` are not counted, which favours kfp; what they take is
  reported on its own, with the ratio that counting them would give).
- The floor: a shell loop spawning `true` N times, one after the other.

Reported: medians (and the range) over the repetitions, milliseconds per step, mlctl's
orchestration overhead per step — (wall time - critical path) / steps, the critical path being
10 `true` processes in a row, priced at the shell loop's cost per spawn — and the ratio
kfp / mlctl. kfp runs whose estimated time exceeds --kfp-max-seconds are not run: the kfp time
is then extrapolated from two smaller DAGs (a + b * steps), and the output says so.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dag

LAYERS = 10


@dataclass
class Samples:
    """Wall seconds (and CPU seconds of the process and its descendants) of repeated runs."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.wall)

    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    def range(self) -> str:
        return f"{min(self.wall):.2f}-{max(self.wall):.2f}"


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, float]:
    """Runs argv with its output in `out`; returns (wall seconds, CPU seconds); fails loudly."""
    cpu0 = children_cpu()
    start = time.perf_counter()
    with open(out, "wb") as f:
        done = subprocess.run(argv, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu0
    if done.returncode != 0:
        tail = out.read_text(errors="replace").splitlines()[-20:]
        sys.exit(f"{argv[0]} exited with {done.returncode}:\n" + "\n".join(tail))
    return wall, cpu


def mlctl_once(mlctl: str, spec: Path, steps: int, work: Path) -> tuple[float, float]:
    home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
    env = {**os.environ, "MLCTL_HOME": str(home)}
    env.pop("MLCTL_CPUS", None)
    subprocess.run([mlctl, "get", "runs"], env=env, check=True, capture_output=True)
    wall, cpu = timed([mlctl, "run", "-f", str(spec)], env, work / "mlctl.log")
    runs = json.loads(
        subprocess.run(
            [mlctl, "get", "runs", "-o", "json"], env=env, check=True, capture_output=True
        ).stdout
    )
    if len(runs) != 1 or runs[0]["phase"] != "Succeeded":
        sys.exit(f"expected one succeeded run, got {runs}")
    described = subprocess.run(
        [mlctl, "describe", "run", runs[0]["id"]],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    succeeded = len(re.findall(r"^  l\d+-s\d+: Succeeded ", described, re.MULTILINE))
    if succeeded != steps:
        sys.exit(f"{succeeded} of {steps} steps succeeded")
    # homes are removed with the work directory at the end, not here: on ext4 without a
    # journal, creating a file scans past every inode deleted in the last 30 seconds
    # (`recently_deleted`), so deleting a run's thousands of files would slow the next run
    return wall, cpu


def shell_loop_once(steps: int, work: Path) -> tuple[float, float]:
    true = shutil.which("true") or "/bin/true"
    script = f'i=0; while [ "$i" -lt {steps} ]; do {true}; i=$((i+1)); done'
    return timed(["sh", "-c", script], dict(os.environ), work / "loop.log")


def kfp_once(python: str, steps: int, work: Path, uncounted: list[float]) -> float:
    """kfp's seconds from defining the pipeline to its end; appends to `uncounted` what the
    rest of its process took (the interpreter's start, `import kfp`, `local.init()`, exit)."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"kfp-{steps}-", dir=work))
    result = run_dir / "result"
    # kfp's runner writes each task's component into a temporary directory of its own and
    # leaves it there: keep them in the work directory, which is removed at the end
    env = dict(os.environ, TMPDIR=str(run_dir))
    process, _ = timed(
        [python, str(HERE / "kfp_peer.py"), str(steps), str(LAYERS), str(run_dir), str(result)],
        env,
        work / "kfp.log",
    )
    seconds, tasks = result.read_text().split()
    if int(tasks) != steps:
        sys.exit(f"kfp ran {tasks} of {steps} tasks")
    uncounted.append(process - float(seconds))
    return float(seconds)


def kfp_venv(args: argparse.Namespace, work: Path) -> str:
    if args.kfp_venv:
        venv = Path(args.kfp_venv)
    else:
        venv = work / "kfp-venv"
        print(
            f"installing kfp=={args.kfp_version} from PyPI into a throwaway virtualenv ...",
            flush=True,
        )
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                f"kfp=={args.kfp_version}",
            ],
            check=True,
        )
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-c", "import kfp.local, kfp.dsl"], check=True)
    return python


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--mlctl", required=True, help="the mlctl executable (release build)")
    p.add_argument("--repeats", type=int, default=7, help="runs of each mlctl measurement")
    p.add_argument("--kfp-repeats", type=int, default=3, help="runs of each kfp measurement")
    p.add_argument("--sizes", default="200,1000", help="DAG sizes in steps (multiples of 10)")
    p.add_argument("--kfp-version", default="2.17.3")
    p.add_argument("--kfp-venv", help="reuse this virtualenv (with kfp) instead of a throwaway one")
    p.add_argument(
        "--kfp-max-seconds",
        type=float,
        default=1200,
        help="extrapolate a kfp size whose one run would take longer than this",
    )
    args = p.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    mlctl = str(Path(args.mlctl).resolve())

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        python = kfp_venv(args, work)
        kfp_version, py_version = subprocess.run(
            [
                python,
                "-c",
                "import kfp, platform; print(kfp.__version__, platform.python_version())",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        mlctl_version = subprocess.run(
            [mlctl, "version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        load_before = os.getloadavg()
        print(
            f"machine: {os.cpu_count()} cores ({cpu_model()}), load average {load_before[0]:.1f} at start"
        )
        print(
            f"mlctl: {mlctl_version.splitlines()[0] if mlctl_version else '?'}; kfp {kfp_version} on Python {py_version}"
        )
        print(
            f"DAG: {LAYERS} layers, every step after the first layer needs 2 steps of the layer before it"
        )
        print(
            f"repetitions: mlctl {args.repeats}, kfp {args.kfp_repeats}; medians reported",
            flush=True,
        )

        ours: dict[int, Samples] = {}
        serial: dict[int, Samples] = {}
        loop: dict[int, Samples] = {}
        kfp: dict[int, Samples] = {}
        extrapolated: dict[int, float] = {}
        uncounted: list[float] = []

        def measure_kfp(n: int) -> None:
            kfp[n] = Samples()
            for _ in range(args.kfp_repeats):
                kfp[n].wall.append(kfp_once(python, n, work, uncounted))
            print(f"kfp {n} steps: median {kfp[n].median():.1f} s ({kfp[n].range()})", flush=True)

        for n in sizes:
            # kfp on this size only if one run fits in --kfp-max-seconds, judged by the cost per
            # step measured on the smaller size before it
            run_kfp = True
            if kfp:
                last = max(kfp)
                estimate = kfp[last].median() / last * n
                if estimate > args.kfp_max_seconds:
                    run_kfp = False
                    extrapolated[n] = estimate
                    print(
                        f"kfp {n} steps: not run (estimated {estimate:.0f} s a run), extrapolated",
                        flush=True,
                    )
            if not run_kfp and len(kfp) < 2:
                measure_kfp(max(LAYERS, min(kfp) // 4 // LAYERS * LAYERS))
            spec_dir = work / f"spec-{n}"
            spec_dir.mkdir()
            (spec_dir / "pipeline.yaml").write_text(dag.mlctl_pipeline(n, LAYERS))
            serial_dir = work / f"spec-{n}-serial"
            serial_dir.mkdir()
            (serial_dir / "pipeline.yaml").write_text(dag.mlctl_pipeline(n, LAYERS, parallelism=1))
            ours[n], serial[n], loop[n] = Samples(), Samples(), Samples()
            if run_kfp:
                kfp[n] = Samples()
            # interleaved, so that a change of load hits every contestant alike
            for r in range(max(args.repeats, args.kfp_repeats if run_kfp else 0)):
                if r < args.repeats:
                    for samples, (wall, cpu) in (
                        (ours[n], mlctl_once(mlctl, spec_dir / "pipeline.yaml", n, work)),
                        (serial[n], mlctl_once(mlctl, serial_dir / "pipeline.yaml", n, work)),
                        (loop[n], shell_loop_once(n, work)),
                    ):
                        samples.wall.append(wall)
                        samples.cpu.append(cpu)
                if run_kfp and r < args.kfp_repeats:
                    kfp[n].wall.append(kfp_once(python, n, work, uncounted))
            print(
                f"mlctl {n} steps: median {ours[n].median():.3f} s ({ours[n].range()}); "
                f"parallelism 1: {serial[n].median():.3f} s ({serial[n].range()}); "
                f"shell loop: {loop[n].median():.3f} s",
                flush=True,
            )
            if run_kfp:
                print(
                    f"kfp {n} steps: median {kfp[n].median():.1f} s ({kfp[n].range()})", flush=True
                )

        if extrapolated:
            n0, n1 = min(kfp), max(kfp)
            b = (kfp[n1].median() - kfp[n0].median()) / (n1 - n0)
            a = kfp[n0].median() - b * n0
            for n in extrapolated:
                extrapolated[n] = a + b * n
            print(
                f"kfp fit from {n0} and {n1} steps: {a:.2f} s + {1000 * b:.1f} ms x steps",
                flush=True,
            )

        true_cost = {n: loop[n].median() / n for n in sizes}
        print()
        print(f"pipelines: mlctl vs kfp local (load average {os.getloadavg()[0]:.1f} at the end)")
        head = (
            f"{'steps':>6} {'mlctl s':>8} {'ms/step':>8} {'best ms/step':>13} {'overhead ms/step':>17} {'cpu ms/step':>12} "
            f"{'par=1 ms/step':>14} {'true loop ms/step':>18} {'kfp s':>8} {'kfp ms/step':>12} {'kfp/mlctl':>10} {'kfp/mlctl par=1':>16}"
        )
        print(head)
        # kfp's process outside its timer, and what the ratios would be counting it
        setup = statistics.median(uncounted)
        whole = []
        for n in sizes:
            wall = ours[n].median()
            overhead = (wall - LAYERS * true_cost[n]) / n
            if n in kfp:
                k, mark = kfp[n].median(), ""
            else:
                k, mark = extrapolated[n], "*"
            print(
                f"{n:>6} {wall:>8.3f} {1000 * wall / n:>8.2f} {1000 * min(ours[n].wall) / n:>13.2f} {1000 * overhead:>17.2f} "
                f"{1000 * ours[n].cpu_median() / n:>12.2f} {1000 * serial[n].median() / n:>14.2f} "
                f"{1000 * true_cost[n]:>18.2f} {k:>7.1f}{mark or ' '} {1000 * k / n:>11.1f}{mark or ' '} "
                f"{k / wall:>9.0f}x {k / serial[n].median():>15.0f}x"
            )
            whole.append(f"{k + setup:.1f} s / {wall:.3f} s = {(k + setup) / wall:.0f}x at {n} steps")
        extra = [n for n in sorted(kfp) if n not in sizes]
        for n in extra:
            print(
                f"{n:>6} {'':>8} {'':>8} {'':>13} {'':>17} {'':>12} {'':>14} {'':>18} {kfp[n].median():>8.1f} {1000 * kfp[n].median() / n:>12.1f}"
            )
        if extrapolated:
            print(
                "* extrapolated: kfp was not run on this size (estimated over --kfp-max-seconds); "
                "linear fit of the measured sizes"
            )
        print(
            "kfp's process outside its timer (the interpreter's start, `import kfp`, "
            f"`local.init()`, exit): {setup:.2f} s a run (median); counting it, as mlctl's start "
            f"and exit are counted, kfp / mlctl would be {', '.join(whole)}"
        )
        print(
            "overhead = (wall - 10 x one `true` spawn for the critical path) / steps; cpu = user+sys of "
            "mlctl and everything it started, per step; par=1 = the same DAG with `parallelism: 1`; "
            "kfp local runs one task at a time"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
