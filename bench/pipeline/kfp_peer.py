"""The peer of bench/pipeline/run.sh: one run of a layered DAG of no-op steps through Kubeflow
Pipelines' local SubprocessRunner (kfp.local), in this process.

    python kfp_peer.py STEPS LAYERS WORKDIR RESULT_FILE

The shape is the one dag.py generates for mlctl: LAYERS layers of STEPS/LAYERS steps; every
step after the first layer needs two steps of the layer before it (the one at its own index and
the next one, wrapping). Dependencies are declared with `.after()`, since the steps pass no data.

A no-op step is a lightweight Python component whose body is `pass`: SubprocessRunner runs only
lightweight Python components (it refuses container components), so this is the smallest step it
can run. `install_kfp_package=False` keeps kfp from running `pip install kfp` in front of every
step (the installed kfp is used), and `use_venv=False` keeps it from building a virtualenv per
step: the cheapest configuration kfp local offers.

Writes one line to RESULT_FILE: `<seconds to define and run the pipeline> <tasks run>`.
The import of kfp itself is not timed. kfp's own log output goes to stdout/stderr.
"""

import os
import sys
import time


def main() -> None:
    steps, layers, workdir, result_file = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        sys.argv[4],
    )
    if steps % layers != 0:
        sys.exit(f"{steps} steps do not split into {layers} layers")
    width = steps // layers

    from kfp import dsl, local

    os.chdir(workdir)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=os.path.join(workdir, "outputs"),
        workspace_root=os.path.join(workdir, "workspace"),
    )

    start = time.perf_counter()

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def noop():
        pass

    @dsl.pipeline(name="layered")
    def layered():
        previous = []
        for layer in range(layers):
            current = []
            for i in range(width):
                task = noop()
                if previous:
                    task.after(previous[i], previous[(i + 1) % width])
                current.append(task)
            previous = current

    run = layered()
    elapsed = time.perf_counter() - start

    # every task leaves its executor output under pipeline_root/<run>/<task>/
    runs = os.listdir(os.path.join(workdir, "outputs"))
    if len(runs) != 1:
        sys.exit(f"expected one pipeline run under {workdir}/outputs, found {runs}")
    tasks = len(os.listdir(os.path.join(workdir, "outputs", runs[0])))
    if tasks != steps:
        sys.exit(f"kfp ran {tasks} tasks, expected {steps}")
    del run
    with open(result_file, "w") as f:
        f.write(f"{elapsed:.6f} {tasks}\n")


if __name__ == "__main__":
    main()
