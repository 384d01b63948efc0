#!/usr/bin/env bash
# Installs what switchyard's tests and demo need on a fresh Debian/Ubuntu machine:
#   1. Debian's server packages (PostgreSQL 15 + contrib, MariaDB server + client, Patroni + etcd, the
#      Python drivers used by the driver tests), only when missing and only as root;
#   2. stops any database service the package install started on the default ports
#      (our tests start their own servers on random ports);
#   3. npm packages (npm ci) when node_modules is missing or older than the lock file;
#   4. the TypeScript build (dist/) when it is missing or older than src/.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have_pg() { [ -x /usr/lib/postgresql/15/bin/postgres ] && [ -f /usr/share/postgresql/15/extension/pg_stat_statements.control ] && [ -x /usr/lib/postgresql/15/bin/pgbench ]; }
# Debian 12's postgresql-15 carries contrib (pg_stat_statements) and pgbench: it provides the
# virtual package postgresql-contrib-15, so there is no separate one to install.
have_pg || need_pkgs+=(postgresql-15 postgresql-client-15)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need_pkgs+=(mariadb-client)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# Debian's python3 (not a pyenv one on PATH) is the one the driver tests run.
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || need_pkgs+=(python3-psycopg2)
/usr/bin/python3 -c 'import pymysql' >/dev/null 2>&1 || need_pkgs+=(python3-pymysql)
# sysbench (oltp_read_write / oltp_read_only) through the MySQL proxy.
command -v sysbench >/dev/null 2>&1 || need_pkgs+=(sysbench)
# pgjdbc for the JDBC driver tests (run as `java File.java`, which needs a JDK).
[ -f /usr/share/java/postgresql.jar ] || need_pkgs+=(libpostgresql-jdbc-java)
# MariaDB Connector/J for the MySQL JDBC test (test/integration/mysql-connectorj.test.ts).
[ -f /usr/share/java/mariadb-java-client.jar ] || need_pkgs+=(libmariadb-java)
command -v javac >/dev/null 2>&1 || need_pkgs+=(default-jdk-headless)
# Prometheus (and promtool) for the scrape and alert-rule tests; Chromium for the stats page test.
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || need_pkgs+=(prometheus)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
# Patroni and etcd for the Patroni discovery test (test/integration/topology-patroni.test.ts).
command -v patroni >/dev/null 2>&1 || need_pkgs+=(patroni)
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need_pkgs[*]} (run as root, or: sudo apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need_pkgs[*]}"
  # policy-rc.d keeps the packages from starting their default services (ports 5432/3306).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
  # 2. In case a service started anyway (systemd-less images ignore policy-rc.d rarely).
  (service postgresql stop || true; service mariadb stop || true; service prometheus stop || true; service etcd stop || true; service patroni stop || true) >/dev/null 2>&1
fi

# 3. npm packages.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  npm ci --no-audit --no-fund
fi
# 4. Build.
if [ ! -f dist/cli.js ] || [ -n "$(find src -newer dist/cli.js -name '*.ts' -print -quit)" ]; then
  npm run build
fi
