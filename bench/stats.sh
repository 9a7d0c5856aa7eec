#!/usr/bin/env bash
# Admin statistics benchmark ("the stats endpoints on 5 M check-ins answer within a second"):
# on the population bench/nearby.sh builds (1,000,000 users, 5,000,000 check-ins over about
# 30 days, 200k venues), each of GET /v1/admin/venues/{id}/stats, /v1/admin/stats/top-venues,
# /v1/admin/stats/cells and /v1/admin/stats/overview beside the SQL aggregate it needs, run
# directly on PostgreSQL in the same run. Prints a Markdown table for docs/benchmarks.md.
#
#   bench/stats.sh                           # 3 warm-up + 20 measured requests per case
#   bench/stats.sh --runs 50 --explain       # EXPLAIN ANALYZE the SQL of cases over 1 s
#
# Uses the database vicinity_bench_<users> that bench/nearby.sh keeps, and populates it the
# same way when it is missing (about 8 minutes and 30 GB for 1M users). It adds one account,
# `benchadmin`, whose tokens it makes with `vicinity admin token`. Arguments go to
# `vicinity-bench stats`.
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), as on the project's machines; set
# VICINITY_BENCH_ADMIN_URL to use another server.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${VICINITY_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
users="${VICINITY_BENCH_USERS:-1000000}"
database="vicinity_bench_$users"
bench_url="${admin_url%/*}/$database"

cargo build --release --locked -p vicinity -p vicinity-bench

if ! psql "$admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
  echo "$database is missing: populating it as bench/nearby.sh does (about 8 minutes for 1M users)" >&2
  psql "$admin_url" -qc "CREATE DATABASE $database"
fi
# Does nothing when the database already holds this population.
./target/release/vicinity-bench populate --database-url "$bench_url" --users "$users"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(psql "$admin_url" -Atc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL, $(date -u +%Y-%m-%dT%H:%MZ)"
./target/release/vicinity-bench stats --database-url "$bench_url" "$@"
