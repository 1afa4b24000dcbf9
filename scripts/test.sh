#!/usr/bin/env bash
# Sets up everything the tests need (scripts/setup.sh dev) and runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/foundation -x
# Exit status: pytest's; "no tests collected" (pytest's 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
set +e
.venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
code=$?
set -e
if [ $code -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 5
fi
exit $code
