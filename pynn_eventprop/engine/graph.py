"""Order populations for simulation: strongly connected components in topological order."""

from __future__ import annotations


def simulation_order(n_nodes: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Strongly connected components of a directed graph, sources before targets.

    Parameters
    ----------
    n_nodes : int
    edges : list of (pre, post)

    Returns
    -------
    list of components (lists of node indices); every edge goes from an earlier component to a
    later one or stays inside one component.  Tarjan's algorithm, iterative.
    """
    succ = [[] for _ in range(n_nodes)]
    for pre, post in edges:
        succ[pre].append(post)
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for root in range(n_nodes):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child_pos = work.pop()
            if child_pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for pos in range(child_pos, len(succ[node])):
                nxt = succ[node][pos]
                if nxt not in index:
                    work.append((node, pos + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                comps.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    comps.reverse()  # Tarjan emits sinks first
    return comps


def is_recurrent(component: list[int], edges: list[tuple[int, int]]) -> bool:
    """True if the component has a cycle (more than one node, or a self-loop)."""
    if len(component) > 1:
        return True
    (node,) = component
    return (node, node) in edges
