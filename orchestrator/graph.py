"""Dependency graphs of artifacts: cycles, closure, and a stable topological order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """One dependency cycle (``a, b`` for a -> b -> a), or None. Unknown nodes are ignored."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in edges:
        if state.get(start):
            continue
        path: list[str] = [start]
        iters = [iter(edges.get(start, ()))]
        state[start] = 1
        while iters:  # iterative DFS: a 5,000-repo manifest must not hit the recursion limit
            node = next(iters[-1], None)
            if node is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if node not in edges:
                continue
            if state.get(node) == 1:
                return tuple(path[path.index(node):])
            if not state.get(node):
                state[node] = 1
                path.append(node)
                iters.append(iter(edges[node]))
    return None


def closure(edges: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """``roots`` and everything they depend on, transitively."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return seen


def topological_order(edges: Mapping[str, Sequence[str]], nodes: Iterable[str]) -> tuple[str, ...]:
    """``nodes`` ordered so that dependencies come first; ties keep ``edges``' order.

    The graph must be acyclic (the manifest validator guarantees it).
    """
    wanted = set(nodes)
    rank = {name: i for i, name in enumerate(edges)}
    pending = {n: {d for d in edges.get(n, ()) if d in wanted} for n in wanted}
    dependents: dict[str, list[str]] = {n: [] for n in wanted}
    for node, deps in pending.items():
        for dep in deps:
            dependents[dep].append(node)
    ready = [(rank.get(n, len(rank)), n) for n, deps in pending.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for dependent in dependents[node]:
            pending[dependent].discard(node)
            if not pending[dependent]:
                heapq.heappush(ready, (rank.get(dependent, len(rank)), dependent))
    if len(order) != len(wanted):
        raise ValueError("dependency cycle among: " + ", ".join(sorted(wanted - set(order))))
    return tuple(order)
