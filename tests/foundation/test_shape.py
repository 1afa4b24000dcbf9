"""One shape for every feature (issue 14): the node's parts are typed fields of one `Node`, built
in one place; socket handlers live in live/sockets/ (each module `register(node)`), HTTP handlers
in live/rest/ (each `register(app, node)`); nothing wires parts by name or by probing attributes.
Checked on the source (ast) and on the classes, without starting a server."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import types
import typing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIVE = REPO / "live"
SOCKETS = LIVE / "sockets"
REST = LIVE / "rest"
# HTTP that is the server's own, not a feature's: health and metrics, the pages and their assets,
# and the media process's internal listener (its own app, for edge pulls between processes).
INFRA_HTTP = {"live/health.py", "live/pages.py", "live/assets.py", "live/media/internal.py"}
ROUTE_CALLS = {"add_get", "add_post", "add_put", "add_patch", "add_delete", "add_route", "add_head"}
HUB_CALLS = {"command", "snapshot_part"}
# Names through which the old layout reached parts: a parts dict, the Services bag, attributes the
# hub setup attached by hand, and app-dict fallbacks.
WIRING_NAMES = {"services", "parts", "Services"}


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "static" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _leaves(tp: object) -> list[object]:
    """The types inside an annotation (X | None -> [X, NoneType], list[X] -> [list, X])."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if not args:
        return [tp]
    out: list[object] = [] if origin in (typing.Union, types.UnionType) else [origin]
    for a in args:
        out += _leaves(a)
    return out


def test_node_fields_are_all_typed_parts() -> None:
    from live.node import Node

    assert dataclasses.is_dataclass(Node)
    hints = typing.get_type_hints(Node)
    fields = [f.name for f in dataclasses.fields(Node)]
    assert {"config", "redis", "sio", "fanout", "hub", "inventory", "sales", "stockwatch", "timers", "chat",
            "checkout", "media"} <= set(fields), fields
    for name in fields:
        leaves = _leaves(hints[name])
        assert typing.Any not in leaves, f"Node.{name} is {hints[name]}: a part has a type"
        assert not {dict, list, typing.Mapping} & set(leaves), f"Node.{name} is {hints[name]}: no bag of parts"
        assert all(isinstance(t, type) for t in leaves), f"Node.{name} is {hints[name]}"


def test_the_hub_carries_no_parts_attached_later() -> None:
    from live.hub.hub import Hub

    hints = typing.get_type_hints(Hub)
    assert not {"sales", "stockwatch", "timers"} & set(hints), hints
    attached = re.compile(r"(?<![\w.])hub\.(sales|stockwatch|timers)\b")  # not live.hub.stockwatch
    bad = [f"{_rel(p)}:{n}" for p in _sources(LIVE) for n, line in enumerate(p.read_text().splitlines(), 1)
           if attached.search(line)]
    assert not bad, "reach the part through the node, not the hub:\n" + "\n".join(bad)


HOMES = {"sockets": ["node"], "rest": ["app", "node"]}  # each home's one register signature


@pytest.mark.parametrize("path", [p for p in _sources(SOCKETS) + _sources(REST) if p.name != "__init__.py"], ids=_rel)
def test_every_module_of_a_home_registers_in_its_shape(path: Path) -> None:
    mod = importlib.import_module(f"live.{path.parent.name}.{path.stem}")
    sig = inspect.signature(mod.register)
    assert list(sig.parameters) == HOMES[path.parent.name] and sig.return_annotation in (None, "None"), sig


def test_create_app_registers_every_module_of_both_homes() -> None:
    from live import app

    assert {m.__name__.rsplit(".", 1)[1] for m in app.SOCKETS} == {p.stem for p in _sources(SOCKETS)} - {"__init__"}
    assert {m.__name__.rsplit(".", 1)[1] for m in app.REST} == {p.stem for p in _sources(REST)} - {"__init__"}


def _calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(n.lineno, n.func.attr) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]


def test_handlers_are_registered_only_in_their_two_homes() -> None:
    bad = []
    for path in _sources(LIVE):
        rel = _rel(path)
        for line, attr in _calls(path):
            if attr in HUB_CALLS and not rel.startswith(("live/sockets/", "live/hub/")):
                bad.append(f"{rel}:{line} registers a socket handler ({attr}) outside live/sockets/")
            if attr in ROUTE_CALLS and not rel.startswith("live/rest/") and rel not in INFRA_HTTP:
                bad.append(f"{rel}:{line} adds an HTTP route ({attr}) outside live/rest/")
    assert not bad, "\n".join(bad)


def _wiring(path: Path) -> list[str]:
    """Parts found by name or by probing: hasattr(), getattr() on the node / hub / app, a parts
    dict, the Services bag, app.get(...) fallbacks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id in WIRING_NAMES:
            found.append(f"{n.lineno}: {n.id}")
        elif isinstance(n, ast.Attribute) and n.attr in WIRING_NAMES - {"parts"}:
            found.append(f"{n.lineno}: .{n.attr}")
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("hasattr", "getattr"):
            target = ast.unparse(n.args[0]) if n.args else ""
            if n.func.id == "hasattr" or target.split(".")[-1] in ("node", "hub", "app", "services", "fanout", "media"):
                found.append(f"{n.lineno}: {ast.unparse(n)}")
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" \
                and ast.unparse(n.func.value).endswith("app"):
            found.append(f"{n.lineno}: {ast.unparse(n)}")
    return found


def test_no_wiring_by_name_or_by_probing() -> None:
    roots = [LIVE / "app.py", LIVE / "node.py", *_sources(SOCKETS), *_sources(REST)]
    bad = [f"{_rel(p)}:{w}" for p in roots for w in _wiring(p)]
    assert not bad, "wire parts through the typed Node:\n" + "\n".join(bad)


def test_the_wiring_checker_sees_the_old_shapes(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("fan = getattr(services, 'fanout', None) or services.parts.get('fanout')\n"
                      "if hasattr(services, 'hub'):\n    pass\n"
                      "hub = app.get('hub')\nsales = getattr(self.hub, 'sales')\n")
    found = _wiring(sample)
    assert any("getattr(services" in w for w in found) and any("hasattr(services" in w for w in found)
    assert any("app.get('hub')" in w for w in found) and any("getattr(self.hub" in w for w in found)
