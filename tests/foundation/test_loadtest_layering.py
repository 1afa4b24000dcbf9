"""loadtest/ reaches the server over the network only: it imports nothing of the server's packages
(it mints tokens with PyJWT and starts the server with its CLI), so a load test measures what a
client sees and can run from any machine. The one thing it shares is how a local Redis is found and
started (redislayer.server, redislayer.version: process and version helpers, not the server's Redis
client), so the load tests, the demo and the tests all start the same Redis >= 7. Checked on the
source with ast."""
from pathlib import Path

from tests.foundation.test_layering import _imports

REPO = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = {"live", "inventory", "checkout", "chat", "redislayer"}
# An in-process micro-benchmark of the fan-out engine (it embeds live.fanout in its own server
# process to compare it with stock python-socketio); it is not a network load test.
EMBEDS_THE_ENGINE = {"loadtest/fanout_bench.py"}
# Finding and starting a local redis-server: no part of the server's own code path.
REDIS_TOOLS = {"redislayer.server", "redislayer.version"}


def test_loadtest_imports_nothing_of_the_server():
    files = sorted((REPO / "loadtest").rglob("*.py"))
    assert files, "loadtest/ has no sources"
    bad = []
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        if rel in EMBEDS_THE_ENGINE:
            continue
        for line, name in _imports(path):
            if name.split(".")[0] in SERVER_PACKAGES and name not in REDIS_TOOLS:
                bad.append(f"{rel}:{line} imports {name}")
    assert not bad, "loadtest/ talks to the server over the network only:\n" + "\n".join(bad)


def test_the_only_exception_still_needs_to_be_one():
    """The allowance above must not outlive its reason: the file exists and still embeds the engine."""
    for rel in EMBEDS_THE_ENGINE:
        names = [n for _, n in _imports(REPO / rel)]
        assert any(n.startswith("live.fanout") for n in names), f"{rel} no longer needs the exception: remove it"
