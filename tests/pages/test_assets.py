"""The browser assets: served locally (never a CDN), vendored from the exact npm versions pinned in
package.json, and the pages reference nothing from another site."""
from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "live" / "static" / "vendor"


def test_vendored_files_match_the_pinned_npm_versions() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pinned.values()), "versions must be exact"
    assert json.loads((VENDOR / "versions.json").read_text()) == pinned
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name, version in pinned.items():
        assert lock[f"node_modules/{name}"]["version"] == version
    for name, srcs in (("socket.io-client", ["socket.io.msgpack.min.js"]), ("hls.js", ["hls.min.js"]),
                       ("uplot", ["uPlot.iife.min.js", "uPlot.min.css"])):
        installed = ROOT / "node_modules" / name / "dist"
        if installed.exists():  # after `npm ci`: the committed copies are the installed builds
            for src in srcs:
                assert (installed / src).read_bytes() == (VENDOR / src).read_bytes()


def test_pages_load_nothing_from_other_sites() -> None:
    for path in (ROOT / "live" / "static" / "pages").rglob("*.html"):  # the shared parts too
        text = path.read_text("utf-8")
        assert not re.search(r"""(src|href)=["']https?://""", text), path.name
    for path in (ROOT / "live" / "static" / "hawker").glob("*.js"):
        assert not re.search(r"""["'`]https?://(?!live\.example\.com)""", path.read_text("utf-8")), path.name


async def test_pages_and_assets_are_served(make_server) -> None:
    srv = await make_server()
    async with aiohttp.ClientSession() as s:
        for path, ctype in [("/studio", "text/html"), ("/watch/b1", "text/html"),
                            ("/static/vendor/socket.io.msgpack.min.js", "javascript"),
                            ("/static/vendor/hls.min.js", "javascript"), ("/static/hawker/hawker-player.js", "javascript")]:
            async with s.get(srv.url + path) as r:
                assert r.status == 200, path
                assert ctype in r.headers["Content-Type"], path
        async with s.get(srv.url + "/watch/bad%20id") as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "NOT_FOUND"
        async with s.get(srv.url + '/watch/b1') as r:
            assert 'data-broadcast="&quot;b1&quot;"' in await r.text()
