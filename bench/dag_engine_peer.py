"""The peer of crates/mlctl-core/benches/dag_engine.rs: the same graphs through Python's
graphlib.TopologicalSorter (build, prepare, then get_ready/done until the graph is done).

Usage: dag_engine_peer.py SHAPE STEPS REPEATS; prints one line per repeat: nanoseconds.
"""
import graphlib
import sys
import time


def deps(shape, n, i):
    if shape == "chain":
        return [i - 1] if i > 0 else []
    if shape == "wide":
        if i == 0:
            return []
        if i == n - 1:
            return list(range(1, n - 1))
        return [0]
    layer, pos = divmod(i, 100)
    if layer == 0:
        return []
    d = [(layer - 1) * 100 + (pos * 7 + k * 13) % 100 for k in range(3)]
    out = []
    for x in d:  # consecutive duplicates removed, as Vec::dedup does
        if not out or out[-1] != x:
            out.append(x)
    return out


def once(n, names, edges):
    start = time.perf_counter_ns()
    sorter = graphlib.TopologicalSorter()
    for i in range(n):
        sorter.add(names[i], *(names[d] for d in edges[i]))
    sorter.prepare()
    started = 0
    while sorter.is_active():
        ready = sorter.get_ready()
        started += len(ready)
        sorter.done(*ready)
    elapsed = time.perf_counter_ns() - start
    assert started == n
    return elapsed


def main():
    shape, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    names = [f"step-{i}" for i in range(n)]
    edges = [deps(shape, n, i) for i in range(n)]
    for _ in range(repeats):
        print(once(n, names, edges))


main()
