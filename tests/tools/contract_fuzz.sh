#!/usr/bin/env bash
# Runs schemathesis against a fresh demo clinic, once per role (patient, counsellor, admin,
# integration, and no token at all), with every check and every phase.
#
#   python3 -m venv /tmp/st && /tmp/st/bin/pip install schemathesis
#   ST=/tmp/st/bin/st BIN=target/release/aftercare bash tests/tools/contract_fuzz.sh [extra st args]
#
# Each role gets its own fresh database and server, so what one role's requests change
# (a sign-out, a disabled user, a rotated secret) cannot turn another role's run into 401s.
# Reports go to $OUT (default /tmp/contract-fuzz): one JUnit file and one log per role.
# Exits non-zero when any role's run reported a failure.
set -u
ST=${ST:-st}
BIN=${BIN:-target/release/aftercare}
OUT=${OUT:-/tmp/contract-fuzz}
MAX_EXAMPLES=${MAX_EXAMPLES:-50}
ROLES=${ROLES:-"anonymous patient counsellor admin integration"}
PASSWORD=demo-password-2026
mkdir -p "$OUT"
status=0

login() { # email [enrol] -> access token; with "enrol", a second factor is turned on too, so
  # that the fuzzer's own `PUT /v1/organisation/security {"staff_mfa":"required"}` does not
  # close the rest of the run to the staff member.
  python3 - "$URL" "$1" "$PASSWORD" "${2:-}" <<'PY'
import base64, hashlib, hmac, json, struct, sys, time, urllib.request
url, email, password, enrol = sys.argv[1:]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json",
                 **({"authorization": "Bearer " + token} if token else {})})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)
token = call("POST", "/v1/auth/login", {"email": email, "password": password})["access_token"]
if enrol:
    secret = call("POST", "/v1/me/mfa/totp", None, token)["secret"]
    call("POST", "/v1/me/mfa/totp/confirm", {"code": totp(secret, int(time.time()) // 30)}, token)
print(token)
PY
}

for role in $ROLES; do
  dir=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  URL=http://127.0.0.1:$port
  export AFTERCARE_DATABASE_URL="sqlite://$dir/db.sqlite" AFTERCARE_BIND="127.0.0.1:$port"
  # Sign-in throttling would turn a fuzzer's wrong passwords into 429s for the whole run;
  # it is exercised by its own tests.
  export AFTERCARE_LOGIN_MAX_FAILURES=100 AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS=10000
  export AFTERCARE_ACCESS_TOKEN_TTL_SECS=3600 AFTERCARE_LOG=warn
  "$BIN" demo >"$dir/demo.txt" || { echo "demo failed"; exit 2; }
  "$BIN" >"$OUT/$role.server.log" 2>&1 &
  server=$!
  ready=
  for _ in $(seq 50); do curl -sf "$URL/health/ready" >/dev/null && ready=1 && break; sleep 0.2; done
  [ -n "$ready" ] || { echo "the server did not start; see $OUT/$role.server.log"; exit 2; }

  args=()
  case $role in
    anonymous) ;;
    patient) args=(-H "Authorization: Bearer $(login priya.raman@harbour-demo.example.org)") ;;
    counsellor) args=(-H "Authorization: Bearer $(login alex.rivera@harbour-demo.example.org enrol)") ;;
    admin) args=(-H "Authorization: Bearer $(login admin@harbour-demo.example.org enrol)") ;;
    integration)
      id=$(awk '/client_id/ {print $2; exit}' "$dir/demo.txt")
      secret=$(awk '/client_secret/ {print $2; exit}' "$dir/demo.txt")
      token=$(curl -sf "$URL/oauth/token" -u "$id:$secret" -d grant_type=client_credentials |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
      args=(-H "Authorization: Bearer $token")
      ;;
  esac
  # A failed sign-in would leave an empty token, and a run of 401s that passes.
  if [ "$role" != anonymous ] && [ "${args[1]}" = "Authorization: Bearer " ]; then
    echo "could not sign in as the $role"; exit 2
  fi
  echo "== $role"
  # Signing out, changing the password, closing the account or turning a factor off would
  # end the session every later request relies on, and the alert stream never ends; those
  # operations have their own tests.
  "$ST" --config-file "$(dirname "$0")/schemathesis.toml" run "$URL/openapi.json" "${args[@]}" --checks all --max-examples "$MAX_EXAMPLES" \
    --exclude-name 'POST /v1/auth/logout' --exclude-name 'POST /v1/me/password' \
    --exclude-name 'DELETE /v1/me' --exclude-name 'DELETE /v1/me/mfa/totp' \
    --exclude-name 'GET /v1/alerts/stream' \
    --report junit --report-junit-path "$OUT/$role.xml" --no-color "$@" \
    >"$OUT/$role.log" 2>&1 || status=1
  tail -25 "$OUT/$role.log"
  kill "$server" 2>/dev/null
  wait "$server" 2>/dev/null
  rm -rf "$dir"
done
exit $status
