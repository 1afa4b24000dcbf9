#!/usr/bin/env bash
# Sets up and runs the demo: an embedded Redis, a demo shop, the server. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/hawker demo "$@"
