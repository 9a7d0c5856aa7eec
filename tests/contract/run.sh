#!/usr/bin/env bash
# Contract fuzzing (issue 7): schemathesis runs every operation of the committed openapi.yaml
# against a live server on SQLite with all of its checks (server errors, schema conformance,
# status codes, negative data, ignored auth, unsupported methods, use after free, object-level
# authorization between two people), a bounded number of examples per operation. Exits non-zero
# on any failure.
#
#   tests/contract/run.sh                    # 10 examples per operation
#   VICINITY_CONTRACT_EXAMPLES=100 tests/contract/run.sh
#
# Extra arguments go to every `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples="${VICINITY_CONTRACT_EXAMPLES:-10}"
binary=target/debug/vicinity
[ -x "$binary" ] || cargo build --locked --quiet --bin vicinity
venv=target/contract-venv
"$venv/bin/python" -c '' 2>/dev/null || { rm -rf "$venv"; python3 -m venv "$venv"; }
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/contract/requirements.txt

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

json() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
password="contract fuzzing password"
register() {
  curl -sf -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"$password\",\"display_name\":\"$1\"}" |
    json access_token
}
call() { curl -sf -X "$1" "$base$2" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' ${4:+-d "$4"}; }

# Two people who are friends, each with a venue, check-ins of every visibility and a position
# next to the other's (so the nearby stream has events), for the fuzzer to read across
# accounts.
people() {
  local a="$1" b="$2" a_token b_token a_id b_id
  a_token="$(register "$a")"
  b_token="$(register "$b")"
  a_id="$(call GET /v1/me "$a_token" | json id)"
  b_id="$(call GET /v1/me "$b_token" | json id)"
  call POST /v1/me/friend-requests "$a_token" "{\"user_id\":\"$b_id\"}" > /dev/null
  call POST "/v1/me/friend-requests/$a_id/accept" "$b_token" > /dev/null
  for token in "$a_token" "$b_token"; do
    local venue
    venue="$(call POST /v1/venues "$token" \
      '{"name":"Corner place","category_id":"coffee","allow_duplicate":true,"location":{"lat":40.758,"lng":-73.9855}}' |
      json id)"
    for visibility in public friends private; do
      call POST /v1/checkins "$token" \
        "{\"venue_id\":\"$venue\",\"visibility\":\"$visibility\",\"location\":{\"lat\":40.758,\"lng\":-73.9855,\"accuracy_m\":10}}" > /dev/null
    done
    call PUT /v1/me/location "$token" '{"location":{"lat":40.758,"lng":-73.9855,"accuracy_m":10}}' > /dev/null
  done
}

# An administrator's token (an operator's `vicinity admin token`), and an app: a confidential
# client with its client-credentials token for /v1/app/*, and its HTTP Basic credentials for
# the endpoints that authenticate a client.
administrator() {
  printf '%s\n' "$password" | "$binary" admin create-user --username "$1" --email "$1@example.com" --admin > /dev/null
  "$binary" admin token --user "$1" --scope admin --ttl 1h
}
app() {
  "$binary" admin create-client --name "$1" --type confidential --scopes 'profile checkins:read' \
    --redirect-uri https://app.example.com/callback
}

# The Web Fuzzing Commons document of one pass: its two people (peers for the object-level
# authorization check), its administrator and its app, in the order schemathesis escalates
# through when an operation refuses an identity. The people sign in through the login
# endpoint (`login`), or hold a token signed in once beforehand (`token`): in the pass that
# deletes accounts, a deleted person's token is refused with 401 and schemathesis moves on,
# where signing in again would fail and end the operation with an authentication error.
identities() {
  python3 - "$base" "$password" "$@" <<'PY'
import base64, json, sys, urllib.request
base, password, a, b, admin_token, client, mode = sys.argv[1:]
# Entries are named by role, so that schemathesis.toml names the same peers in both passes.
client = json.loads(client)
def bearer(role, token):
    return {"name": role, "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}]}
def person(role, name):
    if mode == "token":
        login = urllib.request.Request(
            f"{base}/v1/auth/login", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"username": name, "password": password}).encode())
        with urllib.request.urlopen(login) as answer:
            return bearer(role, json.load(answer)["access_token"])
    return {"name": role, "loginEndpointAuth": {
        "endpoint": "/v1/auth/login", "verb": "POST", "contentType": "application/json",
        "payloadRaw": json.dumps({"username": name, "password": password}),
        "token": {"extractFrom": "body", "extractSelector": "/access_token",
                  "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Bearer {token}"}}}
basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
print(json.dumps({"auth": [
    person("person", a), person("friend", b),
    bearer("operator", admin_token),
    {"name": "app", "loginEndpointAuth": {
        "endpoint": "/oauth/token", "verb": "POST", "contentType": "application/x-www-form-urlencoded",
        "payloadRaw": f"grant_type=client_credentials&client_id={client['client_id']}"
                      f"&client_secret={client['client_secret']}",
        "token": {"extractFrom": "body", "extractSelector": "/access_token",
                  "sendIn": "header", "sendName": "Authorization", "sendTemplate": "Bearer {token}"}}},
    {"name": "client", "fixedHeaders": [{"name": "Authorization", "value": f"Basic {basic}"}]},
]}))
PY
}

status=0
fuzz() {
  local auth="$1"
  shift
  VICINITY_CONTRACT_AUTH="$auth" "$venv/bin/schemathesis" --config-file tests/contract/schemathesis.toml run openapi.yaml \
    --url "$base" --max-examples "$examples" --generation-deterministic "$@" || status=1
}

# The operations that end an identity: deleting one's own account, and an administrator
# deleting, suspending or demoting an account. They run in a second pass of their own, with
# identities made for it, so that the first pass keeps its people.
ending='^(DELETE /v1/me|DELETE /v1/admin/users/\{user_id\}|PUT /v1/admin/users/\{user_id\}/suspension|DELETE /v1/admin/users/\{user_id\}/admin)$'

people ada bob
identities ada bob "$(administrator operator)" "$(app 'Contract app')" login > "$data/auth.json"
fuzz "$data/auth.json" --exclude-name-regex "$ending" "$@"

people cleo dan
identities cleo dan "$(administrator operator2)" "$(app 'Contract app 2')" token > "$data/auth-ending.json"
fuzz "$data/auth-ending.json" --include-name-regex "$ending" "$@"

exit "$status"
