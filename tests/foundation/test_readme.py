"""The README stays true: its two commands first, and a settings table equal to the one generated
from Config (every field, its variable, flag, default and meaning)."""
import re
from dataclasses import fields
from pathlib import Path

from live.cli import settings_markdown
from live.config import Config

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_two_commands_come_first():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block and README.index("```sh") < README.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["scripts/demo.sh", "scripts/test.sh"]
    for script in commands:
        assert (REPO / script).stat().st_mode & 0o111, f"{script} is not executable"


def test_settings_table_is_the_generated_one():
    m = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", README, re.S)
    assert m, "README has no generated settings table"
    assert m.group(1) == settings_markdown(), (
        "README settings table is stale: replace it with the output of "
        "python -c 'from live.cli import settings_markdown; print(settings_markdown(), end=\"\")'")


def test_every_setting_is_documented():
    table = settings_markdown()
    for f in fields(Config):
        if f.name != "extra":
            assert f"`HAWKER_{f.name.upper()}`" in table
    assert "(undocumented)" not in table


def test_docs_links_resolve():
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)", README):
        assert (REPO / target).exists(), target
