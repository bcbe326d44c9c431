#!/usr/bin/env python3
"""Generate the strict JSON Schemas that `mlctl check` embeds.

Reads the upstream schemas copied into the project's shared folder (Kubernetes OpenAPI v2
`swagger.json` for 1.33 and 1.36, and upstream CustomResourceDefinitions) and writes three
minified bundles next to this script, in `gen/`:

  k8s-v1.33.json, k8s-v1.36.json   every built-in kind of that Kubernetes release
  crds.json                        the CRDs of the ML/data ecosystem (Argo, Kubeflow, KServe,
                                   Seldon, Spark, Dask, Prometheus operator, VPA, Kueue, ...)

Each bundle is `{"kinds": {"<apiVersion>/<Kind>": {...}}, "$defs": {...}}`; a kind names the
definition that validates it. The conversion makes the schemas *strict* the way the API server
is strict, and no stricter:

- `additionalProperties: false` wherever the upstream schema lists `properties` (unless the
  schema preserves unknown fields), so `imagee:` is an error;
- built-in IntOrString accepts integers and strings, built-in Quantity strings and numbers
  (the API server decodes `cpu: 0.5` in a Pod); CRD `x-kubernetes-int-or-string` accepts
  integers and strings only (the API server rejects `cpu: 0.5` in a custom resource);
- `x-kubernetes-preserve-unknown-fields` leaves a subtree open, `x-kubernetes-embedded-resource`
  allows `apiVersion`, `kind` and `metadata`;
- a required field that has a default is not required (defaulting runs before validation),
  and `status` is never required (controllers write it);
- `status` is not validated (controllers write it; the API server ignores it on create);
- descriptions, formats, examples, CEL rules and list/patch markers are dropped;
- identical subtrees are stored once in `$defs`, so the bundles stay small.

Usage: python3 generate.py [SHARED_SCHEMAS_DIR]   (default: ../../../../shared/schemas)
"""

import hashlib
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "gen")
MIN_SHARED = 200  # subtrees at least this long (minified JSON) are stored once

CRDS = [
    "argo-workflows/argoproj.io_workflows.yaml",
    "argo-workflows/argoproj.io_workflowtemplates.yaml",
    "argo-workflows/argoproj.io_clusterworkflowtemplates.yaml",
    "argo-workflows/argoproj.io_cronworkflows.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_pytorchjobs.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_tfjobs.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_mpijobs.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_xgboostjobs.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_paddlejobs.yaml",
    "kubeflow-training-operator-v1/kubeflow.org_jaxjobs.yaml",
    "kubeflow-trainer-v2/trainer.kubeflow.org_trainjobs.yaml",
    "kubeflow-trainer-v2/trainer.kubeflow.org_trainingruntimes.yaml",
    "kubeflow-trainer-v2/trainer.kubeflow.org_clustertrainingruntimes.yaml",
    "kubeflow-pipelines/scheduled-workflow-crd.yaml",
    "kserve/serving.kserve.io_inferenceservices.yaml",
    "kserve/serving.kserve.io_inferencegraphs.yaml",
    "kserve/serving.kserve.io_servingruntimes.yaml",
    "kserve/serving.kserve.io_clusterservingruntimes.yaml",
    "kserve/serving.kserve.io_trainedmodels.yaml",
    "seldon-core-v1/machinelearning.seldon.io_seldondeployments.yaml",
    "spark-operator/sparkoperator.k8s.io_sparkapplications.yaml",
    "spark-operator/sparkoperator.k8s.io_scheduledsparkapplications.yaml",
    "dask-kubernetes/daskcluster.yaml",
    "dask-kubernetes/daskworkergroup.yaml",
    "dask-kubernetes/daskjob.yaml",
    "dask-kubernetes/daskautoscaler.yaml",
    "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml",
    "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
    "vertical-pod-autoscaler/vpa-v1-crd-gen.yaml",
    "kueue/kueue.x-k8s.io_clusterqueues.yaml",
    "kueue/kueue.x-k8s.io_localqueues.yaml",
    "kueue/kueue.x-k8s.io_resourceflavors.yaml",
    "kueue/kueue.x-k8s.io_cohorts.yaml",
    "kueue/kueue.x-k8s.io_workloads.yaml",
    "kueue/kueue.x-k8s.io_workloadpriorityclasses.yaml",
    "kueue/kueue.x-k8s.io_admissionchecks.yaml",
    "kueue/kueue.x-k8s.io_topologies.yaml",
    "nvidia-gpu-operator/nvidia.com_clusterpolicies.yaml",
    "nvidia-gpu-operator/nvidia.com_nvidiadrivers.yaml",
    "nvidia-gpu-operator/nvidia.com_gpuclusters.yaml",
]
# datree's JSON Schemas, for versions no upstream CRD here serves.
DATREE = [
    ("kubeflow.org/mpijob_v2beta1.json", "kubeflow.org/v2beta1", "MPIJob"),
]

INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
DROP = {
    "description", "format", "example", "title", "externalDocs", "nullable", "readOnly",
    "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
    "x-kubernetes-group-version-kind", "x-kubernetes-unions", "x-kubernetes-selectable-fields",
}


def ref_name(ref):
    return ref.rsplit("/", 1)[-1]


def convert(node, strict=True):
    """OpenAPI (v2 definitions or v3 structural schema) to a strict JSON Schema 2020-12."""
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        return {"$ref": "#/$defs/" + ref_name(node["$ref"])}
    if node.get("x-kubernetes-int-or-string"):
        out = {"type": ["integer", "string"]}
        if "pattern" in node:
            out["pattern"] = node["pattern"]
        return out
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(node.get("x-kubernetes-embedded-resource"))
    out = {}
    for key, value in node.items():
        if key in DROP or key.startswith("x-kubernetes-") or key == "default":
            continue
        if key == "properties":
            out[key] = {k: convert(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = convert(value, strict) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            # value validations: they constrain, they never add fields
            out[key] = [convert(v, strict=False) for v in value]
        elif key == "required":
            props = node.get("properties", {})
            kept = [r for r in value if r != "status" and "default" not in props.get(r, {})]
            if kept:
                out[key] = kept
        else:
            out[key] = value
    if embedded:
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if strict and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def k8s_bundle(swagger_path, label):
    with open(swagger_path) as f:
        swagger = json.load(f)
    defs = {}
    for name, d in swagger["definitions"].items():
        if name == INT_OR_STRING:
            defs[name] = {"type": ["integer", "string"]}
        elif name == QUANTITY:
            defs[name] = {"type": ["string", "number"]}
        elif name == "io.k8s.apimachinery.pkg.runtime.RawExtension":
            defs[name] = {}
        else:
            defs[name] = convert(d)
    kinds = {}
    for name, d in swagger["definitions"].items():
        gvks = d.get("x-kubernetes-group-version-kind") or []
        if len(gvks) != 1 or ".meta.v1." in name:
            continue
        g = gvks[0]
        api = f"{g['group']}/{g['version']}" if g["group"] else g["version"]
        kinds[f"{api}/{g['kind']}"] = {"ref": name, "source": f"Kubernetes {label}"}
        if "status" in defs[name].get("properties", {}):
            defs[name]["properties"]["status"] = {}  # written by controllers, not by users
    return kinds, defs, swagger["definitions"]


def crd_bundle(shared, swagger_defs):
    defs = {}
    kinds = {}
    # CRD schemas leave metadata open; the API server validates it as ObjectMeta.
    meta_names = reachable({OBJECT_META}, swagger_defs)
    for name in meta_names:
        defs[name] = convert(swagger_defs[name])
    for rel in CRDS:
        with open(os.path.join(shared, "crds", rel)) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        project = rel.split("/")[0]
        for crd in docs:
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            storage = next((v["name"] for v in spec["versions"] if v.get("storage")), None)
            for v in spec["versions"]:
                key = f"{group}/{v['name']}/{kind}"
                if not v.get("served", True):
                    kinds[key] = {"removed": f"{group}/{storage}", "source": project}
                    continue
                schema = (v.get("schema") or {}).get("openAPIV3Schema") or {}
                root = convert(schema)
                props = root.setdefault("properties", {})
                props["apiVersion"] = {"type": "string"}
                props["kind"] = {"type": "string"}
                props["metadata"] = {"$ref": "#/$defs/" + OBJECT_META}
                if "status" in props:
                    props["status"] = {}  # written by the controller, not by users
                if "additionalProperties" not in root and not schema.get(
                    "x-kubernetes-preserve-unknown-fields"
                ):
                    root["additionalProperties"] = False
                name = "crd." + key.replace("/", ".")
                defs[name] = root
                entry = {"ref": name, "source": project}
                if v.get("deprecated"):
                    entry["deprecated"] = v.get("deprecationWarning") or f"{key} is deprecated"
                    entry["replacement"] = f"{group}/{storage}"
                kinds[key] = entry
    for rel, api, kind in DATREE:
        with open(os.path.join(shared, "datree-crd-jsonschema", rel)) as f:
            schema = json.load(f)
        schema.pop("$schema", None)
        root = convert(schema)
        root.setdefault("properties", {})["metadata"] = {"$ref": "#/$defs/" + OBJECT_META}
        name = f"crd.{api}.{kind}".replace("/", ".")
        defs[name] = root
        kinds[f"{api}/{kind}"] = {"ref": name, "source": "datree CRDs-catalog"}
    return kinds, defs


def reachable(roots, defs):
    seen = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        walk_refs(defs[name], stack)
    return seen


def walk_refs(node, out):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.append(ref_name(node["$ref"]))
        for v in node.values():
            walk_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            walk_refs(v, out)


def canon(node):
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def share(defs):
    """Stores identical subtrees once: large repeated objects become `$ref`s into `$defs`."""
    table = {}

    def intern(node, top=False):
        if isinstance(node, dict):
            node = {k: (intern_map(v) if k == "properties" else intern(v)) for k, v in node.items()}
        elif isinstance(node, list):
            return [intern(v) for v in node]
        else:
            return node
        if top:
            return node
        text = canon(node)
        if len(text) < MIN_SHARED:
            return node
        key = "s" + hashlib.sha1(text.encode()).hexdigest()[:12]
        table[key] = node
        return {"$ref": "#/$defs/" + key}

    def intern_map(props):
        return {k: intern(v) for k, v in props.items()}

    out = {name: intern(d, top=True) for name, d in defs.items()}
    # count references from everything that is kept; inline the ones used once
    counts = {}

    def count(node):
        if isinstance(node, dict):
            r = node.get("$ref")
            if isinstance(r, str) and ref_name(r) in table:
                counts[ref_name(r)] = counts.get(ref_name(r), 0) + 1
            for v in node.values():
                count(v)
        elif isinstance(node, list):
            for v in node:
                count(v)

    for d in out.values():
        count(d)
    for d in table.values():
        count(d)

    def inline(node):
        if isinstance(node, dict):
            r = node.get("$ref")
            if isinstance(r, str) and len(node) == 1 and counts.get(ref_name(r)) == 1:
                return inline(table[ref_name(r)])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    result = {name: inline(d) for name, d in out.items()}
    for key, d in table.items():
        if counts.get(key, 0) > 1:
            result[key] = inline(d)
    # drop shared entries that inlining made unreachable
    keep = reachable(set(out), result)
    return {k: v for k, v in result.items() if k in keep}


def write(name, kinds, defs):
    roots = {k["ref"] for k in kinds.values() if "ref" in k}
    defs = {k: v for k, v in defs.items() if k in reachable(roots, defs)}
    defs = share(defs)
    bundle = {"kinds": dict(sorted(kinds.items())), "$defs": dict(sorted(defs.items()))}
    text = json.dumps(bundle, separators=(",", ":"), sort_keys=False)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        f.write(text)
    print(f"{name}: {len(kinds)} kinds, {len(defs)} definitions, {len(text) / 1024:.0f} KiB")


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../../shared/schemas")
    os.makedirs(OUT, exist_ok=True)
    all_kinds = {}
    swagger_136 = None
    for label in ("v1.33", "v1.36"):
        kinds, defs, raw = k8s_bundle(os.path.join(shared, "kubernetes", label, "swagger.json"), label)
        all_kinds[label] = set(kinds)
        write(f"k8s-{label}.json", kinds, defs)
        swagger_136 = raw
    gone = sorted(all_kinds["v1.33"] - all_kinds["v1.36"])
    if gone:
        print("kinds served by 1.33 but not 1.36:", ", ".join(gone))
    kinds, defs = crd_bundle(shared, swagger_136)
    write("crds.json", kinds, defs)


if __name__ == "__main__":
    main()
