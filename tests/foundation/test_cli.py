"""The `hawker` command: token, serve's refusal of the default secret, flags mirroring HAWKER_*."""
from dataclasses import fields

import pytest

from live.auth import verify
from live.cli import _FLAG_HELP, build_parser, flag_name, main
from live.config import DEFAULT_SECRET, Config, env_names
from tests.conftest import TEST_SECRET
from tests.foundation.procs import run_hawker

FIELDS = [f for f in fields(Config) if f.name != "extra"]


def test_token_command_prints_a_verifiable_jwt():
    out = run_hawker("token", "--role", "moderator", "--broadcast", "b9", "--sub", "mia", "--ttl", "120",
                     env={"HAWKER_SECRET": TEST_SECRET})
    assert out.returncode == 0, out.stderr
    claims = verify(TEST_SECRET, out.stdout.strip())
    assert (claims.role, claims.broadcast, claims.sub) == ("moderator", "b9", "mia")


def test_token_secret_flag_beats_env(capsys):
    assert main(["token", "--role", "host", "--broadcast", "b1", "--sub", "h", "--secret", TEST_SECRET]) == 0
    assert verify(TEST_SECRET, capsys.readouterr().out.strip()).role == "host"


def test_token_refuses_unknown_role():
    out = run_hawker("token", "--role", "admin", "--broadcast", "b1", "--sub", "x")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_serve_refuses_the_default_secret_with_a_clear_message():
    env = {"HAWKER_SECRET": DEFAULT_SECRET, "HAWKER_PORT": "1"}  # never gets as far as binding
    out = run_hawker("serve", env=env)
    assert out.returncode == 2
    assert "refusing to serve with the default secret" in out.stderr
    assert "HAWKER_SECRET" in out.stderr and "Traceback" not in out.stderr


def test_serve_refuses_an_empty_secret(monkeypatch, capsys):
    monkeypatch.setenv("HAWKER_SECRET", "")
    assert main(["serve"]) == 2
    assert "default secret" in capsys.readouterr().err


def test_bad_env_value_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("HAWKER_PORT", "eighty")
    assert main(["serve", "--secret", TEST_SECRET]) == 2
    assert "HAWKER_PORT='eighty' is not a valid int" in capsys.readouterr().err


def test_every_setting_has_a_flag_with_help():
    assert sorted(_FLAG_HELP) == sorted(f.name for f in FIELDS)
    # the help is written on the field itself: `name: type = setting(default, "what it means")`
    assert not [f.name for f in FIELDS if not f.metadata.get("help")], "Config fields without setting(default, help)"
    for command in ("serve", "demo"):
        sub = build_parser()._subparsers._group_actions[0].choices[command]
        options = {o for a in sub._actions for o in a.option_strings}
        assert {flag_name(f.name) for f in FIELDS} <= options


def _sample(f) -> tuple[str, object]:
    """A non-default value for the field, as env text and as the parsed value."""
    if f.type == "int":
        return "7", 7
    if f.type == "float":
        return "2.5", 2.5
    if f.type == "bool":
        return "true", True
    return "some-value", "some-value"


@pytest.mark.parametrize("f", FIELDS, ids=lambda f: f.name)
def test_flag_and_env_give_the_same_config(f):
    raw, value = _sample(f)
    from_env = Config.from_env({f"HAWKER_{f.name.upper()}": raw})
    args = build_parser().parse_args(["serve", flag_name(f.name)] if f.type == "bool"
                                     else ["serve", flag_name(f.name), raw])
    from_flag = Config.from_env({}, **{k: v for k, v in vars(args).items() if k in {x.name for x in FIELDS}})
    assert getattr(from_env, f.name) == getattr(from_flag, f.name) == value


def test_flag_overrides_env():
    args = build_parser().parse_args(["serve", "--port", "9001"])
    cfg = Config.from_env({"HAWKER_PORT": "9000"}, port=args.port)
    assert cfg.port == 9001


def test_env_names_cover_every_field():
    assert env_names() == [f"HAWKER_{f.name.upper()}" for f in FIELDS]


def test_python_dash_m_live_is_the_same_command():
    out = run_hawker("--help")
    assert out.returncode == 0
    for command in ("serve", "demo", "token"):
        assert command in out.stdout
