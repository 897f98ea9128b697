#!/usr/bin/env python3
"""Lists import cycles between the modules of each crate under crates/ (a module = a file or
folder under src/, the crate root left out since every module may use what it re-exports).
Exits 1 when there is a cycle. Run from the repository root: python3 tools/check/module_cycles.py
"""
import pathlib
import re
import sys

USE = re.compile(r"\b(?:crate|super)::([a-z_][a-z0-9_]*)")


def modules(src: pathlib.Path):
    """Maps each module path ('fast::kernels::gemm') to its file."""
    out = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            continue
        out["::".join(parts)] = f
    return out


def edges(mods):
    """Module -> modules it names through crate:: or super:: paths (resolved to known ones)."""
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        text = f.read_text()
        parent = m.split("::")[:-1] if not f.name == "mod.rs" else m.split("::")[:-1]
        for line in text.splitlines():
            if line.strip().startswith("//"):
                continue
            for match in re.finditer(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)", line):
                base = [] if match.group(1) == "crate" else parent
                path = base + match.group(2).strip(":").split("::")
                # the longest known module prefix of the path
                for n in range(len(path), 0, -1):
                    target = "::".join(path[:n])
                    if target in mods and target != m and not m.startswith(target + "::") \
                            and not target.startswith(m + "::"):
                        graph[m].add(target)
                        break
    return graph


def cycles(graph):
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(graph[n]):
            if state.get(t) == 1:
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


bad = 0
for crate in sorted(pathlib.Path("crates").iterdir()):
    src = crate / "src"
    if not src.is_dir():
        continue
    graph = edges(modules(src))
    for c in cycles(graph):
        bad += 1
        print(f"{crate.name}: " + " -> ".join(c))
print(f"{bad} cycles" if bad else "no cycles between modules")
sys.exit(1 if bad else 0)
