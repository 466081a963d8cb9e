"""The package's import graph, read from the source with `ast`: layers run one way, no cycles,
and gradio only under explorer/ui/."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "explorer"

# Lower layers never import higher ones. Modules at the package's top (errors, paths) are layer 0;
# tools/ (benchmark, load test) are developer tools over the product; cli.py dispatches to all of it.
LAYERS = {
    "errors": 0, "paths": 0, "budgets": 0, "caches": 0, "engine": 1, "rankers": 2, "data": 2,
    "pipeline": 3, "interpret": 3, "indexing": 3, "store": 3, "views": 4, "ui": 5, "tools": 6, "cli": 7, "case_cli": 7, "eval_cli": 7, "cli_output": 7, "__main__": 7,
}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module this file imports, at top level or inside functions, as absolute names."""
    found = set()
    package = module_name(path, root).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # "from explorer.views import comparison_plots" imports a module, not a name.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    return {name: {i for i in imports_of(path, root) if i in modules and i != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else 0


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in the graph, as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target, stack + [target])):
                return cycle
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_there_is_no_import_cycle():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_run_one_way():
    wrong = [
        f"{module} imports {target}"
        for module, targets in package_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module) and target != "explorer"
    ]
    assert not wrong, "\n".join(wrong)


def test_gradio_is_imported_only_under_ui():
    outside = [
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "ui" not in path.relative_to(PACKAGE).parts[:1]
        and any(name == "gradio" or name.startswith("gradio.") for name in imports_of(path))
    ]
    assert not outside, f"gradio imported outside explorer/ui/: {outside}"


def test_sqlite3_is_imported_only_under_store():
    outside = [
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "store" not in path.relative_to(PACKAGE).parts[:1] and "sqlite3" in imports_of(path)
    ]
    assert not outside, f"sqlite3 imported outside explorer/store/: {outside}"


def test_every_package_file_is_in_a_known_layer():
    unknown = sorted({m.split(".")[1] for m in package_graph() if "." in m} - set(LAYERS))
    assert not unknown, f"add these to LAYERS: {unknown}"


def test_the_checker_sees_a_cycle_and_a_gradio_import(tmp_path):
    """The helpers above must be able to fail: feed them a tiny package that breaks both rules."""
    root = tmp_path / "explorer"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from .b import x\nimport gradio\n")
    (root / "b.py").write_text("def f():\n    from explorer.a import y\n")
    assert "gradio" in imports_of(root / "a.py", root)
    assert find_cycle(package_graph(root)) == ["explorer.a", "explorer.b", "explorer.a"]


# ---- the UI arranges; pipeline/, data/, interpret/ compute ---------------------------------------

# A function in ui/ longer than this (statements after its docstring, in lines) must touch gradio.
UI_LOGIC_LINES = 8


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def gradio_free_functions(path: Path, max_lines: int = UI_LOGIC_LINES) -> list[str]:
    """Functions of one ui/ module longer than `max_lines` that never touch gradio.

    Touching gradio: naming anything imported from gradio or from explorer.ui (`gr`, `shown_error`,
    gradio's upload folder), or calling a function of the same module that does (to a fixpoint).
    Anything longer that touches none of it computes, and belongs in pipeline/, data/ or interpret/.
    """
    tree = ast.parse(path.read_text(), str(path))
    facing = set()
    for node in tree.body:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "gradio" for a in node.names):
            facing.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "gradio":
            facing.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and ((node.module or "").startswith("explorer.ui") or node.level):
            facing.update(a.asname or a.name for a in node.names)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    names = {f: {n.id for n in ast.walk(f) if isinstance(n, ast.Name)} for f in functions}
    touching: set = set()
    while True:
        more = {f for f in functions if f not in touching and names[f] & (facing | {g.name for g in touching})}
        if not more:
            break
        touching |= more
    return [f"{path.name}:{f.lineno} {f.name} ({_body_lines(f)} lines)"
            for f in functions if f not in touching and _body_lines(f) > max_lines]


def test_ui_functions_that_compute_live_outside_ui():
    found = [item for path in sorted((PACKAGE / "ui").glob("*.py")) for item in gradio_free_functions(path)]
    assert not found, "move these out of explorer/ui/ (they compute, not arrange):\n" + "\n".join(found)


def test_the_ui_rule_sees_logic_and_spares_wiring(tmp_path):
    module = tmp_path / "tab.py"
    module.write_text(
        "import gradio as gr\n"
        "from explorer.ui.messages import shown_error\n"
        "def wiring(x):\n" + "    y = x\n" * 12 + "    return gr.update(value=y)\n"
        "def helper(x):\n    return gr.skip()\n"
        "def through_a_helper(x):\n" + "    y = x\n" * 12 + "    return helper(y)\n"
        "def guarded(x):\n" + "    y = x\n" * 12 + "    raise shown_error(y)\n"
        "def logic(x):\n    '''docstring'''\n" + "    x = x + 1\n" * 12 + "    return x\n"
        "def short(x):\n    return x\n"
    )
    assert gradio_free_functions(module) == ["tab.py:47 logic (13 lines)"]
