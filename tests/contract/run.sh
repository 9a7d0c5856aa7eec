#!/usr/bin/env bash
# Contract fuzzing (issue 7): schemathesis runs every operation of the committed openapi.yaml
# against a live server on SQLite with all of its checks (server errors, schema conformance,
# status codes, negative data, ignored auth, unsupported methods, use after free, object-level
# authorization between two people), a bounded number of examples per operation.
#
#   tests/contract/run.sh                    # 10 examples per operation
#   VICINITY_CONTRACT_EXAMPLES=100 tests/contract/run.sh
#
# Extra arguments go to `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples="${VICINITY_CONTRACT_EXAMPLES:-10}"
binary=target/debug/vicinity
[ -x "$binary" ] || cargo build --locked --quiet --bin vicinity
venv=target/contract-venv
"$venv/bin/python" -c '' 2>/dev/null || { rm -rf "$venv"; python3 -m venv "$venv"; }
"$venv/bin/pip" install -q -r tests/contract/requirements.txt

data="$(mktemp -d)"
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export VICINITY_DATA_DIR="$data" VICINITY_BIND="127.0.0.1:$port" RUST_LOG=warn \
  VICINITY_RATE_LIMIT_TOKEN=off VICINITY_RATE_LIMIT_ADDRESS=off
"$binary" serve > "$data/server.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.2; done
curl -sf "$base/readyz" > /dev/null || { cat "$data/server.log"; exit 1; }

# Two people, friends, each with a venue and check-ins of every visibility, so that the
# fuzzer has objects to read across accounts; and an administrator.
password="contract fuzzing password"
register() {
  curl -sf -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"$password\",\"display_name\":\"$1\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
ada="$(register ada)"
bob="$(register bob)"
call() { curl -sf -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+-d "$4"}; }
bob_id="$(call GET /v1/me "$bob" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
ada_id="$(call GET /v1/me "$ada" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
call POST /v1/me/friend-requests "$ada" "{\"user_id\":\"$bob_id\"}" > /dev/null
call POST "/v1/me/friend-requests/$ada_id/accept" "$bob" > /dev/null
for who in ada bob; do
  token="${!who}"
  venue="$(call POST /v1/venues "$token" \
    "{\"name\":\"$who's place\",\"category_id\":\"coffee\",\"allow_duplicate\":true,\"location\":{\"lat\":40.758,\"lng\":-73.9855}}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
  for visibility in public friends private; do
    call POST /v1/checkins "$token" \
      "{\"venue_id\":\"$venue\",\"visibility\":\"$visibility\",\"location\":{\"lat\":40.758,\"lng\":-73.9855,\"accuracy_m\":10}}" > /dev/null
  done
done
printf '%s\n' "$password" | "$binary" admin create-user --username operator --email operator@example.com --admin > /dev/null
admin="$("$binary" admin token --user operator --scope admin --ttl 1h)"

export VICINITY_CONTRACT_AUTH="$data/auth.json"
python3 - "$password" "$admin" > "$VICINITY_CONTRACT_AUTH" <<'PY'
import json, sys
password, admin = sys.argv[1], sys.argv[2]
def person(name):
    return {"name": name, "loginEndpointAuth": {
        "endpoint": "/v1/auth/login", "verb": "POST", "contentType": "application/json",
        "payloadRaw": json.dumps({"username": name, "password": password}),
        "token": {"extractFrom": "body", "extractSelector": "/access_token",
                  "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Bearer {token}"}}}
print(json.dumps({"auth": [person("ada"), person("bob"),
    {"name": "operator", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {admin}"}]}]}))
PY

# The fuzzer signs in as each person whenever it needs a token.
for who in ada bob; do
  curl -sf -X POST "$base/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$who\",\"password\":\"$password\"}" > /dev/null ||
    { echo "$who cannot sign in" >&2; exit 1; }
done

"$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml run openapi.yaml \
  --url "$base" --checks all --max-examples "$examples" --generation-deterministic \
  --exclude-path-regex '^/v1/(me|admin/users/\{user_id\}|admin/users/\{user_id\}/suspension)$' \
  "$@"
