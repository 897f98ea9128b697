#!/usr/bin/env python3
"""Lists import cycles between the modules of each crate under crates/ and exits 1 if any.

A module is a file or folder under src/. Edges are the `crate::` and `super::` paths the code
names (`use` trees with braces included, over several lines); a name re-exported by the crate
root counts as the module that defines it. Test code is left out: modules declared under
`#[cfg(test)]` and everything from a file's first top-level `#[cfg(test)]` on. A module's own
parent and children are not edges (a module and its submodules are one unit).
Run from the repository root: python3 tools/check/module_cycles.py
"""
import pathlib
import re
import sys

PATH = re.compile(r"\b((?:crate|super)(?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))*)::(\{|[A-Za-z_])")


def modules(src: pathlib.Path):
    """Module path ('fast::kernels::gemm') -> file, without test-only modules."""
    out = {}
    for f in src.rglob("*.rs"):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            continue
        out["::".join(parts)] = f
    test_only = set()
    for m, f in list(out.items()) + [("", src / "lib.rs")]:
        if not f.exists():
            continue
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines[1:], 1):
            hit = re.match(r"\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+)\s*;", line)
            if hit and "cfg(test)" in lines[i - 1]:
                test_only.add((m + "::" if m else "") + hit.group(1))
    return {m: f for m, f in out.items() if not any(m == t or m.startswith(t + "::") for t in test_only)}


def code(f: pathlib.Path) -> str:
    text = f.read_text()
    cut = re.search(r"^#\[cfg\(test\)\]", text, re.M)
    text = text[: cut.start()] if cut else text
    return re.sub(r"//[^\n]*", "", text)


def root_exports(src: pathlib.Path, mods):
    """Names the crate root re-exports -> the module they come from."""
    out = {}
    root = src / "lib.rs"
    if not root.exists():
        return out
    for tree in re.findall(r"pub use\s+([^;]+);", code(root)):
        for path in expand(tree.replace("\n", " ")):
            parts = path.split("::")
            for n in range(len(parts) - 1, 0, -1):
                if "::".join(parts[:n]) in mods:
                    out[parts[-1].split(" as ")[-1].strip()] = "::".join(parts[:n])
                    break
    return out


def expand(tree: str):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.strip()
    brace = tree.find("{")
    if brace < 0:
        return [tree] if tree else []
    prefix = tree[:brace].rstrip(":").strip()
    inner, depth, parts, start = tree[brace + 1 : tree.rfind("}")], 0, [], 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for p in parts:
        for sub in expand(p):
            out.append(f"{prefix}::{sub}" if prefix and sub not in ("self",) else prefix or sub)
    return out


def paths_in(text: str):
    """Every crate::/super:: path in `text`, braces expanded."""
    for m in PATH.finditer(text):
        start = m.start(1)
        if m.group(2) == "{":
            depth, i = 0, text.index("{", start)
            for j in range(i, len(text)):
                depth += text[j] == "{"
                depth -= text[j] == "}"
                if depth == 0:
                    yield from expand(text[start : j + 1].replace("\n", " "))
                    break
        else:
            rest = re.match(r"[A-Za-z0-9_:]*", text[m.start(2) :]).group(0)
            yield m.group(1) + "::" + rest


def edges(src, mods):
    exports = root_exports(src, mods)
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        here = m.split("::")  # `super` in module a::b (a/b.rs or a/b/mod.rs) is a
        for path in paths_in(code(f)):
            parts = [p.strip() for p in path.split("::") if p.strip()]
            if parts[0] == "crate":
                base, parts = [], parts[1:]
            else:
                base = list(here)
                while parts and parts[0] == "super":
                    base, parts = base[:-1], parts[1:]
            full = base + parts
            target = None
            for n in range(len(full), 0, -1):
                if "::".join(full[:n]) in mods:
                    target = "::".join(full[:n])
                    break
            if target is None and not base and parts and parts[0] in exports:
                target = exports[parts[0]]
            if target and target != m and not m.startswith(target + "::") \
                    and not target.startswith(m + "::"):
                graph[m].add(target)
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
    mods = modules(src)
    for c in cycles(edges(src, mods)):
        bad += 1
        print(f"{crate.name}: " + " -> ".join(c))
print(f"{bad} import cycles between modules" if bad else "no import cycles between modules")
sys.exit(1 if bad else 0)
