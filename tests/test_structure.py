"""The package's shape: an import graph without cycles, a CLI that nothing else imports, a light ``import trisr``.

The graph is read from the source with ``ast`` (nothing is imported): every ``import``/``from ... import`` of a
trisr module, at module level and inside functions, relative imports resolved, and ``from pkg import name``
pointing at the submodule ``pkg.name`` where there is one. A package's ``__init__`` running when one of its
submodules is imported is not an edge (Python finishes the parent first).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import trisr

ROOT = Path(trisr.__file__).resolve().parent
CLI = "trisr.cli"
OPTIONAL_HEAVY = ("openvino", "tensorrt", "matplotlib")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(tree: ast.AST):
    """(node, at_module_level) for every import statement; function bodies are lazy, class bodies are not."""

    def walk(node: ast.AST, lazy: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, not lazy
            yield from walk(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    yield from walk(tree, False)


def import_graph() -> dict[str, dict[str, bool]]:
    """module -> {imported trisr module: True when some import of it runs at module level}."""
    modules = _modules()
    graph: dict[str, dict[str, bool]] = {m: {} for m in modules}

    def owner(name: str) -> str | None:  # the longest trisr module a dotted name lies in
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets: list[tuple[str | None, bool]] = []
        for node, top in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [(owner(a.name), top) for a in node.names if a.name.split(".")[0] == "trisr"]
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            if base_name.split(".")[0] != "trisr":
                continue
            for alias in node.names:
                sub = f"{base_name}.{alias.name}"
                targets.append((sub if sub in modules else owner(base_name), top))
        for target, top in targets:
            if target is not None and target != mod:
                graph[mod][target] = graph[mod].get(target, False) or top
    return graph


def cycles(graph: dict[str, dict[str, bool]], module_level_only: bool = False) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    edges = {m: [t for t, top in ts.items() if top or not module_level_only] for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in edges:
        if v not in index:
            visit(v)
    return found


def _in_cli(mod: str) -> bool:
    return mod == CLI or mod.startswith(CLI + ".")


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert "trisr.cli.app" in graph["trisr.cli"]  # from trisr.cli.app import app, main
    assert graph["trisr.cli.app"]["trisr.cli.search"] is True  # from trisr.cli import search: a submodule
    assert "trisr.runtime.tensorrt" in graph["trisr.runtime"]  # registration imports
    assert graph["trisr.export.artifacts"]["trisr.runtime.tensorrt"] is False  # a lazy import, inside a function
    assert "trisr.runtime" not in graph["trisr.runtime.base"] and not any(
        t.startswith("trisr.runtime.") and t not in ("trisr.runtime.devices", "trisr.runtime.timing", "trisr.runtime.onnx_io")
        for t in graph["trisr.runtime.base"]
    )  # base.py imports no backend


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_nothing_outside_the_cli_imports_it():
    offenders = {m: sorted(t for t in ts if _in_cli(t)) for m, ts in import_graph().items() if not _in_cli(m)}
    assert {m: ts for m, ts in offenders.items() if ts} == {}


def test_every_command_module_registers_the_one_way():
    from trisr.cli.app import COMMANDS, app

    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert len(app.registered_commands) == len(COMMANDS) == 12
    assert all(callable(getattr(m, "register", None)) for m in COMMANDS)
    assert {"deploy", "search", "train", "eval", "upscale", "zoo", "info", "profile", "study", "report", "export", "bench"} == names
    cli_files = {p.stem for p in (ROOT / "cli").glob("*.py")} - {"__init__", "__main__", "app", "errors", "options", "tables"}
    assert cli_files == {m.__name__.rpartition(".")[2] for m in COMMANDS}


def test_version_and_entry_point():
    scripts = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, attr = scripts["trisr"].partition(":")
    assert (module, attr) == ("trisr.cli", "main") and callable(getattr(importlib.import_module(module), attr))
    res = subprocess.run([sys.executable, "-m", "trisr.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == f"trisr {trisr.__version__}", res.stderr


def test_import_trisr_stays_light():
    code = (
        "import sys, trisr, trisr.cli, trisr.runtime, trisr.export.formats; "
        f"print(sorted(m for m in {OPTIONAL_HEAVY!r} if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_device_vocabulary_is_the_specs():
    """--device is the deployment device wherever a network is timed or shipped (--target its hidden alias);
    --train-device is where PyTorch trains, --torch-device where eval/upscale run it (their --device a hidden
    alias); bad values exit 2 naming the option; --help shows the spec's words and never the aliases."""
    import re

    from typer.testing import CliRunner

    from trisr.cli import app
    from trisr.cli.options import Target, TorchDevice

    assert [t.value for t in Target] == ["cpu", "cuda", "jetson"] and [d.value for d in TorchDevice] == ["cpu", "cuda", "auto"]
    runner = CliRunner()
    plain = lambda text: re.sub(r"\x1b\[[0-9;]*m", "", text)  # noqa: E731 - typer's help may carry colour codes
    deploying = ("deploy", "search", "profile", "export", "bench", "study")
    for command in deploying:
        for flag in ("--device", "--target"):
            res = runner.invoke(app, [command, flag, "gpu"])
            assert res.exit_code == 2 and flag in plain(res.output), (command, flag, res.output)
        helptext = plain(runner.invoke(app, [command, "--help"], terminal_width=200).output)
        assert "--device" in helptext and "Deployment device" in helptext and "--target" not in helptext, command
    for command in ("search", "train", "study", "deploy"):
        res = runner.invoke(app, [command, "--train-device", "jetson"])
        assert res.exit_code == 2 and "--train-device" in plain(res.output), (command, res.output)
        assert "Where PyTorch trains" in plain(runner.invoke(app, [command, "--help"], terminal_width=200).output)
    for command in ("eval", "upscale"):
        for flag in ("--torch-device", "--device"):
            res = runner.invoke(app, [command, flag, "jetson"])
            assert res.exit_code == 2 and flag in plain(res.output), (command, flag, res.output)
    res = runner.invoke(app, ["train", "--device", "jetson"])  # train's old --device: where it trains
    assert res.exit_code == 2 and "--device" in plain(res.output)


def test_device_and_its_alias_resolve_to_one_setting():
    from trisr.cli.options import Target, TorchDevice, deploy_device, pick_torch_device
    from trisr.errors import TrisrError

    assert deploy_device(None, None) is Target.cpu and deploy_device(None, None, default=None) is None
    assert deploy_device(Target.jetson, None) is Target.jetson and deploy_device(None, Target.cuda) is Target.cuda
    assert deploy_device(Target.cuda, Target.cuda) is Target.cuda
    import pytest

    with pytest.raises(TrisrError, match="--device and --target name the same setting"):
        deploy_device(Target.cpu, Target.jetson)
    assert pick_torch_device(None, None) is TorchDevice.auto and pick_torch_device(None, TorchDevice.cpu) is TorchDevice.cpu
