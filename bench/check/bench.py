#!/usr/bin/env python3
"""Benchmark `mlctl check` against PyPI `kubernetes-validate` on the same documents.

The input is the upstream corpus of the tests (crates/mlctl-k8s/tests/corpus, 181 documents
in 143 parseable files) copied as many times as needed to reach --min-docs documents, as
separate files in one directory: one `mlctl check DIR` invocation, all rules on (schemas of
built-in kinds and CRDs, API-server checks, ML rules, cross-document references).

The peer, kubernetes-validate (schema-only, built-in kinds only), runs in this process on the
same stream of documents, YAML parsing included (PyYAML's C loader when available, as mlctl's
time includes its parsing). kubernetes-validate loads its schema files on every call, so its
rate does not depend on how many documents it sees: it is measured on the first --peer-docs
documents of the stream to keep the run short (the count is printed).

Prints the median of --runs runs for each tool, documents per second (wall clock, and per CPU
second: the rate one core sustains, which a busy shared machine does not distort), the ratios, and the goals of issue 7: >= 3x kubeconform's
published ~1,900 resources/s/core with all rules on, and >= 50x kubernetes-validate.

Usage: python3 bench/check/bench.py [--mlctl target/release/mlctl] [--runs 5]
Requires: pip install kubernetes-validate pyyaml; cargo build --release -p mlctl
"""

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
KUBECONFORM_PER_CORE = 1900  # kubeconform README: ~1,900 resources/s per core
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def corpus_files(corpus):
    out = []
    for root, dirs, files in os.walk(corpus):
        dirs[:] = sorted(d for d in dirs if d != "_unparseable")
        for f in sorted(files):
            if f.endswith((".yaml", ".yml")):
                out.append(os.path.join(root, f))
    return out


def count_docs(path):
    with open(path) as f:
        return sum(1 for d in yaml.load_all(f, Loader=Loader) if d)


def build_input(corpus, min_docs, dest):
    files = corpus_files(corpus)
    per_copy = sum(count_docs(f) for f in files)
    copies = math.ceil(min_docs / per_copy)
    for i in range(copies):
        for f in files:
            rel = os.path.relpath(f, corpus)
            target = os.path.join(dest, f"copy{i:03d}", rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(f, target)
    return files, copies, per_copy * copies


def time_mlctl(mlctl, directory, runs, version):
    walls, cpus, report = [], [], None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            [mlctl, "check", directory, "-o", "json", "--kube-version", version],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if proc.returncode not in (0, 1):
            sys.exit(f"mlctl check exited {proc.returncode}")
        report = json.loads(proc.stdout)
    return statistics.median(walls), statistics.median(cpus), report


def peer_stream(files, copies, limit):
    texts = []
    for _ in range(copies):
        for f in files:
            with open(f) as fh:
                texts.append(fh.read())
    # stop once `limit` documents are covered
    out, n = [], 0
    for t in texts:
        out.append(t)
        n += sum(1 for _ in yaml.load_all(t, Loader=Loader))
        if n >= limit:
            break
    return out


def time_peer(texts, runs, version):
    import kubernetes_validate as kv

    walls, cpus, docs, outcome = [], [], 0, {}
    for _ in range(runs):
        outcome = {"valid": 0, "invalid": 0, "no schema": 0}
        docs = 0
        start = time.perf_counter()
        cpu_start = time.process_time()
        for text in texts:
            for doc in yaml.load_all(text, Loader=Loader):
                if not doc:
                    continue
                docs += 1
                try:
                    kv.validate(doc, version, strict=True)
                    outcome["valid"] += 1
                except kv.SchemaNotFoundError:
                    outcome["no schema"] += 1
                except kv.ValidationError:
                    outcome["invalid"] += 1
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    return statistics.median(walls), statistics.median(cpus), docs, outcome


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mlctl", default=os.path.join(REPO, "target/release/mlctl"))
    ap.add_argument("--corpus", default=os.path.join(REPO, "crates/mlctl-k8s/tests/corpus"))
    ap.add_argument("--min-docs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-runs", type=int, default=3)
    ap.add_argument("--peer-docs", type=int, default=1_000)
    ap.add_argument("--kube-version", default="1.33")
    args = ap.parse_args()
    if not os.access(args.mlctl, os.X_OK):
        sys.exit(f"{args.mlctl} not found: cargo build --release -p mlctl")

    with tempfile.TemporaryDirectory(prefix="mlctl-bench-") as tmp:
        files, copies, total = build_input(args.corpus, args.min_docs, tmp)
        print(f"input: {total} documents ({len(files)} files x {copies} copies), Kubernetes {args.kube_version}")
        wall, cpu, report = time_mlctl(args.mlctl, tmp, args.runs, args.kube_version)
        assert report["documents"] == total, report["documents"]
        s = report["summary"]
        print(f"mlctl check: median {wall:.3f} s wall, {cpu:.3f} s CPU over {args.runs} runs; "
              f"{report['objects']} objects, {s['errors']} errors, {s['warnings']} warnings, {s['notes']} notes")
        texts = peer_stream(files, copies, args.peer_docs)
        pwall, pcpu, pdocs, outcome = time_peer(texts, args.peer_runs, args.kube_version)
        print(f"kubernetes-validate: median {pwall:.3f} s wall, {pcpu:.3f} s CPU over {args.peer_runs} runs of the first {pdocs} documents "
              f"({', '.join(f'{v} {k}' for k, v in outcome.items())})")

    rate = total / wall
    rate_core = total / cpu
    peer = pdocs / pwall
    peer_core = pdocs / pcpu
    print()
    print(f"{'tool':<22}{'docs/s (wall)':>15}{'docs/s/core':>14}")
    print(f"{'mlctl check':<22}{rate:>15,.0f}{rate_core:>14,.0f}")
    print(f"{'kubernetes-validate':<22}{peer:>15,.0f}{peer_core:>14,.0f}")
    print()
    # kubernetes-validate runs on one core; mlctl on all of them: both readings are printed
    verdict = lambda ratio: 'met' if ratio >= 50 else 'MISSED'
    print(f"ratio mlctl / kubernetes-validate: {rate / peer:,.0f}x wall (goal >= 50x: {verdict(rate / peer)}), "
          f"{rate_core / peer_core:,.0f}x per core (>= 50x: {verdict(rate_core / peer_core)})")
    print(f"mlctl per core / kubeconform's ~{KUBECONFORM_PER_CORE}/s/core: {rate_core / KUBECONFORM_PER_CORE:.1f}x   "
          f"(goal >= 3x: {'met' if rate_core >= 3 * KUBECONFORM_PER_CORE else 'MISSED'})")


if __name__ == "__main__":
    main()
