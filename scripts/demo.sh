#!/usr/bin/env bash
# `npm run demo`: installs what is missing (Debian's servers, npm packages, the build),
# then runs `switchyard demo` (extra arguments are passed on, e.g. -- --port 7432).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node dist/cli.js demo "$@"
