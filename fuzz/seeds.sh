#!/usr/bin/env bash
# Writes the seed corpora's signed inputs (fuzz/corpus/*/seed-*): real access tokens signed
# with the fuzz targets' fixed test key (Ed25519 seed 0x2a x 32, see fuzz_targets/jwt.rs) and
# cursors sealed with the cursor target's key ([7; 32]). Needs openssl 3 and basenc. The other
# seeds are plain text, written by hand.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

b64url() { basenc --base64url | tr -d '=\n'; }

# The key as PKCS#8 PEM: the DER prefix of an Ed25519 private key, then the 32-byte seed.
{
  echo "-----BEGIN PRIVATE KEY-----"
  { printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'
    for _ in $(seq 32); do printf '\x2a'; done; } | base64
  echo "-----END PRIVATE KEY-----"
} > "$tmp/key.pem"
x="$(openssl pkey -in "$tmp/key.pem" -pubout -outform DER | tail -c 32 | b64url)"
# RFC 7638 thumbprint, as SigningKeys computes the kid.
kid="$(printf '{"crv":"Ed25519","kty":"OKP","x":"%s"}' "$x" | openssl dgst -sha256 -binary | b64url)"

jwt() { # name header-json claims-json
  local message
  message="$(printf %s "$2" | b64url).$(printf %s "$3" | b64url)"
  printf %s "$message" > "$tmp/message"
  printf '%s.%s' "$message" \
    "$(openssl pkeyutl -sign -inkey "$tmp/key.pem" -rawin -in "$tmp/message" | b64url)" \
    > "corpus/jwt/seed-$1"
}
person_scopes="profile checkins:read checkins:write friends:read friends:write location:read location:write venues:write"
jwt person "{\"typ\":\"at+jwt\",\"alg\":\"EdDSA\",\"kid\":\"$kid\"}" \
  "{\"iss\":\"https://vicinity.example\",\"sub\":\"usr_0000000000007\",\"aud\":\"vicinity-api\",\"exp\":4102444800,\"iat\":1767225600,\"jti\":\"0123456789abcdef0123456789abcdef\",\"client_id\":\"vicinity\",\"scope\":\"$person_scopes\",\"sid\":\"tfm_0000000000009\"}"
jwt client "{\"typ\":\"application/at+jwt\",\"alg\":\"EdDSA\",\"kid\":\"$kid\"}" \
  "{\"iss\":\"https://vicinity.example\",\"sub\":\"app_fuzz\",\"aud\":\"vicinity-api\",\"exp\":4102444800,\"iat\":1767225600,\"nbf\":1767225600,\"jti\":\"fedcba9876543210fedcba9876543210\",\"client_id\":\"app_fuzz\",\"scope\":\"admin\",\"sid\":\"tfm_000000000000a\"}"
jwt expired "{\"typ\":\"at+jwt\",\"alg\":\"EdDSA\",\"kid\":\"$kid\"}" \
  "{\"iss\":\"https://vicinity.example\",\"sub\":\"usr_0000000000007\",\"aud\":\"vicinity-api\",\"exp\":1767226500,\"iat\":1767225600,\"jti\":\"00000000000000000000000000000000\",\"client_id\":\"app_fuzz\",\"scope\":\"profile\",\"sid\":\"tfm_0000000000009\"}"

# Cursors: position || first 16 bytes of HMAC-SHA256(key, be64(len(list)) || list || position).
cursor() { # list position-as-printf-escapes
  local list="$1"
  printf "$2" > "$tmp/position"
  { printf "$(printf '%016x' "${#list}" | sed 's/../\\x&/g')"
    printf %s "$list"
    cat "$tmp/position"; } > "$tmp/mac-input"
  { cat "$tmp/position"
    openssl dgst -sha256 -mac HMAC -macopt hexkey:"$(printf '07%.0s' $(seq 32))" -binary \
      < "$tmp/mac-input" | head -c 16; } | b64url
}
feed_position='\x00\x00\x00\x00\x69\x55\xb9\x00\x00\x00\x00\x00\x00\x00\x00\x2a'
sealed="$(cursor feed:usr_0000000000007 "$feed_position")"
printf %s "$sealed" > corpus/cursor/seed-sealed
printf 'limit=10&cursor=%s' "$sealed" > corpus/cursor/seed-page
echo "kid $kid; cursor $sealed"
