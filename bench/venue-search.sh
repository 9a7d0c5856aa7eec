#!/usr/bin/env bash
# Venue search benchmark (issue 3, DESIGN.md §8): 200k seeded venues on PostgreSQL, 1 km
# searches through Vicinity's store and HTTP endpoint beside PostGIS ST_DWithin over a GiST
# index on the same rows, all in one run. Prints a Markdown table for docs/benchmarks.md.
#
#   bench/venue-search.sh [extra vicinity-bench arguments, e.g. --queries 5000]
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) as on the project's machines; set
# VICINITY_BENCH_ADMIN_URL to use another server. Installs Debian's postgresql-<major>-postgis-3
# when it is missing and this runs as root; otherwise the PostGIS rows say "skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${VICINITY_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
database="vicinity_bench"
bench_url="${admin_url%/*}/$database"

major="$(psql "$admin_url" -Atc "SELECT current_setting('server_version_num')::int / 10000")"
if ! psql "$admin_url" -Atc "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'" | grep -q 1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing postgresql-$major-postgis-3 for the PostGIS baseline" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$major-postgis-3" >/dev/null \
      || echo "PostGIS could not be installed: the baseline will be skipped" >&2
  else
    echo "PostGIS is not installed (postgresql-$major-postgis-3): the baseline will be skipped" >&2
  fi
fi

cargo build --release --locked -p vicinity -p vicinity-bench

# A fresh database each run, so every run measures the same 200k rows.
psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
trap 'psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $major, $(date -u +%Y-%m-%dT%H:%MZ)"
./target/release/vicinity-bench venue-search --database-url "$bench_url" "$@"
