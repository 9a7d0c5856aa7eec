#!/usr/bin/env bash
# Load test (issue 7): a realistic mix of the mobile app's requests against the server on
# PostgreSQL, for minutes, with wrk on loopback. Fails (exit 1) on any 5xx, any other answer
# outside 2xx (429 included: the mix sends only valid requests, with the rate limits off), any
# socket error or timeout, a server that dies, a check-in answered 201 but not in the database
# afterwards, or server memory that keeps growing. Prints p50/p90/p99 latency of the whole mix,
# throughput per request kind, answers by status and the server's RSS over the run.
#
#   bench/load.sh            # full: release build, vicinity_bench_1000000 (1M users, 5M
#                            # check-ins, as bench/nearby.sh keeps it), 30 s warm-up + 300 s
#   bench/load.sh --short    # CI: debug build, a fresh 10,000-user population in a database
#                            # of its own (dropped afterwards), 10 s warm-up + 90 s
#   bench/load.sh --duration 600 --connections 64 --people 20000
#   bench/load.sh --short --release   # the short mode on the release build
#
# The mix (bench/load.lua): 45 % GET /v1/me/nearby, 25 % GET /v1/feed, 5 % POST /v1/checkins
# (Idempotency-Key), 15 % PUT /v1/me/location, 10 % GET /v1/venues/search; each request as a
# person drawn at random from --people active people who share their location and are at a
# venue (tokens from `vicinity-bench tokens`), at positions a few metres from where they are
# (searches up to 500 m away).
#
# wrk is a closed loop: --connections connections each send their next request as soon as
# the answer to the last one arrives. The throughput is what the server carries with this mix
# on this machine, and the latency includes queueing at that load.
#
# Memory rule: the server's VmRSS is sampled every 2 s during the measured run. The first
# third is warm-up (caches fill, the allocator finds its size); the run fails if the median
# of the last third exceeds the median of the middle third by more than 10 % or 16 MiB,
# whichever is larger. A leak grows steadily and shows as a difference between those thirds;
# a bounded cache that is still filling or turning over stays inside that margin.
#
# Full mode uses the database vicinity_bench_<VICINITY_BENCH_USERS> (default 1000000) and
# populates it as bench/nearby.sh does when it is missing (about 8 minutes and 30 GB for 1M
# users); afterwards it deletes the check-ins and idempotency keys it wrote. Needs PostgreSQL
# on 127.0.0.1:5432 (user postgres, trust), as on the project's machines; set
# VICINITY_BENCH_ADMIN_URL to use another server. Installs wrk (Debian) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

mode=full
duration=""
warm_up=""
connections=""
people=""
release=0
while [ $# -gt 0 ]; do
  case "$1" in
    --short) mode=short ;;
    --release) release=1 ;;
    --duration) duration="$2"; shift ;;
    --warm-up) warm_up="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --people) people="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

admin_url="${VICINITY_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if [ "$mode" = short ]; then
  duration="${duration:-90}"; warm_up="${warm_up:-10}"; connections="${connections:-16}"
  people="${people:-10000}"
  users=10000
  database="vicinity_load_$$_$(date +%s)"
  profile=debug
  [ "$release" = 1 ] && profile=release
else
  duration="${duration:-300}"; warm_up="${warm_up:-30}"; connections="${connections:-32}"
  people="${people:-10000}"
  users="${VICINITY_BENCH_USERS:-1000000}"
  database="vicinity_bench_$users"
  profile=release
fi
bench_url="${admin_url%/*}/$database"
sample_every=2

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Performance figures come from release builds only (full mode). The short mode checks
# behaviour under load (status codes, durability, memory trend) and uses the debug build CI
# has already compiled: a release build would add 5-10 minutes of compiling on two cores.
if [ "$profile" = release ]; then
  cargo build --release --locked -p vicinity -p vicinity-bench
else
  # The same target set as `cargo test --workspace` (dev-dependencies included), so that the
  # features resolve alike and the binaries are the ones the tests already built.
  cargo build --locked --workspace --bins --tests
fi
vicinity="$root/target/$profile/vicinity"
bench="$root/target/$profile/vicinity-bench"

work="$(mktemp -d "${TMPDIR:-/tmp}/vicinity-load.XXXXXX")"
server_pid=""
sampler_pid=""
created_database=""
status=1
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/server.log" ]; then
    echo "--- last lines of the server's log ---" >&2
    tail -n 30 "$work/server.log" >&2 || true
  fi
  if [ -n "$created_database" ]; then
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $created_database WITH (FORCE)" || true
  fi
  rm -rf "$work"
}
trap 'status=$?; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$mode" = short ]; then
  psql "$admin_url" -qc "CREATE DATABASE $database"
  created_database="$database"
  # 20,000 venues rather than 200,000 keep the seed short in a debug build; the 10,000 users
  # live near them as in the full population.
  "$bench" populate --database-url "$bench_url" --vicinity "$vicinity" --users "$users" \
    --venues 20000
else
  if ! psql "$admin_url" -Atc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1; then
    echo "$database is missing: populating it as bench/nearby.sh does (about 8 minutes for 1M users)" >&2
    psql "$admin_url" -qc "CREATE DATABASE $database"
  fi
  # Does nothing when the database already holds this population.
  "$bench" populate --database-url "$bench_url" --vicinity "$vicinity" --users "$users"
fi

# Rows a previous run left behind (one that was killed) would only confuse the counts below.
psql "$bench_url" -qc "DELETE FROM checkins WHERE shout = 'load test'" \
  -c "DELETE FROM idempotency_keys WHERE key LIKE 'load-%'"
"$bench" tokens --database-url "$bench_url" --users "$people" \
  --key-file "$work/signing-key.pem" --out "$work/people.tsv"

# The server as bench/nearby.sh starts it: pool of 16, logging at warn, malloc on huge pages
# as in the Docker image, and the per-person and per-token limits lifted: the mix puts the
# load of a city on a few thousand people.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.hugetlb=1}"
DATABASE_URL="$bench_url" VICINITY_BIND=127.0.0.1:0 VICINITY_DATA_DIR="$work" \
  VICINITY_SIGNING_KEY_FILE="$work/signing-key.pem" \
  VICINITY_PUBLIC_URL=http://vicinity-bench.invalid VICINITY_TOKEN_AUDIENCE=vicinity-api \
  VICINITY_DB_POOL_SIZE=16 VICINITY_NEARBY_LIMIT=1000000/1s VICINITY_LOCATION_LIMIT=1000000/1s \
  VICINITY_RATE_LIMIT_TOKEN=off VICINITY_RATE_LIMIT_ADDRESS=off RUST_LOG=warn \
  "$vicinity" >"$work/server.out" 2>"$work/server.log" </dev/null &
server_pid=$!
base=""
for _ in $(seq 1 600); do
  base="$(sed -n 's/^Vicinity listening on //p' "$work/server.out" | head -n 1)"
  [ -n "$base" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "the server exited before listening" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "the server did not start listening" >&2; exit 1; }
started=$(date +%s)
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ]; do
  kill -0 "$server_pid" 2>/dev/null || { echo "the server exited while loading" >&2; exit 1; }
  [ $(($(date +%s) - started)) -lt 600 ] || { echo "the server never became ready" >&2; exit 1; }
  sleep 0.5
done
echo "server at $base ready after $(($(date +%s) - started)) s (read model loaded)"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }
rss_start=$(rss_kib)
threads=$(nproc)
[ "$threads" -gt "$connections" ] && threads=$connections
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $(psql "$admin_url" -Atc 'SHOW server_version' | cut -d' ' -f1), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "mode $mode ($profile build), database $database, $(wc -l <"$work/people.tsv") people, $connections connections, wrk threads $threads"

run_wrk() { # seconds, summary file
  VICINITY_LOAD_SUMMARY="$2" wrk --threads "$threads" --connections "$connections" \
    --duration "${1}s" --timeout 10s --script "$root/bench/load.lua" "$base" -- "$work/people.tsv"
}

echo
echo "== warm-up: $warm_up s (checked, not measured)"
run_wrk "$warm_up" "$work/warm-up.txt" >"$work/warm-up.out"
sed -n '/^answers by status/,/^$/p' "$work/warm-up.out"

echo "== measured: $duration s, server RSS every $sample_every s"
: >"$work/rss.txt"
(
  t=0
  while kill -0 "$server_pid" 2>/dev/null; do
    echo "$t $(rss_kib)" >>"$work/rss.txt"
    sleep "$sample_every"
    t=$((t + sample_every))
  done
) &
sampler_pid=$!
run_wrk "$duration" "$work/measured.txt"
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""

failed=()
kill -0 "$server_pid" 2>/dev/null || failed+=("the server died during the run")
peak_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0)
rss_end=$(rss_kib)

# Status codes and socket errors, warm-up and measured run alike.
for summary in "$work/warm-up.txt" "$work/measured.txt"; do
  phase="$(basename "$summary" .txt)"
  [ -s "$summary" ] || { failed+=("$phase: wrk wrote no summary"); continue; }
  while read -r _ code count; do
    if [ "$code" -ge 500 ]; then
      failed+=("$phase: $count answers with status $code (5xx)")
    elif [ "$code" -eq 429 ]; then
      failed+=("$phase: $count answers with status 429: a rate limit is on")
    elif [ "$code" -ge 300 ]; then
      failed+=("$phase: $count answers with status $code (every request of the mix is valid)")
    fi
  done < <(grep '^status ' "$summary")
  while read -r _ kind count; do
    [ "$count" -eq 0 ] || failed+=("$phase: $count socket errors ($kind)")
  done < <(grep '^socket_error ' "$summary")
done
answers=$(awk '$1 == "answers" {print $2}' "$work/measured.txt" 2>/dev/null || echo 0)
[ "${answers:-0}" -gt 0 ] || failed+=("no answers in the measured run")

# Memory: median of the last third against the middle third of the measured run's samples.
read -r samples middle last growth allowed slope < <(awk -v every="$sample_every" '
  { rss[NR] = $2 / 1024 }
  function median(from, to,   n, i, j, v, tmp) {
    n = 0
    for (i = from; i <= to; i++) v[++n] = rss[i]
    for (i = 2; i <= n; i++) { tmp = v[i]; for (j = i - 1; j >= 1 && v[j] > tmp; j--) v[j + 1] = v[j]; v[j + 1] = tmp }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  END {
    n = NR; third = int(n / 3)
    if (third < 2) { print n, 0, 0, 0, 0, 0; exit }
    m = median(third + 1, 2 * third); l = median(n - third + 1, n)
    allowed = m * 0.10; if (allowed < 16) allowed = 16
    # least-squares slope over the last two thirds, MiB per minute
    sx = sy = sxx = sxy = 0; k = 0
    for (i = third + 1; i <= n; i++) { x = (i - 1) * every / 60; k++; sx += x; sy += rss[i]; sxx += x * x; sxy += x * rss[i] }
    slope = (k * sxx - sx * sx) > 0 ? (k * sxy - sx * sy) / (k * sxx - sx * sx) : 0
    printf "%d %.1f %.1f %.1f %.1f %.2f\n", n, m, l, l - m, allowed, slope
  }' "$work/rss.txt")
if [ "$samples" -lt 6 ]; then
  failed+=("only $samples RSS samples: run longer to judge the memory trend")
elif awk -v g="$growth" -v a="$allowed" 'BEGIN { exit !(g > a) }'; then
  failed+=("server memory grew: median RSS of the last third $last MiB against $middle MiB in the middle third (+$growth MiB, allowed $allowed MiB)")
fi

# Stop the server gracefully, then check that every check-in answered 201 is in the database
# (committed before its answer). Requests still in flight when wrk stopped may add a few more.
kill -TERM "$server_pid" 2>/dev/null || true
server_exit=0
wait "$server_pid" || server_exit=$?
server_pid=""
[ "$server_exit" -eq 0 ] || failed+=("the server exited with status $server_exit on SIGTERM")
created=$(cat "$work/warm-up.txt" "$work/measured.txt" | awk '$1 == "status" && $2 == 201 {n += $3} END {print n + 0}')
stored=$(psql "$bench_url" -Atc "SELECT count(*) FROM checkins WHERE shout = 'load test'")
[ "$stored" -ge "$created" ] || failed+=("$created check-ins answered 201 but only $stored are in the database")
if [ "$mode" = full ]; then
  psql "$bench_url" -qc "DELETE FROM checkins WHERE shout = 'load test'" \
    -c "DELETE FROM idempotency_keys WHERE key LIKE 'load-%'"
fi

echo
echo "== summary ($mode, $profile build, $database, $connections connections, $duration s measured)"
awk -v s="$(awk '$1 == "seconds" {print $2}' "$work/measured.txt")" '
  $1 == "sent" { printf "  %-9s %8.1f req/s\n", $2, $3 / s }' "$work/measured.txt"
awk '$1 == "answers" {a = $2} $1 == "seconds" {s = $2} $1 ~ /_ms$/ {ms[$1] = $2}
  END { printf "  all       %8.1f req/s; latency ms p50 %.2f, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f\n",
        a / s, ms["p50_ms"], ms["p90_ms"], ms["p99_ms"], ms["p999_ms"], ms["max_ms"] }' "$work/measured.txt"
echo "  statuses: $(cat "$work/warm-up.txt" "$work/measured.txt" | awk '$1 == "status" {n[$2] += $3} END {for (c in n) printf "%s×%d ", c, n[c]}')"
echo "  check-ins answered 201: $created, in the database: $stored"
echo "  server RSS: $((rss_start / 1024)) MiB ready, $((rss_end / 1024)) MiB at the end, peak $((peak_kib / 1024)) MiB;" \
  "measured-run medians: middle third $middle MiB, last third $last MiB ($growth MiB, allowed $allowed); slope over the last two thirds $slope MiB/min ($samples samples)"
awk '{printf "%s%d", (NR > 1 ? " " : "  RSS MiB every '"$sample_every"' s: "), $2 / 1024} END {print ""}' "$work/rss.txt"

if [ ${#failed[@]} -gt 0 ]; then
  echo
  echo "FAILED:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  exit 1
fi
echo
echo "load test passed: no 5xx, no other answer outside 2xx, no socket errors, memory stable"
