"""The benchmark's DAG as an mlctl Pipeline: LAYERS layers of STEPS/LAYERS no-op steps
(`run: ["true"]`); every step after the first layer needs two steps of the layer before it (the
one at its own index and the next one, wrapping). kfp_peer.py builds the same shape for kfp.

    python3 dag.py STEPS LAYERS [PARALLELISM] > pipeline.yaml
"""

import sys


def step_name(layer: int, index: int) -> str:
    """The name of step `index` of layer `layer`."""
    return f"l{layer:02d}-s{index:04d}"


def needs(layer: int, index: int, width: int) -> list[str]:
    """The steps that step `index` of layer `layer` needs."""
    if layer == 0:
        return []
    names = [step_name(layer - 1, index), step_name(layer - 1, (index + 1) % width)]
    return sorted(set(names))


def mlctl_pipeline(steps: int, layers: int, parallelism: int | None = None) -> str:
    """The mlctl Pipeline document of the shape."""
    if steps % layers != 0:
        raise ValueError(f"{steps} steps do not split into {layers} layers")
    width = steps // layers
    out = [
        "apiVersion: mlctl.dev/v1alpha1",
        "kind: Pipeline",
        f"metadata: {{name: layered-{steps}}}",
        "spec:",
    ]
    if parallelism is not None:
        out.append(f"  parallelism: {parallelism}")
    out.append("  steps:")
    for layer in range(layers):
        for i in range(width):
            out.append(f"    {step_name(layer, i)}:")
            out.append('      run: ["true"]')
            if layer > 0:
                out.append(f"      needs: [{', '.join(needs(layer, i, width))}]")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    sys.stdout.write(mlctl_pipeline(*args))
