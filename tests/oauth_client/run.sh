#!/usr/bin/env bash
# End-to-end checks against a real server. OAuth (issue 5):
#  - a third-party app written with Python's authlib: RFC 8414 discovery, authorization code
#    with PKCE S256, `state` and `iss` on the redirect, /v1/me, refresh with rotation,
#    revocation; a public client and a confidential one (client_secret_basic);
#  - the sign-in and consent page in headless Chromium (Selenium, JavaScript off): approve,
#    deny, wrong password; screenshots in target/artifacts/.
# Operations (issue 6): /metrics read by prometheus_client's parser, and the SVG heat map of
# check-ins per cell rendered in headless Chromium (target/artifacts/heatmap.png).
# Builds the binary, starts it on a free loopback port with a fresh SQLite database in a temp
# dir, registers the apps with the CLI, creates a user, runs pytest, and always stops the
# server and removes the temp dir. Exits non-zero on any failure.
#
# Needs: chromium and chromium-driver (Debian), and a Python with
# tests/oauth_client/requirements.txt: target/oauth-venv by default (see README), or
# OAUTH_E2E_PYTHON=/path/to/python. Extra arguments go to pytest (e.g. -k browser).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

python="${OAUTH_E2E_PYTHON:-$root/target/oauth-venv/bin/python}"
if ! "$python" -c 'import authlib, requests, selenium, pytest, prometheus_client' 2>/dev/null; then
  echo "error: $python lacks the test dependencies; create it with:" >&2
  echo "  python3 -m venv target/oauth-venv && target/oauth-venv/bin/pip install -r tests/oauth_client/requirements.txt" >&2
  exit 1
fi
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$tool" ] || { echo "error: $tool is missing: apt-get install chromium chromium-driver" >&2; exit 1; }
done

if [ -z "${VICINITY_BIN:-}" ]; then
  echo "building: cargo build --locked"
  timeout 1800 cargo build --locked --quiet
  VICINITY_BIN="$root/target/debug/vicinity"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/vicinity-oauth-e2e.XXXXXX")"
server_pid=""
status=1
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -f "$work/server.log" ]; then
    echo "--- last lines of the server's log ---" >&2
    tail -n 40 "$work/server.log" >&2 || true
  fi
  rm -rf "$work"
}
trap 'status=$?; cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export VICINITY_DATA_DIR="$work"
export DATABASE_URL="sqlite://$work/vicinity.db"
export VICINITY_LOG_FORMAT=json
export VICINITY_SHUTDOWN_TIMEOUT=5s
export RUST_LOG="${RUST_LOG:-info}"

# The issuer must be the server's own base URL, so the port is chosen here (binding port 0
# would leave the issuer at http://127.0.0.1:0); on the rare clash with another process, retry.
base_url=""
for attempt in 1 2 3; do
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  VICINITY_BIND="127.0.0.1:$port" VICINITY_PUBLIC_URL="http://127.0.0.1:$port" \
    VICINITY_STATS_MIN_VISITORS=1 "$VICINITY_BIN" >"$work/server.out" 2>"$work/server.log" </dev/null &
  server_pid=$!
  for _ in $(seq 1 300); do
    grep -q "^Vicinity listening on http://127.0.0.1:$port\$" "$work/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "^Vicinity listening on http://127.0.0.1:$port\$" "$work/server.out" 2>/dev/null; then
    base_url="http://127.0.0.1:$port"
    break
  fi
  echo "server did not start on port $port (attempt $attempt)" >&2
  tail -n 5 "$work/server.log" >&2 || true
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
done
[ -n "$base_url" ] || { echo "error: the server would not start" >&2; exit 1; }
echo "server: $base_url (pid $server_pid, data in $work)"

# Ready: /readyz says the database answers and the read model is loaded.
"$python" - "$base_url" <<'EOF'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(sys.argv[1] + "/readyz", timeout=2) as response:
            if response.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("error: /readyz did not answer 200 within 30 s")
    time.sleep(0.2)
EOF

# The apps, registered by the operator's CLI as the README says.
create_client() {
  timeout 60 "$VICINITY_BIN" admin create-client --name "$1" --type "$2" \
    --redirect-uri http://127.0.0.1/callback --scopes "profile checkins:read" 2>>"$work/cli.log"
}
public_json="$(create_client "Trail Log" public)"
confidential_json="$(create_client "Trail Log Sync" confidential)"
field() { "$python" -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
OAUTH_E2E_PUBLIC_CLIENT_ID="$(field "$public_json" client_id)"
OAUTH_E2E_CONFIDENTIAL_CLIENT_ID="$(field "$confidential_json" client_id)"
OAUTH_E2E_CONFIDENTIAL_CLIENT_SECRET="$(field "$confidential_json" client_secret)"
echo "clients: public $OAUTH_E2E_PUBLIC_CLIENT_ID, confidential $OAUTH_E2E_CONFIDENTIAL_CLIENT_ID"

# The person who signs in.
OAUTH_E2E_USERNAME="trailwalker"
OAUTH_E2E_PASSWORD="$("$python" -c 'import secrets; print("pw-" + secrets.token_urlsafe(18))')"
"$python" - "$base_url" "$OAUTH_E2E_USERNAME" "$OAUTH_E2E_PASSWORD" <<'EOF'
import json, sys, urllib.request
base, username, password = sys.argv[1:]
body = json.dumps({"username": username, "email": f"{username}@example.com", "password": password})
request = urllib.request.Request(base + "/v1/auth/register", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=15) as response:
    assert response.status == 201, response.status
EOF
echo "user: $OAUTH_E2E_USERNAME"

# An operator's admin token, made by the CLI as the README says.
echo "night shift passphrase $RANDOM$RANDOM" | timeout 60 "$VICINITY_BIN" admin create-user \
  --username operator --email operator@example.com --admin >/dev/null 2>>"$work/cli.log"
OAUTH_E2E_ADMIN_TOKEN="$(VICINITY_PUBLIC_URL="$base_url" timeout 60 "$VICINITY_BIN" admin token \
  --user operator --scope admin --ttl 1h 2>>"$work/cli.log")"
export OAUTH_E2E_ADMIN_TOKEN

export OAUTH_E2E_BASE_URL="$base_url" OAUTH_E2E_PUBLIC_CLIENT_ID OAUTH_E2E_CONFIDENTIAL_CLIENT_ID \
  OAUTH_E2E_CONFIDENTIAL_CLIENT_SECRET OAUTH_E2E_USERNAME OAUTH_E2E_PASSWORD
export OAUTH_E2E_ARTIFACTS="$root/target/artifacts"
export OAUTH_E2E_CHROMIUM=/usr/bin/chromium OAUTH_E2E_CHROMEDRIVER=/usr/bin/chromedriver
# Selenium must use the driver given to it and never fetch one.
export SE_OFFLINE=true
mkdir -p "$OAUTH_E2E_ARTIFACTS"

timeout -k 10 600 "$python" -m pytest tests/oauth_client -p no:cacheprovider -v "$@"
echo "screenshots: $OAUTH_E2E_ARTIFACTS/oauth-sign-in.png, $OAUTH_E2E_ARTIFACTS/oauth-consent.png"
