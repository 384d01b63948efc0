#!/usr/bin/env bash
# Installs what `npm run bench` measures against (Debian packages; needs root), plus the
# project's own dependencies and build. Not part of install-deps.sh: CI does not run benches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
need=()
for p in haproxy:haproxy pgbouncer:pgbouncer pgpool2:pgpool sysbench:sysbench; do
  command -v "${p#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/${p#*:}" ] || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} ..."
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; fi
  # the packages' own services are not used (the bench starts its own instances)
  for s in haproxy pgbouncer pgpool2; do (service "$s" stop >/dev/null 2>&1 || true); done
fi
npm run build --silent
