#!/usr/bin/env bash
# Install the system packages the tests and the demo need, if they are missing:
# kubectl (must already be there: it comes with the base image), PostgreSQL 15 server and client
# tools, PgBouncer (the tests through a connection pooler), Prometheus, Redis, shellcheck
# (the scripts' test) and zsh (the kubectl plugin's zsh completion test). Uses apt-get as
# root; prints what to install otherwise.
set -euo pipefail

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v pg_restore >/dev/null 2>&1 || need+=(postgresql-client-15)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v zsh >/dev/null 2>&1 || need+=(zsh)

if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl is missing; the end-to-end tests drive the emulated cluster with it" >&2
  exit 1
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "missing system packages: ${need[*]} (install them with apt-get as root)" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
