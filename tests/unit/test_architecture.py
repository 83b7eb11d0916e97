"""The layers of docs/architecture.md, module by module: a module imports only its own layer and
the layers below (imports under ``if TYPE_CHECKING:`` do not count: they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "dkproto"

#: (layer, module-name prefixes), lowest first. A module takes the layer of its longest prefix.
LAYERS: list[tuple[int, tuple[str, ...]]] = [
    (0, ("dkproto", "dkproto.ioreturn", "dkproto.errors", "dkproto.usbids", "dkproto._paths",
         "dkproto._jsonload", "dkproto._usercode", "dkproto.data")),
    (1, ("dkproto.schema",)),
    (2, ("dkproto.usb", "dkproto.hid", "dkproto.session", "dkproto.capture")),
    (3, ("dkproto.device", "dkproto.transport")),
    (4, ("dkproto.usb.read", "dkproto.usb.enumerate", "dkproto.hid.device")),
    (5, ("dkproto.iokit",)),
    (6, ("dkproto.lab",)),
    (7, ("dkproto.cli", "dkproto.pytest_plugin", "dkproto.__main__")),
]

#: Within one layer: (importer prefix, imported prefix) pairs that are forbidden.
SAME_LAYER_FORBIDDEN = [
    ("dkproto.device", "dkproto.transport"),  # transport may use the device side (sim://), not back
    ("dkproto.usb", "dkproto.hid"),
    ("dkproto.hid", "dkproto.usb"),
    ("dkproto.session", "dkproto.capture"),  # a capture is made from a session, not the other way
    ("dkproto.session", "dkproto.usb"),
    ("dkproto.session", "dkproto.hid"),
]

#: Imports that break the rule on purpose: (importer, imported) -> why.
ALLOWED: dict[tuple[str, str], str] = {
    ("dkproto.hid", "dkproto.hid.device"):
        "the package's module __getattr__ loads HidDevice on first use: import dkproto.hid loads no transport",
}


def layer_of(module: str) -> int:
    best, layer = "", -1
    for n, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, layer = p, n
    assert layer >= 0, f"{module}: in no layer of docs/architecture.md"
    return layer


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import that runs (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # "from dkproto.usb import read" imports the submodule dkproto.usb.read
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names
                    if f"{target}.{a.name}" in MODULES]
    return [(line, m) for line, m in out if m == "dkproto" or m.startswith("dkproto.")]


MODULES = _modules()


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 80
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    mine = layer_of(module)
    bad = []
    for line, target in _runtime_imports(MODULES[module], module):
        if target not in MODULES and not any(target.startswith(m + ".") for m in MODULES):
            continue
        theirs = layer_of(target)
        rel = f"{MODULES[module].relative_to(PKG.parent)}:{line}"
        if (module, target) in ALLOWED:
            continue
        if theirs > mine:
            bad.append(f"{rel}: layer {mine} imports {target} (layer {theirs})")
        elif theirs == mine:
            for a, b in SAME_LAYER_FORBIDDEN:
                if (module == a or module.startswith(a + ".")) and (target == b or target.startswith(b + ".")):
                    bad.append(f"{rel}: {module} imports {target} ({a} must not import {b})")
    assert bad == []


def test_the_checker_sees_a_violation() -> None:
    assert layer_of("dkproto.usb.walker") == 2 and layer_of("dkproto.usb.read") == 4
    assert layer_of("dkproto.cli.dump") == 7 and layer_of("dkproto.errors") == 0
