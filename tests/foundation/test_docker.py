"""Docker cannot run here: check that the Dockerfile and docker-compose.yml only use commands, flags
and HAWKER_* variables the CLI and Config accept, and that the pieces fit together."""
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from live.cli import build_parser
from live.config import env_names

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
HUBS = {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build") or svc.get("image", "").startswith("hawker")}


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _exec_form(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def _parse_hawker(argv: list[str]) -> None:
    """argparse exits on unknown commands/flags; turn that into a test failure naming them."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`hawker {' '.join(argv)}` is not accepted by the CLI (exit {exc.code})")


def test_dockerfile_is_multistage_slim_and_non_root():
    ins = _instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) >= 2 and all(f.startswith("python:3.11-slim") for f in froms)
    users = [rest for op, rest in ins if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [rest for op, rest in ins if op == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]


def test_dockerfile_entrypoint_and_env_are_known_to_the_cli():
    ins = _instructions()
    entry = _exec_form([rest for op, rest in ins if op == "ENTRYPOINT"][-1])
    cmd = _exec_form([rest for op, rest in ins if op == "CMD"][-1]) if any(op == "CMD" for op, _ in ins) else []
    assert entry[:2] == ["hawker", "serve"]
    _parse_hawker(entry[1:] + cmd)
    env_vars = set()
    for op, rest in ins:
        if op == "ENV":
            env_vars |= set(re.findall(r"\b(HAWKER_[A-Z0-9_]+)=", rest))
    assert env_vars, "the image sets its defaults through HAWKER_* variables"
    assert env_vars <= set(env_names()), env_vars - set(env_names())
    every_mention = set(re.findall(r"\bHAWKER_[A-Z0-9_]+", DOCKERFILE))
    assert every_mention <= set(env_names()), every_mention - set(env_names())


def test_compose_has_redis_with_aof_two_hubs_and_a_websocket_load_balancer():
    services = COMPOSE["services"]
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert len(HUBS) >= 2
    lb = services["lb"]
    conf_path = next(v.split(":")[0] for v in lb["volumes"] if v.split(":")[1].endswith("nginx.conf"))
    conf = (REPO / conf_path).read_text()
    assert "proxy_set_header Upgrade $http_upgrade" in conf and "location /socket.io/" in conf
    upstream = set(re.findall(r"server\s+([\w-]+):(\d+)", conf))
    ports = {name: svc["environment"].get("HAWKER_PORT", "8080") for name, svc in HUBS.items()}
    assert upstream == {(name, str(port)) for name, port in ports.items()}


def test_compose_commands_and_variables_are_known_to_the_cli():
    entry = ["serve"]  # the image's ENTRYPOINT is `hawker serve`; compose `command:` adds flags
    for name, svc in HUBS.items():
        command = svc.get("command", [])
        command = shlex.split(command) if isinstance(command, str) else list(command)
        _parse_hawker(entry + command)
        env = svc.get("environment", {})
        keys = set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}
        hawker_keys = {k for k in keys if k.startswith("HAWKER_")}
        assert hawker_keys <= set(env_names()), (name, hawker_keys - set(env_names()))
        assert "HAWKER_SECRET" in hawker_keys and "HAWKER_REDIS_URL" in hawker_keys
        assert "HAWKER_PAYMENT_PROVIDER" in hawker_keys, f"{name}: `hawker serve` refuses to start without it"
        assert env["HAWKER_REDIS_URL"].startswith("redis://redis:")
    text = (REPO / "docker-compose.yml").read_text()
    mentioned = set(re.findall(r"\bHAWKER_[A-Z0-9_]+", text))
    assert mentioned <= set(env_names()), mentioned - set(env_names())
    for m in re.finditer(r"hawker ((?:token|serve|demo)[^\n]*)", text):  # commands in comments too
        _parse_hawker(shlex.split(m.group(1)))


def test_every_documented_server_run_chooses_a_payment_provider():
    """`hawker serve` exits 2 without HAWKER_PAYMENT_PROVIDER: the documented commands must set it."""
    readme = (REPO / "README.md").read_text()
    runs = re.findall(r"docker run (?:[^\n]*\\\n)*[^\n]*", readme + "\n" + DOCKERFILE.replace("#", ""))
    runs += re.findall(r"[^\n]*docker compose up[^\n]*", readme)
    assert runs
    for run in runs:
        assert "HAWKER_PAYMENT_PROVIDER=" in run, run


def test_the_image_copies_every_package_the_wheel_ships():
    """A package left out of the build stage would import-fail only inside the image."""
    import tomllib

    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = {rest.split()[0] for op, rest in _instructions() if op == "COPY" and not rest.startswith("--")}
    missing = sorted(p for p in packages if p not in copied)
    assert not missing, f"Dockerfile does not COPY {missing}"
