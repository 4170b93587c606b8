#!/usr/bin/env python3
"""Fails when a crate's modules import each other in a circle.

Sightline keeps every crate a one-way stack: a module may use the modules below it, never the
ones above. This is the check the test command runs for every library crate (`crates/*/src`,
binaries under `src/bin` left out): it reads each module file, collects the modules it refers to
(`use crate::a::B`, `use crate::{a, b::C}`, `crate::a::f()` paths, `super::a`, `self::a`), builds
the graph of modules and prints every strongly connected set of more than one module, then exits
1 if there is any. Unit-test modules (`#[cfg(test)] mod tests { ... }`) are left out: a test
module using its parent is not a circle.

It is a text scan, not a compiler: a path inside a string or a comment counts too, which errs on
the side of reporting. `cargo modules dependencies --acyclic` would do the same from the compiler's
view, at the price of building rust-analyzer in CI.

    python3 scripts/module_circles.py [ROOT]
"""
import glob
import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src):
    """Removes comments and the unit-test module."""
    src = re.sub(r"//[^\n]*", "", src)
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    # `#[cfg(test)] mod tests {` to the end of the file: unit tests sit at the end by convention.
    return re.sub(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{.*", "", src, flags=re.S)


def use_paths(tree, prefix=()):
    """Expands a use tree (`a::{b, c::D}`) into paths."""
    tree = tree.strip()
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
    if start is None:
        head = tuple(s for s in tree.split(" as ")[0].split("::") if s)
        return [prefix + head]
    head = tuple(s for s in tree[:start].split("::") if s)
    inner, parts, depth, cur = tree[start + 1 : tree.rfind("}")], [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip() in ("self", ""):
            out.append(prefix + head)
        else:
            out.extend(use_paths(p, prefix + head))
    return out


def module_of(crate_src, path):
    rel = os.path.relpath(path, crate_src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def resolve(segs, here, modules):
    """The deepest known module a path names, from the module `here`."""
    segs = list(segs)
    if not segs:
        return None
    if segs[0] == "crate":
        base, segs = (), segs[1:]
    elif segs[0] == "self":
        base, segs = here, segs[1:]
    elif segs[0] == "super":
        base = here
        while segs and segs[0] == "super":
            base, segs = base[:-1], segs[1:]
    else:
        return None
    for k in range(len(segs), -1, -1):
        t = base + tuple(segs[:k])
        if t in modules:
            return t
    return None


def circles_in(crate_src):
    files = [
        f
        for f in glob.glob(os.path.join(crate_src, "**", "*.rs"), recursive=True)
        if f"{os.sep}bin{os.sep}" not in f
    ]
    modules = {module_of(crate_src, f): f for f in files}
    edges = defaultdict(set)
    for here, f in modules.items():
        with open(f, encoding="utf-8", errors="replace") as fh:
            src = strip(fh.read())
        paths = []
        for tree in re.findall(r"\buse\s+((?:crate|self|super)\b[^;]*);", src, flags=re.S):
            paths.extend(use_paths(tree))
        for p in re.findall(rf"\b((?:crate|super|self)(?:::{IDENT})+)", src):
            paths.append(tuple(p.split("::")))
        for p in paths:
            t = resolve(p, here, modules)
            # A module's own children and ancestors are its structure, not an import.
            if t is None or t == here or t[: len(here)] == here or here[: len(t)] == t:
                continue
            edges[here].add(t)
    index, low, stack, on, found, n = {}, {}, [], set(), [], [0]

    def connect(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            connect(v)
    return [sorted("::".join(m) for m in comp) for comp in found], edges


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    crates = sorted(glob.glob(os.path.join(root, "crates", "*", "src")))
    bad = 0
    for crate_src in crates:
        name = os.path.basename(os.path.dirname(crate_src))
        circles, edges = circles_in(crate_src)
        for comp in circles:
            bad += 1
            members = set(tuple(c.split("::")) for c in comp)
            arrows = sorted(
                f"{'::'.join(a)} -> {'::'.join(b)}"
                for a in members
                for b in edges[a]
                if b in members
            )
            print(f"{name}: modules in a circle: {', '.join(comp)}")
            for a in arrows:
                print(f"    {a}")
    print(f"module circles: {bad} in {len(crates)} crates")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
