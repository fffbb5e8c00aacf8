"""The package's shape: each stage imports only from the stages before it, and no modules import each other in a loop.

A stage may use what comes earlier in the data flow (search reads indexes, the UI runs searches), never what comes
later; so training cannot reach evaluation, the feedback loop (which records what search answered and what people
did with it) cannot reach the HTTP service, and the HTTP service cannot reach the Gradio UI, which mmsearch/service.py
mounts on it."""

import ast

import pytest
from conftest import PACKAGE_MODULES as MODULES
from conftest import package_imports as imports

# Bottom to top. Foundation: settings, where the package's files are, atomic writes, outages and the machine's
# failures. Top: what wires stages together.
LAYERS = [
    [
        "mmsearch",
        "mmsearch.settings",
        "mmsearch.flags",
        "mmsearch.resources",
        "mmsearch.atomic",
        "mmsearch.inputs",
        "mmsearch.plugins",
        "mmsearch.outage",
        "mmsearch.machine",
    ],
    ["mmsearch.ingest"],
    ["mmsearch.encode"],
    ["mmsearch.store"],
    ["mmsearch.index"],
    ["mmsearch.builder"],
    ["mmsearch.search"],
    ["mmsearch.feedback"],
    ["mmsearch.train"],
    ["mmsearch.evaluate"],
    ["mmsearch.serve"],
    ["mmsearch.ui"],
    ["mmsearch.service", "mmsearch.replicas", "mmsearch.cli", "mmsearch.__main__", "mmsearch.demo"],
]


def layer(name: str) -> int:
    best = max(
        (
            (i, len(prefix))
            for i, prefixes in enumerate(LAYERS)
            for prefix in prefixes
            if name == prefix or (name.startswith(prefix + ".") and prefix != "mmsearch")
        ),
        key=lambda x: x[1],
        default=None,
    )
    assert best is not None, f"{name} belongs to no stage: add it to LAYERS or move it into a stage's package"
    return best[0]


def test_every_module_belongs_to_a_stage():
    for name in MODULES:
        layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_reaches_a_later_stage(name):
    later = sorted(t for t in imports(name) if layer(t) > layer(name))
    assert not later, f"{name} imports {later}, from a later stage"


def test_no_import_circle():
    graph = {name: imports(name) for name in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(nxt) :] + [node, nxt]))
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_nothing_writes_the_environment_to_pass_a_value():
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AugAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    text = ast.unparse(target)
                    assert not text.startswith("os.environ["), f"{name} writes {text}"


FUNCTION_MAX, CLASS_MAX = 150, 300


def test_units_read_top_to_bottom():
    """No function over 150 lines and no class over 300: a unit a maintainer reads at one sitting."""
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > (CLASS_MAX if isinstance(node, ast.ClassDef) else FUNCTION_MAX):
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long


def test_every_package_ships_in_the_wheel():
    """pyproject.toml lists the packages a wheel carries: a new package (a plug-in package too) must be there."""
    import tomllib

    from conftest import ROOT

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages <= listed, sorted(packages - listed)
