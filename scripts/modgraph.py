#!/usr/bin/env python3
"""The import graph between a crate's source files, and its circles.

    python3 scripts/modgraph.py crates/levee-http [--dot] [--edges]

Each production source file (test files, `tests.rs` and `*/tests/*`, are
left out) is one node, named by its module path (`proxy/attempt`). An edge
A -> B means file A names an item of module B: a `use crate::...`,
`use super::...` or `use child::...` path, or such a path written inline.
`mod x;` declarations are not edges. A path is resolved to the deepest
module that has a file of its own, so `crate::proxy::headers::Forwarding`
is an edge to `proxy/headers`, and `crate::conn::Client` one to `conn`.

Prints the number of files and edges, then every strongly connected
component with more than one file (a circle of imports), largest first.
No dependencies beyond Python 3; it reads source text, it does not run
the compiler, so macros that expand to paths are not seen.
"""

import argparse
import os
import re
import sys


def modules(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel == ["lib"] or rel == ["main"]:
                parts = ()
            elif rel[-1] == "mod":
                parts = tuple(rel[:-1])
            else:
                parts = tuple(rel)
            found[parts] = path
    return found


def is_test(parts):
    return "tests" in parts


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def without_test_modules(text):
    """Drops `#[cfg(test)] mod name { ... }` blocks."""
    out = []
    i = 0
    pattern = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = pattern.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.start()])
        depth = 0
        j = m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        i = j + 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree]
    prefix = tree[:brace]
    inner = tree[brace + 1 : tree.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for p in parts:
        if p:
            out.extend(prefix + q for q in expand_use(p))
    return out


def resolve(path, here, mods):
    """The module (tuple) a path names from module `here`, or None."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] == "super":
        base = here
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    elif segs[0] == "self":
        base, segs = here, segs[1:]
    elif here + (segs[0],) in mods:
        base = here
    else:
        return None
    best = base
    cur = base
    for s in segs:
        s = re.sub(r"\s+as\s+\w+$", "", s).split(" as ")[0]
        cur = cur + (s,)
        if cur in mods:
            best = cur
        else:
            break
    return best


def edges_of(parts, path, mods):
    text = without_test_modules(strip_comments(open(path, encoding="utf-8").read()))
    found = set()
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        for p in expand_use(m.group(1)):
            target = resolve(p, parts, mods)
            if target is not None:
                found.add(target)
    for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)+)", text):
        target = resolve(m.group(1), parts, mods)
        if target is not None:
            found.add(target)
    for m in re.finditer(r"(?<![:\w])(\w+)::\w", text):
        if parts + (m.group(1),) in mods:
            found.add(parts + (m.group(1),))
    found.discard(parts)
    return {t for t in found if not is_test(t)}


def sccs(nodes, graph):
    """Tarjan's algorithm, iteratively."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
    return out


def name(parts):
    return "/".join(parts) or "lib"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("crate", help="a crate directory (its src/ is read)")
    ap.add_argument("--dot", action="store_true", help="print the graph in Graphviz dot")
    ap.add_argument("--edges", action="store_true", help="list every edge")
    args = ap.parse_args()
    mods = modules(os.path.join(args.crate, "src"))
    nodes = sorted(p for p in mods if not is_test(p))
    graph = {p: edges_of(p, mods[p], mods) for p in nodes}
    if args.dot:
        print("digraph modules {")
        for a in nodes:
            for b in sorted(graph[a]):
                print(f'  "{name(a)}" -> "{name(b)}";')
        print("}")
        return
    total = sum(len(e) for e in graph.values())
    print(f"{len(nodes)} files, {total} import edges")
    if args.edges:
        for a in nodes:
            print(f"  {name(a)} -> {', '.join(name(b) for b in sorted(graph[a]))}")
    circles = sorted((c for c in sccs(nodes, graph) if len(c) > 1), key=len, reverse=True)
    if not circles:
        print("no circle")
    for c in circles:
        print(f"circle of {len(c)}: {' '.join(sorted(name(p) for p in c))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
