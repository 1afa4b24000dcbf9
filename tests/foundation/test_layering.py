"""The domain packages are libraries: they never import live/ (the transport layer); they may use
the shared Redis layer (redislayer, which imports nothing of ours), and only checkout and auctions
may import another domain package (inventory: a won auction is a hold paid through checkout). Every one
may import domain/ (the error codes and field checks), which imports nothing of ours. Checked on the source with ast."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"live", "inventory", "checkout", "chat", "loadtest", "tests", "redislayer", "analytics", "auctions", "shop", "domain"}
ALLOWED = {"domain": set(), "redislayer": {"domain"}, "inventory": {"redislayer", "domain"},
           "chat": {"redislayer", "domain"}, "checkout": {"inventory", "redislayer", "domain"},
           "analytics": {"domain"}, "auctions": {"inventory", "redislayer", "domain"}, "shop": {"redislayer", "domain"}}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_domain_package_imports_only_what_it_may(package):
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"{package}/ has no sources"
    bad = []
    for path in files:
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and top != package and top not in ALLOWED[package]:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "domain packages must not import these:\n" + "\n".join(bad)


def test_the_checker_sees_a_live_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import os\nfrom live.errors import ApiError\nimport importlib\nimportlib.import_module('live.app')\n")
    assert [n for _, n in _imports(sample)] == ["os", "live.errors", "importlib", "live.app"]
