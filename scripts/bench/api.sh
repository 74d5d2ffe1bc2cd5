#!/usr/bin/env bash
# scripts/bench/api.sh -- online issuance over the network: `sigil serve` vs `cfssl serve`.
#
# Same work for both: the same N pre-generated P-256 CSRs (distinct CNs, one DNS SAN each), signed
# by a P-256 CA key (Sigil: the intermediate its zero-config start creates under a P-384 root;
# cfssl: a P-256 root from `cfssl gencert -initca`, as in shared/peers/cfssl.sh), both over HTTPS
# on 127.0.0.1 with keep-alive, both at their default log level. Scenarios, each a closed-loop load
# of CONNECTIONS keep-alive connections for DURATION seconds after WARMUP_S seconds of warm-up:
#   (a) sigil  POST /api/v1/certificates {"csr", "profile": "tls-server"}      -> 201 expected
#   (b) sigil  GET  /api/v1/certificates?limit=READ_LIMIT (inventory after a)   -> 200 expected
#   (c) cfssl  POST /api/v1/cfssl/sign {"certificate_request", "hosts"}       -> 200 + "success":true
#   (d) sigil  POST /api/v1/certificates, one node on PostgreSQL               -> 201 expected
#   (e) sigil  POST /api/v1/certificates, two nodes on the same PostgreSQL database, CONNECTIONS/2
#       connections to each (two wrk processes at once; p50/p99 are the worse of the two)
# (d) and (e) need PostgreSQL: SIGIL_TEST_POSTGRES_URL (a role that may CREATE DATABASE), else a
# throwaway server from scripts/postgres.sh (root; fsync and synchronous_commit on, as durable as
# Sigil's SQLite with synchronous=FULL); SKIP_PG=1 leaves them out. Server CPU for them
# counts the sigil processes only, not PostgreSQL's (printed apart).
# Load generator: wrk (Debian; C, epoll, one thread by default) with a Lua script cycling through
# the request bodies and checking every response's status and body. It holds 64 connections on one
# thread and uses a fraction of a core, so the servers, not the client, are what is measured; its
# CPU use is printed next to the servers'.
# Per scenario: throughput (good responses/s), p50/p99 latency (wrk's histogram), errors (bad status,
# socket errors, timeouts: must all be 0, else exit 1) and server CPU ms per request from
# /proc/PID/stat (utime+stime) before/after. Then the sigil/cfssl ratios for issuance.
# Caveat: cfssl here keeps no record (no -db-config); Sigil writes every certificate to its SQLite
# inventory and appends a hash-chained audit entry in the same transaction.
#
# Env knobs:
#   DURATION (30)      seconds of measured load per scenario
#   CONNECTIONS (64)   concurrent keep-alive connections
#   THREADS (1)        wrk threads
#   WARMUP_S (3)       seconds of unmeasured load before each scenario
#   N (500)            distinct CSRs, cycled
#   READ_LIMIT (50)    page size for scenario (b)
#   CFSSL_TLS (1)      0: cfssl over plain HTTP instead of HTTPS
#   SKIP_BUILD=1       use the existing .build/release/sigil;  SIGIL_BIN: use this binary
#   SIGIL_LOG_LEVEL    passed to sigil serve (default info: one line per request, as cfssl logs)
#   SKIP_PG=1          leave out the PostgreSQL scenarios (d) and (e)
# Last line: RESULT api_issue_ratio_sigil_over_cfssl=<certs/s ratio>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${DURATION:-30}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
WARMUP_S="${WARMUP_S:-3}"
N="${N:-500}"
READ_LIMIT="${READ_LIMIT:-50}"
CFSSL_TLS="${CFSSL_TLS:-1}"

need_apt() { # need_apt <binary> <package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "[setup] installing $2" >&2
  if ! apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 || true
    apt-get install -y --no-install-recommends "$2" >/dev/null
  fi
}
need_apt wrk wrk
need_apt cfssl golang-cfssl
need_apt cfssljson golang-cfssl
need_apt openssl openssl
need_apt curl curl
need_apt python3 python3

if [ -z "${SIGIL_BIN:-}" ]; then
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "==> swift build -c release --product sigil" >&2
    (cd "$ROOT" && swift build -c release --product sigil >&2)
  fi
  SIGIL_BIN="$ROOT/.build/release/sigil"
fi
[ -x "$SIGIL_BIN" ] || { echo "sigil binary not found: $SIGIL_BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-bench-api.XXXXXX")"
SIGIL_PID=""
CFSSL_PID=""
PG_NODE_PIDS=()
PG_STARTED=""
stop_pid() { # stop_pid <pid>: SIGTERM, up to 10 s, then SIGKILL
  local pid="$1"
  [ -n "$pid" ] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$SIGIL_PID"
  stop_pid "$CFSSL_PID"
  for pid in "${PG_NODE_PIDS[@]}"; do stop_pid "$pid"; done
  wait 2>/dev/null || true
  if [ -n "$PG_STARTED" ]; then stop_postgres; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
cd "$WORK"
# A private copy: the build may rewrite .build/release/sigil while this runs.
cp "$SIGIL_BIN" "$WORK/sigil"
SIGIL="$WORK/sigil"

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz}' "/proc/$1/stat"; }
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8" "$2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
wait_http() { # wait_http <url> <seconds> [curl args...]
  local url="$1" limit="$2"; shift 2
  local end=$((SECONDS + limit))
  while [ "$SECONDS" -lt "$end" ]; do
    curl -s -o /dev/null --max-time 2 "$@" "$url" && return 0
    sleep 0.1
  done
  return 1
}

echo "== $("$SIGIL" --version 2>/dev/null || echo sigil) vs $(cfssl version | head -1); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}');" \
     "$(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== load: $CONNECTIONS connections, $THREADS wrk thread(s), ${WARMUP_S} s warm-up + ${DURATION} s per scenario"

# ----------------------------------------------------------------------------- CSRs
echo "== $N CSRs (P-256, openssl req)"
mkdir csr
for ((i = 0; i < N; i++)); do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -out "csr/$i.pem" -subj "/CN=host$i.example.com" -addext "subjectAltName=DNS:host$i.example.com" 2>/dev/null
done
python3 - "$N" <<'PY'
import json, sys
n = int(sys.argv[1])
with open("sigil-bodies.txt", "w") as s, open("cfssl-bodies.txt", "w") as c:
    for i in range(n):
        pem = open(f"csr/{i}.pem").read()
        s.write(json.dumps({"csr": pem, "profile": "tls-server"}) + "\n")
        c.write(json.dumps({"certificate_request": pem, "hosts": [f"host{i}.example.com"]}) + "\n")
PY

# ----------------------------------------------------------------------------- wrk script
cat > load.lua <<'LUA'
-- wrk script: args = path, body file ("-": GET), expected status, body needle, bearer token ("-": none)
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  path, needle = args[1], args[4]
  expected = tonumber(args[3])
  bodies = {}
  if args[2] ~= "-" then
    for line in io.lines(args[2]) do bodies[#bodies + 1] = line end
  end
  headers = { ["Content-Type"] = "application/json" }
  if args[5] ~= "-" then headers["Authorization"] = "Bearer " .. args[5] end
  idx = math.random(1, math.max(#bodies, 1))
  ok, bad = 0, 0
end

function request()
  if #bodies == 0 then return wrk.format("GET", path, headers) end
  idx = idx % #bodies + 1
  return wrk.format("POST", path, headers, bodies[idx])
end

function response(status, hdrs, body)
  if status == expected and (needle == "-" or string.find(body, needle, 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected response " .. status .. ": " .. string.sub(body or "", 1, 300) .. "\n") end
  end
end

function done(summary, latency, requests)
  local okn, badn = 0, 0
  for _, t in ipairs(threads) do okn = okn + t:get("ok"); badn = badn + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d ok=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d seconds=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, okn, badn, e.connect, e.read, e.write, e.status, e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

RESULTS="$WORK/results.txt"
: > "$RESULTS"
# run_load <label> <server pid> <url> <body file|-> <expected status> <needle|-> <token|->
run_load() {
  local label="$1" pid="$2" url="$3" bodies="$4" expected="$5" needle="$6" token="$7"
  if [ "$WARMUP_S" -gt 0 ]; then
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WARMUP_S}s" --timeout 10s -s load.lua "$url" -- \
      "/${url#*://*/}" "$bodies" "$expected" "$needle" "$token" > "warmup-$label.out" 2>&1 || true
  fi
  local c0 c1 m0 m1 out
  c0=$(cpu_ms "$pid"); m0=$(busy_jiffies)
  out="$WORK/wrk-$label.out"
  local TIMEFORMAT='%U %S'
  { time wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s load.lua "$url" -- \
      "/${url#*://*/}" "$bodies" "$expected" "$needle" "$token" > "$out" 2> "$out.err" ; } 2> "time-$label.txt"
  c1=$(cpu_ms "$pid"); m1=$(busy_jiffies)
  if ! grep -q '^WRK ' "$out"; then
    echo "wrk failed for $label:"; cat "$out" "$out.err"; exit 1
  fi
  local wrk_cpu
  wrk_cpu=$(awk '{printf "%d", ($1 + $2) * 1000}' "time-$label.txt")
  local machine_busy
  machine_busy=$(awk -v a="$m0" -v b="$m1" 'BEGIN{split(a,x," "); split(b,y," "); printf "%.0f", 100*(y[1]-x[1])/((y[2]-x[2])>0?(y[2]-x[2]):1)}')
  echo "$label $(grep '^WRK ' "$out" | cut -d' ' -f2-) server_cpu_ms=$((c1 - c0)) wrk_cpu_ms=$wrk_cpu machine_busy_pct=$machine_busy" >> "$RESULTS"
  grep -v '^WRK ' "$out.err" | head -5 || true
}

# ----------------------------------------------------------------------------- sigil
echo "== sigil serve (release build, zero-config home)"
mkdir sigil-home
SIGIL_HOME="$WORK/sigil-home" "$SIGIL" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  > sigil.out 2> sigil.err < /dev/null &
SIGIL_PID=$!
for _ in $(seq 600); do grep -q '^listening:' sigil.out && break; kill -0 "$SIGIL_PID" 2>/dev/null || break; sleep 0.1; done
grep -q '^listening:' sigil.out || { echo "sigil serve did not start"; cat sigil.out sigil.err; exit 1; }
SIGIL_PORT=$(sed -n 's/^listening: https:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' sigil.out)
TOKEN=$(sed -n 's/^admin token: //p' sigil.out)
ROOT_PEM="$WORK/sigil-home/root.pem"
SIGIL_URL="https://127.0.0.1:$SIGIL_PORT"
echo "   pid $SIGIL_PID on $SIGIL_URL"
# Sanity: one issuance through curl, verified by openssl against the root Sigil wrote.
curl -sS --fail --cacert "$ROOT_PEM" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @<(head -1 sigil-bodies.txt) "$SIGIL_URL/api/v1/certificates" > sanity-sigil.json
python3 - <<'PY'
import json
d = json.load(open("sanity-sigil.json"))
open("sigil-leaf.pem", "w").write(d["certificate"])
open("sigil-chain.pem", "w").write("".join(d["chain"]))
PY
echo "   sanity: $(openssl verify -CAfile "$ROOT_PEM" -untrusted sigil-chain.pem sigil-leaf.pem 2>&1 | tail -1);" \
     "$(openssl x509 -in sigil-leaf.pem -noout -ext subjectAltName 2>/dev/null | tail -1 | tr -d ' ')"

echo "== (a) sigil issuance"
run_load sigil_issue "$SIGIL_PID" "$SIGIL_URL/api/v1/certificates" sigil-bodies.txt 201 "BEGIN CERTIFICATE" "$TOKEN"
echo "== (b) sigil inventory reads (limit=$READ_LIMIT; $(curl -s --cacert "$ROOT_PEM" -H "Authorization: Bearer $TOKEN" \
  "$SIGIL_URL/metrics" | awk '/^sigil_issuances_total/{s+=$2} END{printf "%d", s}') certificates issued so far)"
run_load sigil_read "$SIGIL_PID" "$SIGIL_URL/api/v1/certificates?limit=$READ_LIMIT" - 200 '"items"' "$TOKEN"
SIGIL_LOG_LINES=$(wc -l < sigil.err)
stop_pid "$SIGIL_PID"; wait "$SIGIL_PID" 2>/dev/null || true; SIGIL_PID=""

# ----------------------------------------------------------------------------- sigil on PostgreSQL
if [ "${SKIP_PG:-0}" != 1 ] && [ -z "${SIGIL_TEST_POSTGRES_URL:-}" ]; then
  . "$ROOT/scripts/postgres.sh"
  # Durable like Sigil's SQLite (synchronous=FULL): fsync and synchronous_commit on.
  if POSTGRES_DURABLE=1 start_postgres; then PG_STARTED=1; else echo "== no PostgreSQL: scenarios (d) and (e) skipped"; fi
fi
if [ "${SKIP_PG:-0}" != 1 ] && [ -n "${SIGIL_TEST_POSTGRES_URL:-}" ]; then
  PG_DB="sigil_bench_$$"
  psql -X -q "${SIGIL_TEST_POSTGRES_URL%%\?*}" -c "CREATE DATABASE $PG_DB" >/dev/null
  PG_URL="$(echo "$SIGIL_TEST_POSTGRES_URL" | sed -E "s#/[^/?]+(\?|$)#/$PG_DB\1#")"
  printf 'bench passphrase for two nodes' > pg-passphrase
  # start_node <n>: a sigil serve on the shared database; sets NODE_PID NODE_URL NODE_TOKEN
  start_node() {
    local n="$1"
    mkdir -p "pg-home$n"
    SIGIL_HOME="$WORK/pg-home$n" "$SIGIL" serve --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --database "$PG_URL" \
      --passphrase-file pg-passphrase > "pg$n.out" 2> "pg$n.err" < /dev/null &
    NODE_PID=$!
    PG_NODE_PIDS+=("$NODE_PID")
    for _ in $(seq 600); do grep -q '^listening:' "pg$n.out" && break; kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
    grep -q '^listening:' "pg$n.out" || { echo "sigil serve on PostgreSQL did not start"; cat "pg$n.out" "pg$n.err"; exit 1; }
    NODE_URL="https://127.0.0.1:$(sed -n 's/^listening: https:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "pg$n.out")"
  }
  echo "== sigil serve on PostgreSQL $(psql -X -At "${SIGIL_TEST_POSTGRES_URL%%\?*}" -c 'SHOW server_version' 2>/dev/null) (database $PG_DB)"
  start_node 1; PG1_PID=$NODE_PID; PG1_URL=$NODE_URL
  PG_TOKEN=$(sed -n 's/^admin token: //p' pg1.out)
  echo "== (d) sigil issuance, one node on PostgreSQL"
  run_load sigil_issue_pg1 "$PG1_PID" "$PG1_URL/api/v1/certificates" sigil-bodies.txt 201 "BEGIN CERTIFICATE" "$PG_TOKEN"
  start_node 2; PG2_PID=$NODE_PID; PG2_URL=$NODE_URL
  echo "== (e) sigil issuance, two nodes on the same PostgreSQL database"
  FULL_CONNECTIONS=$CONNECTIONS
  CONNECTIONS=$((FULL_CONNECTIONS / 2))
  run_load sigil_issue_pg2_node1 "$PG1_PID" "$PG1_URL/api/v1/certificates" sigil-bodies.txt 201 "BEGIN CERTIFICATE" "$PG_TOKEN" &
  LOAD1=$!
  run_load sigil_issue_pg2_node2 "$PG2_PID" "$PG2_URL/api/v1/certificates" sigil-bodies.txt 201 "BEGIN CERTIFICATE" "$PG_TOKEN" &
  LOAD2=$!
  wait "$LOAD1"; wait "$LOAD2"
  CONNECTIONS=$FULL_CONNECTIONS
  PG_CERTS=$(psql -X -At "$(echo "${PG_URL%%\?*}")" -c 'SELECT COUNT(*) FROM certificates' 2>/dev/null || echo '?')
  PG_VERIFY=$(SIGIL_HOME="$WORK/pg-home1" SIGIL_DATABASE="$PG_URL" "$SIGIL" audit verify 2>&1 | tail -1)
  echo "   $PG_CERTS certificates on PostgreSQL; $PG_VERIFY"
  for pid in "${PG_NODE_PIDS[@]}"; do stop_pid "$pid"; done
  PG_NODE_PIDS=()
  psql -X -q "${SIGIL_TEST_POSTGRES_URL%%\?*}" -c "DROP DATABASE $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
fi

# ----------------------------------------------------------------------------- cfssl
echo "== cfssl serve (P-256 CA$( [ "$CFSSL_TLS" = 1 ] && echo ', HTTPS'))"
cat > ca-csr.json <<'EOF'
{ "CN": "Bench CFSSL Root CA", "key": { "algo": "ecdsa", "size": 256 }, "names": [ { "C": "US", "O": "Bench" } ] }
EOF
cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
cat > config.json <<'EOF'
{ "signing": { "default": { "expiry": "2160h", "usages": [ "digital signature", "server auth" ] } } }
EOF
CFSSL_ARGS=()
CURL_TRUST=()
SCHEME=http
if [ "$CFSSL_TLS" = 1 ]; then
  cat > tls-csr.json <<'EOF'
{ "CN": "127.0.0.1", "hosts": ["127.0.0.1", "localhost"], "key": { "algo": "ecdsa", "size": 256 } }
EOF
  cfssl gencert -ca ca.pem -ca-key ca-key.pem -config config.json tls-csr.json 2>/dev/null | cfssljson -bare tls
  CFSSL_ARGS=(-tls-cert tls.pem -tls-key tls-key.pem)
  CURL_TRUST=(--cacert ca.pem)
  SCHEME=https
fi
CFSSL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cfssl serve -address 127.0.0.1 -port "$CFSSL_PORT" -ca ca.pem -ca-key ca-key.pem -config config.json "${CFSSL_ARGS[@]}" \
  > cfssl.log 2>&1 < /dev/null &
CFSSL_PID=$!
CFSSL_URL="$SCHEME://127.0.0.1:$CFSSL_PORT"
wait_http "$CFSSL_URL/api/v1/cfssl/info" 20 "${CURL_TRUST[@]}" -X POST -d '{}' || { echo "cfssl serve did not start"; cat cfssl.log; exit 1; }
echo "   pid $CFSSL_PID on $CFSSL_URL"
curl -sS --fail "${CURL_TRUST[@]}" -H 'Content-Type: application/json' --data-binary @<(head -1 cfssl-bodies.txt) \
  "$CFSSL_URL/api/v1/cfssl/sign" > sanity-cfssl.json
python3 -c 'import json; open("cfssl-leaf.pem","w").write(json.load(open("sanity-cfssl.json"))["result"]["certificate"])'
echo "   sanity: $(openssl verify -CAfile ca.pem cfssl-leaf.pem 2>&1 | tail -1);" \
     "$(openssl x509 -in cfssl-leaf.pem -noout -ext subjectAltName 2>/dev/null | tail -1 | tr -d ' ')"

echo "== (c) cfssl sign"
run_load cfssl_sign "$CFSSL_PID" "$CFSSL_URL/api/v1/cfssl/sign" cfssl-bodies.txt 200 '"success":true' -
CFSSL_LOG_LINES=$(wc -l < cfssl.log)
stop_pid "$CFSSL_PID"; wait "$CFSSL_PID" 2>/dev/null || true; CFSSL_PID=""

# ----------------------------------------------------------------------------- report
echo "   server log lines: sigil $SIGIL_LOG_LINES, cfssl $CFSSL_LOG_LINES"
echo
python3 - "$RESULTS" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    label, *kv = line.split()
    rows[label] = {k: float(v) for k, v in (x.split("=") for x in kv)}
# Two nodes loaded at once: one row with summed counts and CPU, the worse latencies.
parts = [rows.pop(k) for k in ("sigil_issue_pg2_node1", "sigil_issue_pg2_node2") if k in rows]
if len(parts) == 2:
    merged = {k: parts[0][k] + parts[1][k] for k in parts[0]}
    for k in ("seconds", "p50_ms", "p90_ms", "p99_ms", "max_ms", "machine_busy_pct"):
        merged[k] = max(parts[0][k], parts[1][k])
    rows["sigil_issue_pg2"] = merged
names = {"sigil_issue": "(a) sigil POST /api/v1/certificates", "sigil_read": "(b) sigil GET /api/v1/certificates?limit",
         "cfssl_sign": "(c) cfssl POST /api/v1/cfssl/sign",
         "sigil_issue_pg1": "(d) sigil POST /api/v1/certificates, PostgreSQL, 1 node",
         "sigil_issue_pg2": "(e) sigil POST /api/v1/certificates, PostgreSQL, 2 nodes"}
print(f"| scenario | req/s | p50 ms | p99 ms | max ms | errors | server CPU ms/req | wrk CPU ms/req | machine busy |")
print("|---|---|---|---|---|---|---|---|---|")
failed = False
rows = dict(sorted(rows.items(), key=lambda kv: names.get(kv[0], kv[0])))
for label, r in rows.items():
    errors = int(r["bad"] + r["connect"] + r["read"] + r["write"] + r["timeout"])
    failed |= errors > 0 or r["ok"] == 0
    rate = r["ok"] / r["seconds"]
    r["rate"], r["cpu"] = rate, r["server_cpu_ms"] / max(r["ok"], 1)
    print(f"| {names.get(label, label)} | {rate:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {errors} "
          f"| {r['cpu']:.3f} | {r['wrk_cpu_ms'] / max(r['ok'], 1):.3f} | {r['machine_busy_pct']:.0f} % |")
a, c = rows.get("sigil_issue"), rows.get("cfssl_sign")
if a and c:
    print()
    print(f"sigil/cfssl issuance: throughput x{a['rate'] / c['rate']:.2f}, p50 x{a['p50_ms'] / c['p50_ms']:.2f}, "
          f"p99 x{a['p99_ms'] / c['p99_ms']:.2f}, server CPU per certificate x{a['cpu'] / c['cpu']:.2f}")
    print()
    for label, r in rows.items():
        print(f"RESULT api_{label}_per_s={r['rate']:.1f} req/s")
        print(f"RESULT api_{label}_server_cpu_ms={r['cpu']:.3f} ms")
    for label in ("sigil_issue_pg1", "sigil_issue_pg2"):
        if label in rows:
            print(f"RESULT api_{label}_over_sqlite={rows[label]['rate'] / a['rate']:.2f}")
    print(f"RESULT api_issue_cpu_ratio_sigil_over_cfssl={a['cpu'] / c['cpu']:.2f}")
    print(f"RESULT api_issue_ratio_sigil_over_cfssl={a['rate'] / c['rate']:.2f}")
sys.exit(1 if failed else 0)
PY
