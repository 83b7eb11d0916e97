"""How the USB descriptor side is put together: one module per part, one table of handlers, one
list of schema modules (plus an entry-point group for other packages' class modules).

The behaviour itself is pinned by the corpus, walker, choice-cache and trust tests; these check
the shape that lets a new part be one module.
"""

from __future__ import annotations

import ast
import logging
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from usb_corpus import corpus_bytes

import dkproto.schema
from dkproto.schema import registry
from dkproto.usb import bounds, choice, model, parse, parser, render_text, tree, walker

SCHEMA_DIR = Path(dkproto.schema.__file__).resolve().parent
BUILTINS = [f"dkproto.schema.{name}" for name in registry.BUILTIN_MODULES]


def test_tree_is_the_old_name_of_the_parts() -> None:
    assert tree.DescriptorSet is model.DescriptorSet and tree.Node is model.Node
    assert tree.parse is parser.parse and tree.walk is walker.walk
    assert tree.clear_choice_cache is choice.clear_choice_cache
    assert tree.check_bounds is bounds.check_bounds
    for name in tree.__all__:
        if name.startswith("MAX_"):
            assert getattr(tree, name) == getattr(bounds, name), name


def test_one_handler_per_role_by_descriptor_type() -> None:
    handlers = walker._HANDLERS
    assert len(handlers) == 256
    assert handlers[-1] is handlers[255] is walker._other  # a broken 1-byte tail has no type
    roles = {0x04: walker._interface, 0x05: walker._endpoint, 0x0B: walker._association,
             0x24: walker._class_interface, 0x21: walker._class_interface, 0x30: walker._companion,
             0x31: walker._companion, 0x03: walker._string}
    for dtype, handler in roles.items():
        assert handlers[dtype] is handler, hex(dtype)
    for dtype in (0x01, 0x02, 0x07, 0x0F):  # top-level types end a configuration
        assert handlers[dtype] is None
    assert {h for t, h in enumerate(handlers) if t not in roles and h is not None} == {walker._other}


def _registers(path: Path) -> bool:
    """True when a module calls register_class / register_standard at module level."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                and call.func.id in ("register_class", "register_standard"):
            return True
    return False


def test_every_schema_module_is_listed_once() -> None:
    registering = {p.stem for p in SCHEMA_DIR.glob("*.py") if _registers(p)}
    assert set(registry.BUILTIN_MODULES) == registering
    assert len(registry.BUILTIN_MODULES) == len(set(registry.BUILTIN_MODULES))
    assert registry.loaded_modules()[:len(BUILTINS)] == BUILTINS


#: A class module of another package, exactly as docs/descriptors.md's recipe writes it.
PLUGIN = '''
from construct import Int8ul, Int16ul, Struct

from dkproto.schema.registry import Context, Schema, register_class

DIAGNOSTIC_CLASS = 0xDC

DIAG_HEADER = Schema(
    key="diag_header",
    name="Diagnostic Header Descriptor",
    struct=Struct("bLength" / Int8ul, "bDescriptorType" / Int8ul, "bDescriptorSubtype" / Int8ul,
                  "bcdDiag" / Int16ul),
    spec="Example Diagnostic Class 1.0, 4.1",
)


def select_diag(descriptor_type: int, raw: bytes, ctx: Context) -> Schema | None:
    if descriptor_type == 0x24 and len(raw) > 2 and raw[2] == 0x01:
        return DIAG_HEADER
    return None


register_class(DIAGNOSTIC_CLASS, select_diag)
'''

#: a device with one diagnostic-class interface and its class-specific header
DIAG_SET = bytes.fromhex("1201000200000040091201000001000000 01".replace(" ", "")) + bytes.fromhex(
    "0902170001010080 32" "090400000 0dc000000" "0524010001".replace(" ", ""))


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A registry that loads its modules again (built-ins are imported already: no-ops), with the
    class selectors restored afterwards."""
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_modules", [])
    selectors = {k: list(v) for k, v in registry._CLASS_SELECTORS.items()}
    monkeypatch.setattr(registry, "_CLASS_SELECTORS", selectors)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("dkproto_test_diag", None)
    registry._generation += 1  # drop the choices cached with the plugin's selector


def test_a_class_module_of_another_package_registers_through_its_entry_point(
        fresh_registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = parse(DIAG_SET)
    (node,) = [n for n in before.nodes() if n.bDescriptorType == 0x24]
    assert not node.decoded and before.ok
    (fresh_registry / "dkproto_test_diag.py").write_text(PLUGIN)
    ep = metadata.EntryPoint(name="diag", value="dkproto_test_diag", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    monkeypatch.setattr(registry, "_loaded", False)  # the parse above loaded the modules: again
    monkeypatch.setattr(registry, "_modules", [])
    after = parse(DIAG_SET)
    assert registry.loaded_modules() == [*BUILTINS, "dkproto_test_diag"]
    (node,) = [n for n in after.nodes() if n.bDescriptorType == 0x24]
    assert node.key == "diag_header" and node["bcdDiag"] == 0x0100 and after.to_bytes() == DIAG_SET
    assert "Diagnostic Header Descriptor:" in render_text(after)


def test_a_broken_entry_point_is_one_warning(fresh_registry: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    ep = metadata.EntryPoint(name="broken", value="dkproto_test_no_such_module",
                             group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    caplog.set_level(logging.WARNING, logger=registry.__name__)
    data, bos = corpus_bytes("ksoloti-core-uac2-midi")
    ds = parse(data, bos or None)
    assert ds.ok and registry.loaded_modules() == BUILTINS
    (record,) = caplog.records
    assert "'dkproto_test_no_such_module' (entry point 'broken' of group dkproto.schemas) failed to import" \
        in record.getMessage()
