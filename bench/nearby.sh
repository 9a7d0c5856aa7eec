#!/usr/bin/env bash
# "Who is nearby" and check-in benchmark (issue 4, DESIGN.md §8): a population of users with
# friends, check-ins and presence on PostgreSQL; GET /v1/me/nearby beside a bare actix-web
# JSON endpoint, and POST /v1/checkins beside pgbench's single-row insert transactions, each
# pair in the same run. Prints Markdown tables for docs/benchmarks.md.
#
#   bench/nearby.sh                          # 1,000,000 users × 200 friends (the §8 scale)
#   VICINITY_BENCH_USERS=10000 bench/nearby.sh --viewers 2000 --concurrency 1,16 --checkin-concurrency 0
#
# The populated database (vicinity_bench_<users>) is kept for the next run, since building the
# 1M population takes about 8 minutes and 30 GB; VICINITY_BENCH_FRESH=1 rebuilds it, and
# `dropdb vicinity_bench_<users>` removes it. Arguments go to `vicinity-bench nearby`.
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and pgbench, as on the project's
# machines; set VICINITY_BENCH_ADMIN_URL to use another server.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${VICINITY_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
users="${VICINITY_BENCH_USERS:-1000000}"
database="vicinity_bench_$users"
bench_url="${admin_url%/*}/$database"

command -v pgbench >/dev/null || { echo "pgbench is missing (Debian: postgresql-client)" >&2; exit 1; }
cargo build --release --locked -p vicinity -p vicinity-bench

if [ "${VICINITY_BENCH_FRESH:-0}" = 1 ]; then
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"
fi
if ! psql "$admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
  psql "$admin_url" -qc "CREATE DATABASE $database"
fi
./target/release/vicinity-bench populate --database-url "$bench_url" --users "$users"

# glibc's malloc may back its large blocks with transparent huge pages, as the Docker image
# lets it: the read model's tables are tens of megabytes read at random, and with 4 KiB pages
# nearly every lookup of a friend also misses the TLB. It applies to every process here alike
# (the bare server, the client and the server).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(psql "$admin_url" -Atc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL, $(date -u +%Y-%m-%dT%H:%MZ)"
./target/release/vicinity-bench nearby --database-url "$bench_url" "$@"
