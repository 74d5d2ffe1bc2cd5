#!/usr/bin/env bash
# scripts/bench/revocation.sh -- CRL generation and OCSP responder throughput: sigil vs OpenSSL, one run.
#
#   (a) CRL with N revoked entries (default 1,000,000):
#       sigil:   `sigil-bench crl-setup --entries N --home H` (records only, timed for information), then
#                `SIGIL_HOME=H sigil crl generate --passphrase-env V --out crl.der` under /usr/bin/time -v
#                (wall time, user+sys CPU, peak RSS). The CRL is checked by openssl (signature, entry count).
#       openssl: `openssl ca -gencrl` with an index.txt holding the SAME N revoked entries (serials,
#                revocation dates and reasons read back from sigil's CRL with `openssl crl -text`), a P-256
#                CA like sigil's intermediate, crlNumber + AKI, under /usr/bin/time -v. Checked the same way.
#   (b) OCSP responses/s over loopback, inside a private network namespace (`unshare --net`: the
#       `openssl ocsp` responder binds every interface whatever -port says; see
#       /work/shared/notes/interop-traps.md). Both responders serve the same certificates:
#       a zero-config release `sigil serve` issues N_CERTS P-256 certificates over its REST API and
#       revokes every REVOKE_EVERY-th (keyCompromise); `openssl ocsp -index index.txt` gets an index.txt
#       with the same serials and statuses, sigil's intermediate as -CA, and a delegated responder
#       certificate that sigil issued (ocsp-signing profile) as -rsigner, as in peers/openssl-ocsp.sh.
#       Same client for every scenario: a Python asyncio client (CONCURRENCY connections, DURATION
#       seconds) that POSTs three pre-built DER requests round-robin (good, revoked, unknown serial) and
#       counts every body whose OCSPResponseStatus is not successful as an error; its own CPU use is
#       printed, so a client-bound row shows. (wrk cannot load the peer: it opens and closes a probe
#       connection first, which sends `openssl ocsp` 3.0 into its 100%-CPU loop; a wrk keep-alive row
#       for sigil alone is added when wrk is installed.) Each responder's answers to the three requests
#       are checked once (status, signature, nonce echo) before it is loaded.
#       Scenarios: sigil --ocsp-signer delegated (a new TCP connection per request, as the openssl
#       responder forces; the same with a nonce, i.e. a fresh signature per response; keep-alive),
#       sigil --ocsp-signer ca (keep-alive), openssl ocsp (no nonce; nonce), openssl ocsp -multi 2.
#       The responder's CPU time per response is read from /proc/PID/stat (less sensitive to load).
#
# Env knobs:
#   N (1000000)            revoked CRL entries for (a)            REPS (1) timed runs per CRL tool (median)
#   N_CERTS (1000)         certificates for (b)                   REVOKE_EVERY (10)
#   DURATION (20)          seconds per OCSP scenario              CONCURRENCY (4) client connections
#   SKIP_CRL=1 / SKIP_OCSP=1   skip a part
#   SKIP_BUILD=1           use the existing .build/release binaries (else: two `swift build -c release` runs)
#   SIGIL_BIN, SIGIL_BENCH_BIN   binaries to time (default .build/release/{sigil,sigil-bench}; copied first)
#   OCSP_ALLOW_WILDCARD_BIND=1   run (b) without a network namespace (openssl then listens on [::])
#   KEEP_WORK=1            keep the work directory
# Output: a table per part, ratios, RESULT lines; the last is RESULT sigil_ocsp_responses_per_s=<n>.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export N="${N:-1000000}" REPS="${REPS:-1}" N_CERTS="${N_CERTS:-1000}" REVOKE_EVERY="${REVOKE_EVERY:-10}"
export DURATION="${DURATION:-20}" CONCURRENCY="${CONCURRENCY:-4}" SKIP_CRL="${SKIP_CRL:-0}" SKIP_OCSP="${SKIP_OCSP:-0}"

need_apt() { # need_apt <binary> <package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "==> installing $2 (apt-get)" >&2
  apt-get install -y --no-install-recommends "$2" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "$2" >/dev/null; }
}

# ---- stage 0 (outside the namespace: installs and builds may need the network)
if [[ -z "${BENCH_IN_NETNS:-}" ]]; then
  need_apt openssl openssl
  command -v wrk >/dev/null 2>&1 || apt-get install -y --no-install-recommends wrk >/dev/null 2>&1 || true  # optional
  need_apt unshare util-linux
  need_apt ip iproute2
  [[ -x /usr/bin/time ]] || need_apt /usr/bin/time time
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> swift build -c release --product sigil-bench" >&2
    (cd "$ROOT" && swift build -c release --product sigil-bench >&2)
    echo "==> swift build -c release --product sigil" >&2
    (cd "$ROOT" && swift build -c release --product sigil >&2)
  fi
  export SIGIL_BIN="${SIGIL_BIN:-$ROOT/.build/release/sigil}" SIGIL_BENCH_BIN="${SIGIL_BENCH_BIN:-$ROOT/.build/release/sigil-bench}"
  for b in "$SIGIL_BIN" "$SIGIL_BENCH_BIN"; do [[ -x "$b" ]] || { echo "not found: $b" >&2; exit 1; }; done
  "$SIGIL_BIN" crl generate --help >/dev/null 2>&1 || { echo "$SIGIL_BIN has no 'crl generate': rebuild it" >&2; exit 1; }
  if [[ -x "$ROOT/.venv/bin/python" ]]; then export BENCH_PY="$ROOT/.venv/bin/python"; else export BENCH_PY=python3; fi
  "$BENCH_PY" -c 'import cryptography, requests' 2>/dev/null \
    || { echo "$BENCH_PY lacks cryptography/requests (run scripts/test.sh once to make .venv)" >&2; exit 1; }
  if unshare --net true 2>/dev/null; then
    exec unshare --net env BENCH_IN_NETNS=1 bash "$0" "$@"
  fi
  if [[ "$SKIP_OCSP" != 1 && "${OCSP_ALLOW_WILDCARD_BIND:-0}" != 1 ]]; then
    echo "cannot create a private network namespace; openssl ocsp would listen on all interfaces." >&2
    echo "re-run as root, or set SKIP_OCSP=1 or OCSP_ALLOW_WILDCARD_BIND=1." >&2
    exit 2
  fi
  export BENCH_IN_NETNS=no
else
  ip link set lo up
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-bench-revocation.XXXXXX")"
export WORK
if [[ "${KEEP_WORK:-0}" == 1 ]]; then echo "work directory: $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT INT TERM; fi
# Private copies: the lead rebuilds .build while benchmarks run ("Text file busy").
mkdir -p "$WORK/bin"
cp "$SIGIL_BIN" "$WORK/bin/sigil"; cp "$SIGIL_BENCH_BIN" "$WORK/bin/sigil-bench"
export SIGIL_BIN="$WORK/bin/sigil" SIGIL_BENCH_BIN="$WORK/bin/sigil-bench"

cat > "$WORK/ocsp.lua" <<'LUA'
-- POST the DER requests given after `--` round-robin; count bodies that are not a successful OCSPResponse.
local bodies, built, n = {}, {}, 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  for i = 1, #args do
    local f = assert(io.open(args[i], "rb")); bodies[i] = f:read("*a"); f:close()
  end
  for i, b in ipairs(bodies) do built[i] = wrk.format("POST", nil, nil, b) end
  ok, bad = 0, 0
end
function request() n = n + 1; return built[(n % #built) + 1] end
local function status_byte(body)   -- OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }
  if body == nil or #body < 5 or body:byte(1) ~= 0x30 then return nil end
  local l = body:byte(2); local p = 3
  if l >= 0x80 then p = 3 + (l - 0x80) end
  if body:byte(p) ~= 0x0a or body:byte(p + 1) ~= 0x01 then return nil end
  return body:byte(p + 2)
end
function response(status, headers, body)
  if status == 200 and status_byte(body) == 0 then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local tok, tbad = 0, 0
  for _, t in ipairs(threads) do tok = tok + t:get("ok"); tbad = tbad + t:get("bad") end
  local e = summary.errors
  io.write(string.format("WRKRESULT requests=%d duration_us=%d ok=%d bad=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, tok, tbad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
LUA

status=0
"$BENCH_PY" - <<'PY' || status=$?
import datetime as dt, http.client, json, os, re, shutil, signal, socket, statistics, subprocess, sys, time
from pathlib import Path

E = os.environ
WORK = Path(E["WORK"]); SIGIL = E["SIGIL_BIN"]; BENCH = E["SIGIL_BENCH_BIN"]
N, REPS, N_CERTS, EVERY = int(E["N"]), int(E["REPS"]), int(E["N_CERTS"]), int(E["REVOKE_EVERY"])
DURATION, CONC = int(E["DURATION"]), int(E["CONCURRENCY"])
PW = "benchmark passphrase"
results = []   # RESULT lines, printed at the end
procs = []     # servers we started (stopped by PID at the end)

def sh(cmd, **kw):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"command failed (exit {p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p

def time_v(cmd, env=None, cwd=None):
    """Run under /usr/bin/time -v: (wall s, cpu s, peak RSS MiB, CompletedProcess)."""
    p = subprocess.run(["/usr/bin/time", "-v", *map(str, cmd)], capture_output=True, text=True, env=env, cwd=cwd)
    if p.returncode != 0:
        sys.exit(f"command failed (exit {p.returncode}): {' '.join(map(str, cmd))}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}")
    err = p.stderr
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err)
    parts = [float(x) for x in m.group(1).split(":")]
    wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    user = float(re.search(r"User time \(seconds\): (\S+)", err).group(1))
    sys_ = float(re.search(r"System time \(seconds\): (\S+)", err).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    return wall, user + sys_, rss, p

def median(xs): return statistics.median(xs)

load = " ".join(open("/proc/loadavg").read().split()[:3])
print(f"== revocation bench: {sh(['openssl', 'version']).stdout.strip()}; {os.cpu_count()} cores; load {load}; "
      f"netns={E.get('BENCH_IN_NETNS')}; sigil={SIGIL}")

# ===================================================================================== (a) CRL
def part_crl():
    print(f"\n== (a) CRL generation, {N:,} revoked entries")
    home = WORK / "crl-home"
    t0 = time.perf_counter()
    sh([BENCH, "crl-setup", "--entries", N, "--home", home])
    setup_s = time.perf_counter() - t0
    print(f"sigil-bench crl-setup --entries {N}: {setup_s:.1f} s (records only; not part of the comparison)")
    env = dict(os.environ, SIGIL_HOME=str(home), BENCH_PW=PW)
    int_pem = WORK / "sigil-int.pem"
    int_pem.write_text(sh([SIGIL, "ca", "show", "intermediate", "--pem"], env=env).stdout)

    srows = []
    for r in range(REPS):
        out = WORK / f"sigil-crl-{r}.der"
        wall, cpu, rss, _ = time_v([SIGIL, "crl", "generate", "--passphrase-env", "BENCH_PW", "--out", out], env=env)
        srows.append((wall, cpu, rss))
        print(f"  sigil crl generate run {r + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MiB")
    sigil_crl = WORK / f"sigil-crl-{REPS - 1}.der"
    p = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", sigil_crl, "-noout", "-CAfile", int_pem],
                       capture_output=True, text=True)
    sig_ok = "verify OK" in p.stdout + p.stderr
    # Read the entries back (openssl's own parse) and write an equal index.txt for openssl ca.
    t0 = time.perf_counter()
    text = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", sigil_crl, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    names = {"Key Compromise": "keyCompromise", "CA Compromise": "CACompromise", "Affiliation Changed": "affiliationChanged",
             "Superseded": "superseded", "Cessation Of Operation": "cessationOfOperation",
             "Certificate Hold": "certificateHold", "Privilege Withdrawn": "privilegeWithdrawn",
             "AA Compromise": "AACompromise", "Unspecified": "unspecified"}
    datecache = {}
    def ossl_time(s):
        if s not in datecache:
            datecache[s] = dt.datetime.strptime(s.replace("  ", " "), "%b %d %H:%M:%S %Y GMT").strftime("%y%m%d%H%M%SZ")
        return datecache[s]
    expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=90)).strftime("%y%m%d%H%M%SZ")
    lines, serial, rev, reason, want_reason = [], None, None, None, False
    def flush():
        if serial is not None:
            lines.append(f"R\t{expiry}\t{ossl_time(rev)}{',' + reason if reason else ''}\t{serial}\tunknown\t/CN=bench\n")
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Serial Number: "):
            flush()
            serial = s[15:].upper(); serial = ("0" + serial) if len(serial) % 2 else serial
            rev, reason, want_reason = None, None, False
        elif s.startswith("Revocation Date: "):
            rev = s[17:]
        elif s == "X509v3 CRL Reason Code:":
            want_reason = True
        elif want_reason:
            reason, want_reason = names[s], False
        elif s.startswith("Signature Algorithm") and serial is not None:
            flush(); serial = None
    flush()
    sigil_count = len(lines)
    der_bytes = sigil_crl.stat().st_size
    print(f"  sigil CRL: {sigil_count:,} entries (openssl's parse), DER {der_bytes / 1e6:.2f} MB "
          f"({der_bytes / max(1, sigil_count):.1f} B/entry), signature {'verify OK' if sig_ok else 'FAILED'}; "
          f"index.txt written in {time.perf_counter() - t0:.1f} s")
    if sigil_count != N or not sig_ok:
        sys.exit(f"sigil's CRL is wrong: {sigil_count} entries (want {N}), openssl: {(p.stdout + p.stderr).strip()}")

    od = WORK / "openssl-ca"; od.mkdir()
    (od / "index.txt").write_text("".join(lines)); del lines, text
    (od / "index.txt.attr").write_text("unique_subject = no\n")
    (od / "serial").write_text("01\n"); (od / "crlnumber").write_text("1000\n")
    (od / "ca.cnf").write_text("""[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
unique_subject = no
policy = policy_any
[ policy_any ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
""")
    sh(["openssl", "req", "-config", "ca.cnf", "-x509", "-extensions", "v3_ca", "-new", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
        "-subj", "/C=US/O=Bench/CN=Bench Intermediate"], cwd=od)
    orows = []
    for r in range(REPS):
        wall, cpu, rss, _ = time_v(["openssl", "ca", "-config", od / "ca.cnf", "-gencrl", "-out", od / f"crl-{r}.pem"], cwd=od)
        orows.append((wall, cpu, rss))
        print(f"  openssl ca -gencrl run {r + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MiB")
    ocrl = od / f"crl-{REPS - 1}.pem"
    sh(["openssl", "crl", "-in", ocrl, "-outform", "DER", "-out", od / "crl.der"])
    p = subprocess.run(["openssl", "crl", "-in", ocrl, "-noout", "-CAfile", od / "ca.pem"], capture_output=True, text=True)
    o_ok = "verify OK" in p.stdout + p.stderr
    o_count = subprocess.run(f"openssl crl -in '{ocrl}' -noout -text | grep -c 'Serial Number:'", shell=True,
                             capture_output=True, text=True).stdout.strip()
    o_der = (od / "crl.der").stat().st_size
    print(f"  openssl CRL: {int(o_count):,} entries, DER {o_der / 1e6:.2f} MB (PEM written), signature "
          f"{'verify OK' if o_ok else 'FAILED'}")

    sw, sc, sr = (median([x[i] for x in srows]) for i in range(3))
    ow, oc, orr = (median([x[i] for x in orows]) for i in range(3))
    print(f"\n{'CRL, ' + format(N, ',') + ' entries':34} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13} {'DER MB':>8}")
    print(f"{'sigil crl generate (release)':34} {sw:8.2f} {sc:8.2f} {sr:13.0f} {der_bytes / 1e6:8.2f}")
    print(f"{'openssl ca -gencrl':34} {ow:8.2f} {oc:8.2f} {orr:13.0f} {o_der / 1e6:8.2f}")
    print(f"{'ratio sigil / openssl':34} {sw / ow:7.2f}x {sc / oc:7.2f}x {sr / orr:12.2f}x {der_bytes / o_der:7.2f}x")
    k = f"{N // 1000}k"
    results.extend([f"RESULT openssl_gencrl_{k}_s={ow:.3f} s", f"RESULT openssl_gencrl_{k}_peak_rss_mib={orr:.0f} MiB",
                    f"RESULT sigil_crl_generate_{k}_peak_rss_mib={sr:.0f} MiB",
                    f"RESULT sigil_over_openssl_gencrl_time={sw / ow:.3f}",
                    f"RESULT sigil_crl_generate_{k}_s={sw:.3f} s"])

# ===================================================================================== (b) OCSP
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def proc_cpu_ms(pid):
    """user+sys CPU ms of pid and its live children."""
    total = 0.0
    pids = [pid] + [int(x) for x in subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                                                     text=True).stdout.split()]
    for p in pids:
        try:
            st = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        f = st[st.rindex(")") + 2:].split()
        total += (int(f[11]) + int(f[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
    return total

def stop(p):
    """SIGTERM to the process group our server leads (its forked workers too), then SIGKILL."""
    if p.poll() is None:
        kids = [int(x) for x in subprocess.run(["ps", "-o", "pid=", "--ppid", str(p.pid)], capture_output=True,
                                                text=True).stdout.split()]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                if os.getpgid(p.pid) == p.pid:
                    os.killpg(p.pid, sig)
                else:
                    p.send_signal(sig)
            except ProcessLookupError:
                pass
            for k in kids:
                try:
                    os.kill(k, sig)
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=20)
                break
            except subprocess.TimeoutExpired:
                continue

def post(port, path, body, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/ocsp-request"})
        r = c.getresponse(); return r.status, r.read()
    finally:
        c.close()

def wait_ocsp(port, path, body, limit=60):
    """Readiness with a REAL request (an empty connection would kill `openssl ocsp` 3.0)."""
    end = time.time() + limit
    while time.time() < end:
        try:
            if post(port, path, body, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"no OCSP answer on port {port} within {limit} s")

def part_ocsp():
    import requests
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import ocsp
    from cryptography.x509.oid import NameOID

    print(f"\n== (b) OCSP responders, {N_CERTS} certificates (every {EVERY}th revoked), wrk -t1 -c{CONC} -d{DURATION}s")
    d = WORK / "ocsp"; d.mkdir()
    home = d / "home"; home.mkdir()
    hport = free_port()

    def start_sigil(mode):
        out, err = open(d / f"serve-{mode}.out", "wb"), open(d / f"serve-{mode}.err", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env.update(SIGIL_HOME=str(home), SIGIL_LOG_LEVEL="warning")
        p = subprocess.Popen([SIGIL, "serve", "--listen", "127.0.0.1:0", "--http-listen", f"127.0.0.1:{hport}",
                              "--http-public-url", f"http://127.0.0.1:{hport}", "--ocsp-signer", mode],
                             env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(p)
        end = time.time() + 180
        while time.time() < end:
            text = (d / f"serve-{mode}.out").read_text()
            m = re.search(r"^listening: https://\S+:(\d+) ", text, re.M)
            if m:
                return p, int(m.group(1)), text
            if p.poll() is not None:
                sys.exit(f"sigil serve exited {p.returncode}\n{text}\n{(d / f'serve-{mode}.err').read_text()[-3000:]}")
            time.sleep(0.05)
        sys.exit("sigil serve did not start")

    # --- issue the certificates through sigil's REST API, revoke every EVERY-th
    p, https_port, text = start_sigil("delegated")
    token = re.search(r"^admin token: (\S+)", text, re.M).group(1)
    api = requests.Session(); api.trust_env = False; api.verify = str(home / "root.pem")
    api.headers["Authorization"] = f"Bearer {token}"
    base = f"https://127.0.0.1:{https_port}/api/v1"
    def csr_for(cn, key=None):
        key = key or ec.generate_private_key(ec.SECP256R1())
        b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        if not cn.startswith("Bench OCSP"):
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        return key, b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    t0 = time.perf_counter()
    issued = []   # (serial int, not_after, revoked_at or None)
    for i in range(N_CERTS):
        _, csr = csr_for(f"host{i}.example.com")
        r = api.post(f"{base}/certificates", json={"csr": csr, "profile": "tls-server"}, timeout=60)
        if r.status_code != 201:
            sys.exit(f"issuance failed: {r.status_code} {r.text[:500]}")
        cert = x509.load_pem_x509_certificate(r.json()["certificate"].encode())
        issued.append([cert.serial_number, cert.not_valid_after_utc, None])
    for row in issued[::EVERY]:
        r = api.post(f"{base}/certificates/{row[0]:x}/revoke", json={"reason": "keyCompromise"}, timeout=60)
        if r.status_code != 200:
            sys.exit(f"revocation failed: {r.status_code} {r.text[:500]}")
        row[2] = dt.datetime.fromisoformat(r.json()["revoked_at"].replace("Z", "+00:00"))
    print(f"issued {N_CERTS} and revoked {len(issued[::EVERY])} through the REST API in {time.perf_counter() - t0:.1f} s")
    c = http.client.HTTPConnection("127.0.0.1", hport, timeout=30); c.request("GET", "/ca/intermediate.crt")
    int_der = c.getresponse().read(); c.close()
    int_cert = x509.load_der_x509_certificate(int_der)
    (d / "int.pem").write_bytes(int_cert.public_bytes(serialization.Encoding.PEM))
    # A delegated responder certificate for openssl, issued by the same intermediate.
    okey, ocsr = csr_for("Bench OCSP Responder (openssl)")
    r = api.post(f"{base}/certificates", json={"csr": ocsr, "profile": "ocsp-signing"}, timeout=60)
    if r.status_code != 201:
        sys.exit(f"ocsp-signing issuance failed: {r.status_code} {r.text[:500]}")
    (d / "ocsp.pem").write_text(r.json()["certificate"])
    (d / "ocsp.key").write_bytes(okey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    # index.txt: the same certificates and statuses
    def hexserial(n):
        h = format(n, "X"); return h if len(h) % 2 == 0 else "0" + h
    fmt = lambda t: t.strftime("%y%m%d%H%M%SZ")
    (d / "index.txt").write_text("".join(
        f"{'R' if rev else 'V'}\t{fmt(na)}\t{fmt(rev) + ',keyCompromise' if rev else ''}\t{hexserial(s)}\tunknown\t/CN=host{i}.example.com\n"
        for i, (s, na, rev) in enumerate(issued)))
    (d / "index.txt.attr").write_text("unique_subject = no\n")
    # three requests, without and with a nonce
    good, revoked = issued[1][0], issued[0][0]
    reqs = {}
    for label, serial in (("good", good), ("revoked", revoked), ("unknown", 0xDEADBEEF01)):
        for nonce in (False, True):
            f = d / f"{label}{'-nonce' if nonce else ''}.der"
            sh(["openssl", "ocsp", "-issuer", d / "int.pem", "-serial", f"0x{serial:X}", "-reqout", f,
                *([] if nonce else ["-no_nonce"])])
            reqs[(label, nonce)] = f
    want = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}

    def check(port, path, who):
        for (label, nonce), f in reqs.items():
            st, body = post(port, path, f.read_bytes())
            resp = ocsp.load_der_ocsp_response(body)
            assert st == 200 and resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, (who, label, st)
            assert resp.certificate_status == want[label], (who, label, resp.certificate_status)
            signer = resp.certificates[0] if resp.certificates else int_cert
            signer.public_key().verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
            if nonce:
                assert any(e.oid.dotted_string == "1.3.6.1.5.5.7.48.1.2" for e in resp.extensions), (who, "no nonce echoed")
        print(f"  {who}: good/revoked/unknown answered correctly, signatures verify ({'delegated' if signer is not int_cert else 'CA'} signer)")

    def status_byte(body):  # OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }
        if len(body) < 5 or body[0] != 0x30:
            return None
        p = 2 + (body[1] - 0x80 if body[1] >= 0x80 else 0)
        if body[p] != 0x0A or body[p + 1] != 0x01:
            return None
        return body[p + 2]

    def load(port, path, nonce, keepalive, pid, label):
        """The same client for every responder: asyncio, CONC connections, DURATION s, the three requests
        round-robin; keepalive=False opens a new TCP connection per request ("Connection: close")."""
        import asyncio, resource
        bodies = [reqs[(l, nonce)].read_bytes() for l in ("good", "revoked", "unknown")]
        wire = [(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/ocsp-request\r\n"
                 f"Content-Length: {len(b)}\r\n{'' if keepalive else 'Connection: close' + chr(13) + chr(10)}\r\n").encode() + b
                for b in bodies]
        lat, counts = [], {"ok": 0, "bad": 0, "error": 0}

        async def worker(k, stop_at):
            i, conn = k, None
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                    reader, writer = conn
                    writer.write(wire[i % 3]); i += 1
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    body = await asyncio.wait_for(reader.readexactly(int(m.group(1))), 5) if m else \
                        await asyncio.wait_for(reader.read(), 5)
                    ok = head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and status_byte(body) == 0
                    if not keepalive or not m:
                        writer.close(); conn = None
                    lat.append(time.perf_counter() - t0)
                    counts["ok" if ok else "bad"] += 1
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, AttributeError):
                    counts["error"] += 1
                    if conn is not None:
                        conn[1].close(); conn = None
            if conn is not None:
                conn[1].close()

        async def main():
            stop_at = time.perf_counter() + DURATION
            await asyncio.gather(*(worker(k, stop_at) for k in range(CONC)))

        cpu0, r0, t0 = proc_cpu_ms(pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        asyncio.run(main())
        el, cpu1, r1 = time.perf_counter() - t0, proc_cpu_ms(pid), resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / el * 100
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
        errors = counts["bad"] + counts["error"]
        row = dict(label=label, rps=counts["ok"] / el, p50=q[49] * 1e3, p99=q[98] * 1e3, ok=counts["ok"], errors=errors,
                   detail=f"bad={counts['bad']} io={counts['error']}", cpu=(cpu1 - cpu0) / max(1, counts["ok"] + counts["bad"]),
                   client=client_cpu)
        print(f"  {label:56} {row['rps']:7.0f} resp/s  p50 {row['p50']:.2f} ms  p99 {row['p99']:.2f} ms  errors {errors} "
              f"({row['detail']})  server CPU {row['cpu']:.3f} ms/resp  client CPU {client_cpu:.0f}%")
        return row

    def wrk(port, path, nonce, pid, label):
        """Supplementary, sigil only (keep-alive): wrk opens and closes a probe connection before its run,
        which sends `openssl ocsp` 3.0 into its 100%-CPU loop, so it cannot load the peer."""
        files = [reqs[(l, nonce)] for l in ("good", "revoked", "unknown")]
        args = ["wrk", "-t1", f"-c{CONC}", f"-d{DURATION}s", "--timeout", "5s", "-s", WORK / "ocsp.lua",
                "-H", "Content-Type: application/ocsp-request", f"http://127.0.0.1:{port}{path}", "--", *files]
        cpu0 = proc_cpu_ms(pid)
        p = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=DURATION + 120)
        cpu1 = proc_cpu_ms(pid)
        m = re.search(r"^WRKRESULT (.*)$", p.stdout, re.M)
        if not m:
            sys.exit(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        v = {k: int(x) for k, x in (kv.split("=") for kv in m.group(1).split())}
        errors = v["bad"] + v["connect"] + v["read"] + v["write"] + v["timeout"]
        row = dict(label=label, rps=v["ok"] / (v["duration_us"] / 1e6), p50=v["p50_us"] / 1000, p99=v["p99_us"] / 1000,
                   ok=v["ok"], errors=errors, cpu=(cpu1 - cpu0) / max(1, v["ok"] + v["bad"]), client=float("nan"),
                   detail=f"bad={v['bad']} connect={v['connect']} read={v['read']} write={v['write']} timeout={v['timeout']}")
        print(f"  {label:56} {row['rps']:7.0f} resp/s  p50 {row['p50']:.2f} ms  p99 {row['p99']:.2f} ms  "
              f"errors {errors} ({row['detail']})  server CPU {row['cpu']:.3f} ms/resp")
        return row

    rows = []
    check(hport, "/ocsp", "sigil --ocsp-signer delegated")
    rows.append(load(hport, "/ocsp", False, False, p.pid, "sigil delegated, new connection/request, no nonce"))
    rows.append(load(hport, "/ocsp", True, False, p.pid, "sigil delegated, new connection/request, nonce"))
    rows.append(load(hport, "/ocsp", False, True, p.pid, "sigil delegated, keep-alive, no nonce"))
    if shutil.which("wrk"):
        rows.append(wrk(hport, "/ocsp", False, p.pid, "sigil delegated, keep-alive, no nonce [wrk]"))
    alive = p.poll() is None
    stop(p)
    if not alive:
        sys.exit("sigil serve died during the load")
    p, _, _ = start_sigil("ca")
    check(hport, "/ocsp", "sigil --ocsp-signer ca")
    rows.append(load(hport, "/ocsp", False, True, p.pid, "sigil ca signer, keep-alive, no nonce"))
    stop(p)

    oport = free_port()
    def start_openssl(*extra):
        p = subprocess.Popen(["openssl", "ocsp", "-index", "index.txt", "-port", str(oport), "-rsigner", "ocsp.pem",
                              "-rkey", "ocsp.key", "-CA", "int.pem", "-ndays", "7", "-timeout", "10", *extra],
                             cwd=d, stdout=open(d / "openssl-ocsp.log", "ab"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             # -multi makes itself a process-group leader (setpgid), which fails -- and the
                             # responder never answers -- when it is already a session leader.
                             start_new_session="-multi" not in extra)
        procs.append(p)
        wait_ocsp(oport, "/", reqs[("good", False)].read_bytes())
        return p
    p = start_openssl()
    check(oport, "/", "openssl ocsp")
    rows.append(load(oport, "/", False, False, p.pid, "openssl ocsp (closes every connection), no nonce"))
    rows.append(load(oport, "/", True, False, p.pid, "openssl ocsp (closes every connection), nonce"))
    stop(p)
    p = start_openssl("-multi", "2")
    rows.append(load(oport, "/", False, False, p.pid, "openssl ocsp -multi 2, no nonce"))
    stop(p)

    print(f"\n{'OCSP responder (asyncio client, ' + str(CONC) + ' connections, ' + str(DURATION) + ' s)':62} {'resp/s':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>7} {'srv CPU ms/resp':>15} {'client CPU':>10}")
    for r in rows:
        print(f"{r['label']:62} {r['rps']:8.0f} {r['p50']:7.2f} {r['p99']:7.2f} {r['errors']:7d} {r['cpu']:15.3f} "
              f"{'' if r['client'] != r['client'] else format(r['client'], '.0f') + '%':>10}")
    by = {r["label"]: r for r in rows}
    s_close = by["sigil delegated, new connection/request, no nonce"]
    s_keep = by["sigil delegated, keep-alive, no nonce"]
    s_nonce = by["sigil delegated, new connection/request, nonce"]
    o_plain = by["openssl ocsp (closes every connection), no nonce"]
    o_nonce = by["openssl ocsp (closes every connection), nonce"]
    o_multi = by["openssl ocsp -multi 2, no nonce"]
    print()
    for label, a, b in (("sigil / openssl, new connection per request, no nonce", s_close, o_plain),
                        ("sigil / openssl, nonce (a signature per response)", s_nonce, o_nonce),
                        ("sigil keep-alive / openssl", s_keep, o_plain),
                        ("sigil new connection / openssl -multi 2", s_close, o_multi)):
        print(f"{label:62} {a['rps'] / b['rps']:6.2f}x resp/s   server CPU/resp {a['cpu'] / b['cpu']:.2f}x")
    results.extend([
        f"RESULT openssl_ocsp_responses_per_s={o_plain['rps']:.0f} responses/s",
        f"RESULT openssl_ocsp_nonce_responses_per_s={o_nonce['rps']:.0f} responses/s",
        f"RESULT sigil_ocsp_keepalive_responses_per_s={s_keep['rps']:.0f} responses/s",
        f"RESULT sigil_ocsp_nonce_responses_per_s={s_nonce['rps']:.0f} responses/s",
        f"RESULT sigil_ocsp_p99_ms={s_close['p99']:.2f} ms",
        f"RESULT sigil_ocsp_errors={sum(r['errors'] for r in rows if r['label'].startswith('sigil'))}",
        f"RESULT sigil_over_openssl_ocsp={s_close['rps'] / o_plain['rps']:.3f}",
        f"RESULT sigil_ocsp_responses_per_s={s_close['rps']:.0f} responses/s",
    ])

try:
    if E["SKIP_CRL"] != "1":
        part_crl()
    if E["SKIP_OCSP"] != "1":
        part_ocsp()
finally:
    for p in procs:
        stop(p)
print()
for line in results:
    print(line)
PY
exit "$status"
