"""The package's structure: who imports whom inside tinyvae, counted from the source.

Run it as a script to see the import levels and the longest chain::

    python tests/test_layering.py            # this checkout's tinyvae/
    python tests/test_layering.py OTHER/tinyvae

A module's level is 1 if it imports no other tinyvae module, else one more than the
highest level among those it imports; the longest chain is as long as the highest level.
Every import counts, also those inside functions (imported on first use). Package
``__init__`` files are counted as the modules they are; a module is never counted as
importing its package's ``__init__`` (Python runs it, but nothing there is used).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tinyvae"
MAX_LEVELS = 7


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PACKAGE) -> dict:
    """{module: set of tinyvae modules it imports}, read from every .py file under root."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from tinyvae.tools import plots" imports the module tinyvae.tools.plots
                subs = {f"{node.module}.{alias.name}" for alias in node.names}
                found |= (subs & files.keys()) or {node.module}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def levels(graph: dict) -> dict:
    """{module: level}; raises ValueError naming a cycle if there is one."""

    @cache
    def level(name, visiting=()):
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name) :] + (name,))
            raise ValueError(f"import cycle: {cycle}")
        return 1 + max((level(m, visiting + (name,)) for m in graph[name]), default=0)

    return {name: level(name) for name in graph}


def longest_chain(graph: dict) -> list:
    """One longest import chain, from the importing module down to a module of level 1."""
    lv = levels(graph)
    chain = [max(lv, key=lambda m: (lv[m], m))]
    while graph[chain[-1]]:
        chain.append(max(graph[chain[-1]], key=lambda m: (lv[m], m)))
    return chain


def test_no_cycles_and_at_most_seven_levels():
    chain = longest_chain(import_graph())
    assert len(chain) <= MAX_LEVELS, " -> ".join(chain)


def test_the_maths_core_imports_nothing_from_the_tools():
    """The core imports the core, its fast paths (``tinyvae/fast/``), the CuPy check and the
    errors: nothing that runs it."""
    allowed = ("tinyvae.core", "tinyvae.fast", "tinyvae.cupy_check", "tinyvae.errors")
    for name, imported in import_graph().items():
        if name.startswith("tinyvae.core"):
            outside = {m for m in imported if not m.startswith(allowed)}
            assert not outside, (name, outside)


def test_the_fast_paths_stand_beside_the_maths_not_on_it():
    """A fast path imports no tools and, of the core, only ``arrays`` (which array library);
    the convolution's imports nothing from tinyvae, so the layers keep their level."""
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith("tinyvae.fast"):
            outside = {m for m in imported if not m.startswith("tinyvae.fast")}
            assert outside <= {"tinyvae.core.arrays"}, (name, outside)
    assert graph["tinyvae.fast.conv"] == set()


def test_importing_the_core_loads_no_tools():
    code = "import sys, tinyvae.core; print(sorted(m for m in sys.modules if m.startswith('tinyvae.tools')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_no_file_of_the_package_exceeds_300_lines():
    long = {
        p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, long


def test_the_counter_sees_cycles_and_chains():
    graph = {"a": {"b"}, "b": {"c"}, "c": set(), "d": {"c"}}
    assert levels(graph) == {"a": 3, "b": 2, "c": 1, "d": 2}
    assert longest_chain(graph) == ["a", "b", "c"]
    graph["c"] = {"a"}
    try:
        levels(graph)
    except ValueError as error:
        assert "a -> b -> c -> a" in str(error)
    else:
        raise AssertionError("a cycle went unnoticed")


def test_the_counter_reads_this_package():
    graph = import_graph()
    assert "tinyvae.core.model" in graph["tinyvae.train"] or any(
        "tinyvae.core.model" in graph[m] for m in graph["tinyvae.train"]
    )
    assert "tinyvae.tools.plots" in graph["tinyvae.train"]  # imported inside main()
    assert graph["tinyvae.errors"] == set()


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PACKAGE
    graph = import_graph(root)
    by_level = levels(graph)
    for lv in sorted(set(by_level.values())):
        print(f"level {lv}: {', '.join(sorted(m for m in graph if by_level[m] == lv))}")
    chain = longest_chain(graph)
    print(f"{len(graph)} modules, {len(chain)} levels; longest chain: {' -> '.join(chain)}")
