#!/usr/bin/env bash
# `npm test`: installs what is missing (scripts/install-deps.sh), then runs the unit and
# integration tests. Extra arguments go to vitest (e.g. `npm test -- test/unit/sql`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec npx vitest run "$@"
