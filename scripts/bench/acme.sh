#!/usr/bin/env bash
# scripts/bench/acme.sh -- the ACME server in `sigil serve` vs Pebble, same machine, same run.
#
# Both servers are up for the whole run, each with its own trust anchor:
#   Pebble (Debian 2.4.0): 127.0.0.1:14000, management 127.0.0.1:15000 (/roots/0), "httpPort": 5002,
#     PEBBLE_VA_NOSLEEP=1 (no random 0-15 s validation delay), PEBBLE_WFE_NONCEREJECT=0 (no deliberate
#     badNonce), a throw-away TLS CA made here (Debian ships no test certificate).
#   Sigil: release `sigil serve` on a fresh home with an `acme:` section in sigil.yaml (http01_port
#     5002, no EAB, rate limits out of the way); zero-config CA (P-384 root, P-256 intermediate);
#     clients trust HOME/root.pem.
#   Both resolve names through pebble-challtestsrv running as a mock DNS server only (127.0.0.1:8053,
#   every A query -> 127.0.0.1, no AAAA), so http-01 validation really connects to the client's
#   responder on 127.0.0.1:5002. Nothing touches /etc/hosts; nothing skips validation.
#
# Two views, each run against Pebble and Sigil:
#   (a) what users feel: lego (Debian 4.9.1), one `lego run` process per certificate, a new name each,
#       the account reused (registered by one unmeasured first certificate per server). N_LEGO
#       certificates per server, Pebble and Sigil alternating so both see the same machine load.
#       Figure: seconds per certificate (median); server CPU per certificate from /proc/PID/stat.
#       lego sleeps for the challenge's Retry-After before polling the authorization, 5 s when there
#       is none (Pebble sends none); Sigil answers the challenge POST after validating when it is quick.
#   (b) what the server costs: a tight client on the Python `acme` library (acme==5.8.0) that answers
#       http-01 from an in-process HTTP server on 127.0.0.1:5002 and polls every POLL_MS ms.
#       Per certificate: newOrder -> POST challenge -> poll authz -> finalize -> poll order -> download.
#       Each worker registers its own ES256 account and every certificate gets a new P-256 key and name,
#       all before timing. Passes: N_SEQ certificates one after another, then N_CONC certificates with
#       CONCURRENCY workers. Figures: server CPU ms per certificate (/proc/PID/stat, read by the client
#       around the timed loop), wall ms per certificate (median), certificates per second.
#
# Everything after the installs and the build runs in a private network namespace (`unshare --net`,
# loopback only) when possible; otherwise explicit 127.0.0.1 binds. Every loop has a fixed count and a
# time cap. Servers are stopped by PID on exit; the work directory is deleted (KEEP_WORK=1 keeps it).
#
# Env knobs:
#   N_LEGO (20)          lego certificates per server in (a)
#   N_SEQ (50)           sequential certificates per server in (b)
#   N_CONC (200)         concurrent-pass certificates per server in (b)
#   CONCURRENCY (4)      workers (each with its own account) in the concurrent pass
#   POLL_MS (20)         poll interval of the tight client
#   DEADLINE_S (240)     time cap per loop (the lego loop, each client pass)
#   LEGO_TIMEOUT_S (60)  cap per `lego run` process
#   SKIP_LEGO=1 / SKIP_DIRECT=1   skip a view
#   SKIP_BUILD=1         use the existing .build/release/sigil;  SIGIL_BIN: use this binary (copied first)
#   VENV                 venv holding acme==5.8.0 (default ${TMPDIR:-/tmp}/sigil-peers-venv; made if missing)
#   KEEP_WORK=1          keep the work directory
# Last line: RESULT acme_server_cpu_ratio_sigil_over_pebble=<ratio>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export N_LEGO="${N_LEGO:-20}" N_SEQ="${N_SEQ:-50}" N_CONC="${N_CONC:-200}" CONCURRENCY="${CONCURRENCY:-4}"
export POLL_MS="${POLL_MS:-20}" DEADLINE_S="${DEADLINE_S:-240}" LEGO_TIMEOUT_S="${LEGO_TIMEOUT_S:-60}"
export SKIP_LEGO="${SKIP_LEGO:-0}" SKIP_DIRECT="${SKIP_DIRECT:-0}" KEEP_WORK="${KEEP_WORK:-0}"
export VENV="${VENV:-${TMPDIR:-/tmp}/sigil-peers-venv}"

need_apt() { # need_apt <binary> <package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "==> installing $2 (apt-get)" >&2
  apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 || true; apt-get install -y --no-install-recommends "$2" >/dev/null; }
}

# ---- stage 0, in the host namespace: installs and the build may need the network
if [[ -z "${BENCH_IN_NETNS:-}" ]]; then
  need_apt pebble pebble
  need_apt pebble-challtestsrv pebble
  need_apt lego lego
  need_apt openssl openssl
  need_apt curl curl
  need_apt python3 python3
  need_apt unshare util-linux
  need_apt ip iproute2
  acme_ok() { [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("acme") != "5.8.0")' 2>/dev/null; }
  if ! acme_ok; then
    if [[ ! -x "$VENV/bin/python" ]]; then
      python3 -m venv "$VENV" 2>/dev/null || {
        dpkg-query -W -f '${Status}' python3-venv 2>/dev/null | grep -q 'install ok installed' \
          || { apt-get update >/dev/null 2>&1 || true; apt-get install -y --no-install-recommends python3-venv >/dev/null; }
        rm -rf "$VENV"; python3 -m venv "$VENV"; }
    fi
    echo "==> pip install acme==5.8.0 into $VENV" >&2
    "$VENV/bin/pip" install -q "acme==5.8.0" >&2
    acme_ok || { echo "acme==5.8.0 not importable from $VENV" >&2; exit 1; }
  fi
  if [[ -z "${SIGIL_BIN:-}" ]]; then
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
      echo "==> swift build -c release --product sigil" >&2
      (cd "$ROOT" && swift build -c release --product sigil >&2)
    fi
    SIGIL_BIN="$ROOT/.build/release/sigil"
  fi
  [[ -x "$SIGIL_BIN" ]] || { echo "sigil binary not found: $SIGIL_BIN" >&2; exit 1; }
  export SIGIL_BIN
  if unshare --net true 2>/dev/null; then
    exec unshare --net env BENCH_IN_NETNS=1 bash "$0" "$@"
  fi
  echo "[warn] no private network namespace; using explicit 127.0.0.1 binds in the host namespace" >&2
  export BENCH_IN_NETNS=no
else
  ip link set lo up
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-bench-acme.XXXXXX")"
PIDS=()
stop_pid() { # stop_pid <pid>: SIGTERM, up to 10 s, then SIGKILL
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  wait 2>/dev/null || true
  if [[ "$KEEP_WORK" == 1 ]]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM
cd "$WORK"
# A private copy: someone may rebuild .build/release/sigil while this runs.
cp "$SIGIL_BIN" "$WORK/sigil"
SIGIL="$WORK/sigil"
PY="$VENV/bin/python"

cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz}' "/proc/$1/stat"; }
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8" "$2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
busy_pct() { awk -v a="$1" -v b="$2" 'BEGIN{split(a,x," "); split(b,y," "); d=y[2]-x[2]; if (d <= 0) d = 1; printf "%.0f", 100*(y[1]-x[1])/d}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== $("$SIGIL" --version 2>/dev/null || echo sigil) vs pebble $(dpkg-query -W -f '${Version}' pebble);" \
     "lego $(dpkg-query -W -f '${Version}' lego); acme $("$PY" -c 'import importlib.metadata as m; print(m.version("acme"))');" \
     "$(nproc) cores; load $(load); netns=${BENCH_IN_NETNS}"
for p in 14000 15000 8053 8055 5002; do
  port_free "$p" || { echo "port 127.0.0.1:$p is busy; aborting"; exit 1; }
done

# ----------------------------------------------------------------------------- mock DNS
pebble-challtestsrv -dns01 127.0.0.1:8053 -management 127.0.0.1:8055 \
  -http01 "" -https01 "" -tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" > challtestsrv.log 2>&1 &
PIDS+=($!)

# ----------------------------------------------------------------------------- Pebble
cat > tls.cnf <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
openssl req -config tls.cnf -x509 -extensions ca -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout pebble-tlsca.key -out pebble-tlsca.pem -days 7 -subj "/CN=sigil bench: pebble TLS CA" 2>/dev/null
openssl req -config tls.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout pebble-tls.key -out pebble-tls.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in pebble-tls.csr -CA pebble-tlsca.pem -CAkey pebble-tlsca.key -CAcreateserial -days 7 \
  -extfile tls.cnf -extensions leaf -out pebble-tls.pem 2>/dev/null
cat > pebble.json <<'EOF'
{ "pebble": { "listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
              "certificate": "pebble-tls.pem", "privateKey": "pebble-tls.key",
              "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false } }
EOF
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 pebble -config pebble.json -dnsserver 127.0.0.1:8053 \
  > pebble.log 2>&1 < /dev/null &
PEBBLE_PID=$!
PIDS+=($PEBBLE_PID)
PEBBLE_DIR=https://127.0.0.1:14000/dir
PEBBLE_CA="$WORK/pebble-tlsca.pem"

# ----------------------------------------------------------------------------- Sigil
mkdir -m 700 sigil-home
cat > sigil-home/sigil.yaml <<'EOF'
acme:
  http01_port: 5002
  dns_resolver: 127.0.0.1:8053
  eab_required: false
  rate_limits: {orders_per_account_per_hour: 100000, orders_per_name_per_hour: 100000}
EOF
"$SIGIL" serve --home "$WORK/sigil-home" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  > sigil.out 2> sigil.err < /dev/null &
SIGIL_PID=$!
PIDS+=($SIGIL_PID)
for _ in $(seq 600); do grep -q '^acme directory:' sigil.out && break; kill -0 "$SIGIL_PID" 2>/dev/null || break; sleep 0.1; done
grep -q '^acme directory:' sigil.out || { echo "sigil serve did not start with ACME"; cat sigil.out sigil.err; exit 1; }
SIGIL_DIR=$(sed -n 's/^acme directory: //p' sigil.out | head -1)
SIGIL_CA="$WORK/sigil-home/root.pem"

for _ in $(seq 100); do curl -sf --max-time 2 --cacert "$PEBBLE_CA" "$PEBBLE_DIR" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf --max-time 2 --cacert "$PEBBLE_CA" "$PEBBLE_DIR" >/dev/null || { echo "pebble did not come up"; cat pebble.log challtestsrv.log; exit 1; }
curl -sf --max-time 2 --cacert "$SIGIL_CA" "$SIGIL_DIR" >/dev/null || { echo "sigil ACME directory unreachable: $SIGIL_DIR"; tail -20 sigil.err; exit 1; }
curl -sf --max-time 5 --cacert "$PEBBLE_CA" https://127.0.0.1:15000/roots/0 > pebble-root.pem
echo "   pebble pid $PEBBLE_PID: $PEBBLE_DIR (PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0)"
echo "   sigil  pid $SIGIL_PID: $SIGIL_DIR"
echo "   mock DNS: pebble-challtestsrv 127.0.0.1:8053 (A -> 127.0.0.1); http-01 responder port 5002"

RESULTS="$WORK/results.txt"
: > "$RESULTS"
FAILED=0

# check_chain <label> <leaf+chain pem> <root pem>
check_chain() {
  local v
  v=$(openssl verify -CAfile "$3" -untrusted "$2" "$2" 2>&1 | tail -1)
  echo "   $1 sanity: $v; $(openssl x509 -in "$2" -noout -ext subjectAltName 2>/dev/null | tail -1 | tr -d ' ')"
  [[ "$v" == *": OK" ]] || FAILED=1
}

# ----------------------------------------------------------------------------- (a) lego
if [[ "$SKIP_LEGO" != 1 ]]; then
  echo
  echo "== (a) lego: 1 + $N_LEGO certificates per server, one \`lego run\` each, new name each, account reused;" \
       "Pebble and Sigil alternate (cap ${LEGO_TIMEOUT_S} s per run, ${DEADLINE_S} s per loop)"
  # lego_one <pebble|sigil> <name> <log>  -> prints wall ms and server CPU ms, or fails
  lego_one() {
    local who="$1" name="$2" log="$3" dir ca pid c0 t0 t1 c1
    if [[ "$who" == pebble ]]; then dir="$PEBBLE_DIR" ca="$PEBBLE_CA" pid="$PEBBLE_PID"; else dir="$SIGIL_DIR" ca="$SIGIL_CA" pid="$SIGIL_PID"; fi
    c0=$(cpu_ms "$pid"); t0=$(now_ms)
    LEGO_CA_CERTIFICATES="$ca" timeout "$LEGO_TIMEOUT_S" lego --server "$dir" --accept-tos --email bench@example.com \
      --path "$WORK/lego-$who" --key-type ec256 --http --http.port 127.0.0.1:5002 -d "$name" run > "$log" 2>&1 || return 1
    t1=$(now_ms); c1=$(cpu_ms "$pid")
    [[ -s "$WORK/lego-$who/certificates/$name.crt" ]] || return 1
    echo "$((t1 - t0)) $((c1 - c0))"
  }
  m0=$(busy_jiffies); load_a0=$(load)
  for who in pebble sigil; do
    if r=$(lego_one "$who" "first-$who.example.com" "lego-$who-first.log"); then
      echo "   $who first certificate (registers the account): $(awk -v m="${r% *}" 'BEGIN{printf "%.2f", m/1000}') s"
      cat "lego-$who/certificates/first-$who.example.com.crt" "lego-$who/certificates/first-$who.example.com.issuer.crt" > "lego-$who-first.pem"
      check_chain "lego/$who" "lego-$who-first.pem" "$([[ $who == pebble ]] && echo pebble-root.pem || echo "$SIGIL_CA")"
    else
      echo "   $who: first lego certificate FAILED:"; tail -5 "lego-$who-first.log" | sed 's/^/      /'
      [[ "$who" == sigil ]] && { echo "   sigil stderr (last 20 lines):"; tail -20 sigil.err | sed 's/^/      /'; }
      FAILED=1
    fi
  done
  : > lego-pebble.txt; : > lego-sigil.txt
  loop_end=$((SECONDS + DEADLINE_S))
  for ((k = 1; k <= N_LEGO; k++)); do
    if ((SECONDS > loop_end)); then echo "   deadline reached after $((k - 1)) rounds"; break; fi
    for who in pebble sigil; do
      if r=$(lego_one "$who" "lego$k-$who.example.com" "lego-$who-$k.log"); then
        echo "$r" >> "lego-$who.txt"
      else
        FAILED=1
        echo "   $who certificate $k FAILED: $(tail -1 "lego-$who-$k.log")"
        [[ "$who" == sigil ]] && { echo "   sigil stderr (last 10 lines):"; tail -10 sigil.err | sed 's/^/      /'; }
      fi
    done
  done
  m1=$(busy_jiffies)
  for who in pebble sigil; do
    echo "   $who per-run seconds: $(awk '{printf "%.2f ", $1/1000}' "lego-$who.txt")"
    sort -n "lego-$who.txt" | awk -v who="$who" -v n="$N_LEGO" -v busy="$(busy_pct "$m0" "$m1")" '{w[NR]=$1; c+=$2; s+=$1} END {
      m = NR ? ((NR % 2) ? w[(NR+1)/2] : (w[NR/2] + w[NR/2+1]) / 2) : 0
      printf "lego_%s ok=%d planned=%d median_ms=%d mean_ms=%.0f min_ms=%d max_ms=%d cpu_ms_per_cert=%.2f machine_busy_pct=%s\n",
        who, NR, n, m, NR ? s/NR : 0, w[1], w[NR], NR ? c/NR : 0, busy }' >> "$RESULTS"
  done
  echo "   load during (a): $load_a0 -> $(load)"
  grep -h 'Wait for certificate\|validated our request\|Retry' "lego-sigil-$N_LEGO.log" 2>/dev/null | head -3 | sed 's/^/   lego->sigil: /' || true
fi

# ----------------------------------------------------------------------------- (b) tight client
if [[ "$SKIP_DIRECT" != 1 ]]; then
cat > driver.py <<'PY'
"""Tight ACME client on the `acme` library: what remains is the server. Loopback only.
usage: driver.py LABEL DIRECTORY CA_PEM SERVER_PID N CONCURRENCY POLL_MS DEADLINE_S NAME_PREFIX"""
import concurrent.futures as cf, os, queue, resource, statistics, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import josepy as jose
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from acme import challenges, client, crypto_util, errors, messages

label, directory, ca_pem, server_pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n, conc, poll_s, deadline_s, prefix = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]) / 1000, float(sys.argv[8]), sys.argv[9]
os.environ["REQUESTS_CA_BUNDLE"] = ca_pem        # this machine exports its own; requests would prefer it over verify=
HZ = os.sysconf("SC_CLK_TCK")

def server_cpu_ms():
    fields = open(f"/proc/{server_pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / HZ

keyauths = {}
class Responder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        prefix_ = "/.well-known/acme-challenge/"
        value = keyauths.get(self.path[len(prefix_):]) if self.path.startswith(prefix_) else None
        body = (value or "no such token").encode()
        self.send_response(200 if value else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class ResponderServer(ThreadingHTTPServer):
    request_queue_size = 128     # Python's default backlog of 5 stalls validators that connect several times at once
    daemon_threads = True
    allow_reuse_address = True
responder = ResponderServer(("127.0.0.1", 5002), Responder)
threading.Thread(target=responder.serve_forever, daemon=True).start()

server_errors = []                                     # every 5xx answer, with its body
def note_status(response, *args, **kwargs):
    if response.status_code >= 500:
        server_errors.append(f"{response.request.method} {response.request.path_url} -> {response.status_code}: {response.text[:300]}")

def register():
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, user_agent="sigil-bench-acme")
    net.session.hooks["response"].append(note_status)
    acme = client.ClientV2(client.ClientV2.get_directory(directory, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme, key

accounts = queue.Queue()
for _ in range(conc):
    accounts.put(register())
csrs = []
for i in range(n):
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    csrs.append(crypto_util.make_csr(pem, [f"{prefix}{i}.example.com"]))

local = threading.local()
stop_at = time.monotonic() + deadline_s
first_pem = {}

def issue(i):
    if time.monotonic() > stop_at:
        return ("skipped", None)
    if not hasattr(local, "account"):
        local.account = accounts.get()
    acme, key = local.account
    try:
        t0 = time.monotonic()
        order = acme.new_order(csrs[i])
        for authz in order.authorizations:
            chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
            response, validation = chall.response_and_validation(key)
            keyauths[chall.chall.encode("token")] = validation
            acme.answer_challenge(chall, response)
        t1 = time.monotonic()
        for authz in order.authorizations:
            while True:
                authz, _ = acme.poll(authz)
                if authz.body.status == messages.STATUS_VALID:
                    break
                if authz.body.status == messages.STATUS_INVALID:
                    errs = [c.error for c in authz.body.challenges if c.error]
                    print(f"  {label} #{i}: authorization invalid: {errs}", file=sys.stderr)
                    return ("fail", None)
                if time.monotonic() > stop_at:
                    return ("fail", None)
                time.sleep(poll_s)
        t2 = time.monotonic()
        order = acme.begin_finalization(order)
        while True:
            body = messages.Order.from_json(acme._post_as_get(order.uri).json())
            if body.status == messages.STATUS_VALID and body.certificate:
                pem = acme._post_as_get(body.certificate).text
                break
            if body.status == messages.STATUS_INVALID or time.monotonic() > stop_at:
                print(f"  {label} #{i}: order {body.status}: {body.error}", file=sys.stderr)
                return ("fail", None)
            time.sleep(poll_s)
        t3 = time.monotonic()
        if i == 0:
            first_pem[0] = pem
        return ("ok", (t3 - t0, t1 - t0, t2 - t1, t3 - t2))
    except Exception as e:                                  # count it, show it, keep going
        print(f"  {label} #{i}: {type(e).__name__}: {e}", file=sys.stderr)
        return ("error", None)

ru0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = server_cpu_ms()
start = time.monotonic()
with cf.ThreadPoolExecutor(max_workers=conc) as pool:
    results = list(pool.map(issue, range(n)))
elapsed = time.monotonic() - start
cpu1 = server_cpu_ms()
ru1 = resource.getrusage(resource.RUSAGE_SELF)
responder.shutdown()
responder.server_close()
if 0 in first_pem:
    open(f"{label}-first.pem", "w").write(first_pem[0])

ok = [r[1] for r in results if r[0] == "ok"]
count = {k: sum(1 for r in results if r[0] == k) for k in ("ok", "fail", "error", "skipped")}
ms = lambda xs: statistics.median(xs) * 1e3 if xs else 0.0
total = [x[0] for x in ok]
p90 = statistics.quantiles(total, n=10)[8] * 1e3 if len(total) > 1 else 0.0
okn = max(count["ok"], 1)
for line in server_errors[:5]:
    print(f"  {label}: server error: {line}", file=sys.stderr)
client_cpu = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) * 1e3
print(f"   {label}: {n} certificates, {conc} worker(s), poll {poll_s * 1e3:.0f} ms: {elapsed:.2f} s, "
      + " ".join(f"{k}={v}" for k, v in count.items()))
print(f"      per certificate: median {ms(total):.1f} ms, p90 {p90:.1f} ms; phases (median): order+answer {ms([x[1] for x in ok]):.1f} ms, "
      f"validation wait {ms([x[2] for x in ok]):.1f} ms, finalize+download {ms([x[3] for x in ok]):.1f} ms")
print(f"      server CPU {cpu1 - cpu0:.0f} ms = {(cpu1 - cpu0) / okn:.2f} ms per certificate; client CPU {client_cpu / okn:.1f} ms per certificate; "
      f"5xx answers: {len(server_errors)}")
print(f"STAT {label} ok={count['ok']} planned={n} bad={count['fail'] + count['error']} skipped={count['skipped']} http5xx={len(server_errors)} seconds={elapsed:.3f} "
      f"certs_per_s={count['ok'] / elapsed:.2f} median_ms={ms(total):.2f} p90_ms={p90:.2f} server_cpu_ms_per_cert={(cpu1 - cpu0) / okn:.3f} "
      f"client_cpu_ms_per_cert={client_cpu / okn:.2f}")
PY
  echo
  echo "== (b) tight client (acme library, poll ${POLL_MS} ms): $N_SEQ sequential, then $N_CONC with $CONCURRENCY workers, per server"
  # direct <pebble|sigil> <seq|conc> <n> <workers>
  direct() {
    local who="$1" pass="$2" n="$3" c="$4" dir ca pid m0 m1 load0
    if [[ "$who" == pebble ]]; then dir="$PEBBLE_DIR" ca="$PEBBLE_CA" pid="$PEBBLE_PID"; else dir="$SIGIL_DIR" ca="$SIGIL_CA" pid="$SIGIL_PID"; fi
    m0=$(busy_jiffies); load0=$(load)
    if ! timeout $((DEADLINE_S + 120)) "$PY" driver.py "${who}_$pass" "$dir" "$ca" "$pid" "$n" "$c" "$POLL_MS" "$DEADLINE_S" \
         "d-$pass-$who-" > "direct-$who-$pass.out" 2> "direct-$who-$pass.err"; then
      echo "   ${who}_$pass: client FAILED:"; tail -5 "direct-$who-$pass.err" | sed 's/^/      /'; FAILED=1
    fi
    m1=$(busy_jiffies)
    grep -v '^STAT ' "direct-$who-$pass.out" || true
    if [[ -s "direct-$who-$pass.err" ]]; then
      echo "      client stderr: $(wc -l < "direct-$who-$pass.err") line(s), first ones:"; head -5 "direct-$who-$pass.err" | sed 's/^/        /'
    fi
    echo "      load $load0 -> $(load), machine busy $(busy_pct "$m0" "$m1") %"
    if grep -q '^STAT ' "direct-$who-$pass.out"; then
      echo "direct_$(grep '^STAT ' "direct-$who-$pass.out" | cut -d' ' -f2-) machine_busy_pct=$(busy_pct "$m0" "$m1")" >> "$RESULTS"
    fi
  }
  for pass in seq conc; do
    for who in pebble sigil; do
      if [[ "$pass" == seq ]]; then direct "$who" seq "$N_SEQ" 1; else direct "$who" conc "$N_CONC" "$CONCURRENCY"; fi
    done
  done
  [[ -f pebble_seq-first.pem ]] && check_chain "direct/pebble" pebble_seq-first.pem pebble-root.pem
  [[ -f sigil_seq-first.pem ]] && check_chain "direct/sigil" sigil_seq-first.pem "$SIGIL_CA"
fi

# ----------------------------------------------------------------------------- report
# sigil's request log carries no status: 5xx answers are counted by the client (above); here, log levels.
SIGIL_BAD=$(grep -Ec '^[0-9T:+-]+ (warning|error|critical) ' sigil.err || true)
echo
echo "   sigil log: $(wc -l < sigil.err) lines, $SIGIL_BAD at warning level or above"
if [[ "$SIGIL_BAD" != 0 ]]; then
  grep -E '^[0-9T:+-]+ (warning|error|critical) ' sigil.err | head -10 | sed 's/^/      /'
fi
echo "   pebble log: $(wc -l < pebble.log) lines"
echo "   load at the end: $(load)"
echo
FAILED="$FAILED" python3 - "$RESULTS" <<'PY'
import os, sys
rows = {}
for line in open(sys.argv[1]):
    label, *kv = line.split()
    rows[label] = {k: float(v) for k, v in (x.split("=") for x in kv)}
failed = os.environ.get("FAILED") == "1"
def ratio(a, b):
    return a / b if b else float("nan")
out = []
lp, ls = rows.get("lego_pebble"), rows.get("lego_sigil")
if lp and ls:
    print("(a) lego 4.9.1, one process per certificate, account reused")
    print("| server | certificates | s/cert median | mean | min | max | server CPU ms/cert | machine busy |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in (("Pebble", lp), ("Sigil", ls)):
        print(f"| {name} | {r['ok']:.0f}/{r['planned']:.0f} | **{r['median_ms'] / 1000:.3f}** | {r['mean_ms'] / 1000:.3f} | {r['min_ms'] / 1000:.3f} "
              f"| {r['max_ms'] / 1000:.3f} | {r['cpu_ms_per_cert']:.2f} | {r['machine_busy_pct']:.0f} % |")
        failed |= r["ok"] < r["planned"]
    rw, rc = ratio(ls["median_ms"], lp["median_ms"]), ratio(ls["cpu_ms_per_cert"], lp["cpu_ms_per_cert"])
    print(f"Sigil/Pebble: seconds per certificate x{rw:.3f} (Pebble {lp['median_ms'] / 1000:.3f} s, Sigil {ls['median_ms'] / 1000:.3f} s), "
          f"server CPU per certificate x{rc:.2f}")
    print(f"aim (lego under 1 s per certificate against Sigil): {'MET' if ls['median_ms'] < 1000 else 'NOT met'}")
    print()
    out += [f"RESULT lego_pebble_s_per_cert={lp['median_ms'] / 1000:.3f} s", f"RESULT lego_sigil_s_per_cert={ls['median_ms'] / 1000:.3f} s",
            f"RESULT lego_ratio_sigil_over_pebble={rw:.3f}"]
cpu_ratio = None
if any(k.startswith("direct_") for k in rows):
    print("(b) tight client (acme 5.8.0), server-bound cost")
    print("| server | pass | certificates | wall ms/cert median | p90 ms | certs/s | server CPU ms/cert | client CPU ms/cert | machine busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pas in ("seq", "conc"):
        for who, name in (("pebble", "Pebble"), ("sigil", "Sigil")):
            r = rows.get(f"direct_{who}_{pas}")
            if not r:
                failed = True
                continue
            failed |= r["ok"] < r["planned"] or r["bad"] > 0 or r["http5xx"] > 0
            print(f"| {name} | {'sequential' if pas == 'seq' else 'concurrent'} | {r['ok']:.0f}/{r['planned']:.0f} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} "
                  f"| {r['certs_per_s']:.1f} | **{r['server_cpu_ms_per_cert']:.2f}** | {r['client_cpu_ms_per_cert']:.1f} | {r['machine_busy_pct']:.0f} % |")
    for pas in ("seq", "conc"):
        p, s = rows.get(f"direct_pebble_{pas}"), rows.get(f"direct_sigil_{pas}")
        if not (p and s):
            continue
        rc, rw, rt = ratio(s["server_cpu_ms_per_cert"], p["server_cpu_ms_per_cert"]), ratio(s["median_ms"], p["median_ms"]), ratio(s["certs_per_s"], p["certs_per_s"])
        print(f"Sigil/Pebble {'sequential' if pas == 'seq' else 'concurrent'}: server CPU per certificate x{rc:.2f} "
              f"(Pebble {p['server_cpu_ms_per_cert']:.2f} ms, Sigil {s['server_cpu_ms_per_cert']:.2f} ms), wall per certificate x{rw:.2f} "
              f"(Pebble {p['median_ms']:.1f} ms, Sigil {s['median_ms']:.1f} ms), certs/s x{rt:.2f} (Pebble {p['certs_per_s']:.1f}, Sigil {s['certs_per_s']:.1f})")
        out += [f"RESULT direct_{pas}_pebble_server_cpu_ms_per_cert={p['server_cpu_ms_per_cert']:.3f} ms",
                f"RESULT direct_{pas}_sigil_server_cpu_ms_per_cert={s['server_cpu_ms_per_cert']:.3f} ms",
                f"RESULT direct_{pas}_pebble_wall_ms_per_cert={p['median_ms']:.2f} ms",
                f"RESULT direct_{pas}_sigil_wall_ms_per_cert={s['median_ms']:.2f} ms",
                f"RESULT direct_{pas}_pebble_certs_per_s={p['certs_per_s']:.2f} certs/s",
                f"RESULT direct_{pas}_sigil_certs_per_s={s['certs_per_s']:.2f} certs/s"]
    ps = [rows[k] for k in ("direct_pebble_seq", "direct_pebble_conc") if k in rows]
    ss = [rows[k] for k in ("direct_sigil_seq", "direct_sigil_conc") if k in rows]
    if ps and ss:
        # Both passes together, weighted by certificates.
        pc = sum(r["server_cpu_ms_per_cert"] * r["ok"] for r in ps) / max(sum(r["ok"] for r in ps), 1)
        sc = sum(r["server_cpu_ms_per_cert"] * r["ok"] for r in ss) / max(sum(r["ok"] for r in ss), 1)
        cpu_ratio = ratio(sc, pc)
        print(f"both passes: server CPU per certificate Pebble {pc:.2f} ms, Sigil {sc:.2f} ms -> Sigil/Pebble x{cpu_ratio:.2f}")
        print(f"aim (less server CPU per certificate than Pebble): {'MET' if sc < pc else 'NOT met'}")
    print()
print("\n".join(out))
if cpu_ratio is not None:
    print(f"RESULT acme_server_cpu_ratio_sigil_over_pebble={cpu_ratio:.3f}")
if failed:
    print("some certificates failed (see above)", file=sys.stderr)
sys.exit(1 if failed else 0)
PY
