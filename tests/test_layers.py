"""The layers of DESIGN.md section 5, read from the source: what each package may import, and no import cycle.

Imports are read with `ast`, those inside functions too (a lazy import is still a dependency), so a layer
cannot be crossed by hiding the import in a function body.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import kiki_bot

PACKAGE = Path(kiki_bot.__file__).resolve().parent
HEAVY = {"github", "huggingface_hub", "mlx", "mlx_lm", "sqlite3", "subprocess", "requests", "torch",
         "transformers", "tokenizers", "safetensors", "numpy", "jinja2", "werkzeug"}
OUTSIDE = {"github", "huggingface_hub"}  # PyGithub and huggingface_hub: only the shells speak to them


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it, as absolute dotted names."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


PATHS = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = {module: imports(path) for module, path in PATHS.items()}


def internal(names: set[str]) -> set[str]:
    return {n for n in names if n in MODULES}


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def in_package(package: str) -> dict[str, set[str]]:
    return {m: names for m, names in MODULES.items() if m == package or m.startswith(package + ".")}


def test_the_core_imports_no_shell_no_index_and_no_heavy_library():
    bad = {}
    for module, names in in_package("kiki_bot.core").items():
        crossing = {n for n in internal(names) if n.startswith(("kiki_bot.shells", "kiki_bot.index",
                                                                  "kiki_bot.demo"))}
        if crossing or top(names) & HEAVY:
            bad[module] = sorted(crossing | (top(names) & HEAVY))
    assert not bad, f"the pure core reaches outside: {bad}"


def test_the_core_imports_nothing_of_kiki_bot_above_it():
    """core/ is the bottom layer: its models and rules cannot lean on repo/, render/ or a moment, or the
    pure decisions would carry the file reading (and its imports) wherever they go."""
    bad = {m: sorted(n for n in internal(names) if not (n == "kiki_bot" or n.startswith("kiki_bot.core")))
           for m, names in in_package("kiki_bot.core").items()}
    bad = {m: names for m, names in bad.items() if names}
    assert not bad, f"the core imports from above it: {bad}"


FILE_IO = {"open", "read_bytes", "read_text", "write_bytes", "write_text", "exists", "is_file", "is_dir", "mkdir",
           "iterdir", "glob", "rglob", "unlink", "touch", "stat"}
FILE_MODULES = {"os", "shutil", "tempfile", "fcntl", "io", "kiki_bot.repo.storage"}


def test_the_core_reads_and_writes_no_file():
    """Pure means from bytes to values: reading a file (the ledger, a data file) is repo/'s job."""
    bad = {}
    for module, names in in_package("kiki_bot.core").items():
        calls = {node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                 for node in ast.walk(ast.parse(PATHS[module].read_text(encoding="utf-8")))
                 if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Name | ast.Attribute)}
        if found := (calls & FILE_IO) | {n for n in names if n in FILE_MODULES or n.split(".")[0] in FILE_MODULES}:
            bad[module] = sorted(found)
    assert not bad, f"the pure core touches files: {bad}"


def test_only_the_shells_import_pygithub_or_huggingface_hub():
    # The demo plays the user's side against the emulators; render writes and reads the Hub's YAML metadata
    # with huggingface_hub's card data (no HTTP), as DESIGN.md section 5 says.
    allowed = ("kiki_bot.shells", "kiki_bot.demo", "kiki_bot.render")
    bad = {m: sorted(top(names) & OUTSIDE) for m, names in MODULES.items()
           if top(names) & OUTSIDE and not m.startswith(allowed)}
    assert not bad, f"outside the shells: {bad}"


def test_no_import_cycle():
    """Each module's imports, lazy ones included, form no cycle: a lower layer that needs a higher one's piece
    means the piece is in the wrong place (or the higher module's step belongs to whoever calls both)."""
    graph = {m: internal(names) - {m} for m, names in MODULES.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append({m: sorted(graph[m] & component) for m in sorted(component)})

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles (module: its imports inside the cycle): {cycles}"


def test_routing_an_event_loads_no_third_party_library():
    """`kiki-bot handle` for an event no moment wants must stay fast: events imports the standard library only."""
    probe = ("import sys; before = set(sys.modules); import kiki_bot.events; "
             "print('\\n'.join({m.split('.')[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
                 .stdout.split())
    assert loaded <= {"kiki_bot"}, loaded


def test_behaviours_reach_the_outside_only_through_effects_methods():
    """`fx.gh` and `fx.hub` are the clients inside Effects: a behaviour calling them would bypass --dry-run."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if module_name(path).startswith("kiki_bot.shells"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            owner = getattr(node, "value", None)
            if isinstance(node, ast.Attribute) and node.attr in ("gh", "hub") and (
                    (isinstance(owner, ast.Attribute) and owner.attr == "fx")
                    or (isinstance(owner, ast.Name) and owner.id == "fx")):
                bad.append(f"{module_name(path)}:{node.lineno}")
    assert not bad, f"reaching past Effects: {bad}"
