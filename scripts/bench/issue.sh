#!/usr/bin/env bash
# scripts/bench/issue.sh -- CA issuance throughput: sigil vs the physical limit, `openssl ca`, `cfssl sign`.
#
# One run, the same work for every tool: N P-256 CSRs (distinct keys, CN + DNS SAN
# hostI.example.com), made once with `openssl req` into one directory; each tool checks every CSR's
# signature and signs a TLS server certificate with a P-256 CA key.
#
#   (a) sigil-bench issue --count N --concurrency C --csr-dir DIR   in-process, release build:
#       CSR parse + verify, tls-server policy, signing, a durable SQLite commit of the certificate
#       and its audit entries for every certificate (fsync'd), then the audit chain is verified.
#   (b) physical limit: `openssl speed -seconds S ecdsap256` (one core): one verify (the CSR) + one
#       sign (the certificate) per certificate -> limit = 1 / (1/sign + 1/verify); x nproc cores.
#   (c) `openssl ca -batch`, P-256 CA, index.txt + rand_serial, same extensions as sigil's
#       tls-server profile: (c1) ONE process over all N CSRs with -infiles; (c2) a loop of one
#       `openssl ca` process per CSR over the first OSSL_LOOP_N CSRs. No fsync, no audit.
#   (d) `cfssl sign` (Debian golang-cfssl, installed if missing), one process per CSR over the first
#       CFSSL_N CSRs (the CLI has no batch mode; `cfssl serve` throughput is issue 4's business).
#       No database.
#   (e) `sigil ca sign`, one process per CSR over the first SIGIL_CLI_N CSRs (release binary; each
#       process decrypts the CA key: scrypt), when a release `sigil` with `ca sign` is available.
#
# Env knobs:
#   N (2000)  CONCURRENCY (8)  SPEED_SECONDS (3)  OSSL_LOOP_N (200)  CFSSL_N (200)  SIGIL_CLI_N (50)
#   SKIP_BUILD=1          use the existing .build/release binaries
#   SIGIL_BENCH_BIN       time this sigil-bench instead of .build/release/sigil-bench
#   SIGIL_BIN             the sigil CLI for (e) (default .build/release/sigil; (e) is skipped when it
#                         lacks `ca sign`)
#   KEEP_WORK=1           keep the work directory
# Last lines: RESULT lines; the last is RESULT sigil_issue_per_s=<certs/s>.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${N:-2000}"
CONCURRENCY="${CONCURRENCY:-8}"
SPEED_SECONDS="${SPEED_SECONDS:-3}"
OSSL_LOOP_N="${OSSL_LOOP_N:-200}"
CFSSL_N="${CFSSL_N:-200}"
SIGIL_CLI_N="${SIGIL_CLI_N:-50}"

command -v openssl >/dev/null || { echo "openssl not found (apt-get install openssl)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }
if ! command -v cfssl >/dev/null; then
  echo "==> installing golang-cfssl (apt-get)" >&2
  apt-get install -y --no-install-recommends golang-cfssl >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends golang-cfssl >/dev/null 2>&1; } \
    || echo "warning: golang-cfssl is not installable; the cfssl row is skipped" >&2
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  # `swift build` takes one --product: two invocations.
  echo "==> swift build -c release --product sigil-bench" >&2
  (cd "$ROOT" && swift build -c release --product sigil-bench >&2)
  if [ -z "${SIGIL_BIN:-}" ] && [ "$SIGIL_CLI_N" -gt 0 ]; then
    echo "==> swift build -c release --product sigil" >&2
    (cd "$ROOT" && swift build -c release --product sigil >&2)
  fi
fi
SIGIL_BENCH_BIN="${SIGIL_BENCH_BIN:-$ROOT/.build/release/sigil-bench}"
SIGIL_BIN="${SIGIL_BIN:-$ROOT/.build/release/sigil}"
[ -x "$SIGIL_BENCH_BIN" ] || { echo "sigil-bench not found: $SIGIL_BENCH_BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-bench-issue.XXXXXX")"
if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory: $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT INT TERM; fi

# ------------------------------------------------------------------------------------ CSRs
mkdir -p "$WORK/csr"
echo "==> generating $N P-256 CSRs with openssl req ($(nproc) in parallel)" >&2
t0=$(date +%s%N)
seq -f '%05g' 0 $((N - 1)) | xargs -P "$(nproc)" -I{} \
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
    -subj "/CN=host{}.example.com" -addext "subjectAltName=DNS:host{}.example.com" \
    -out "$WORK/csr/{}.csr" 2>/dev/null
echo "    took $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
[ "$(ls "$WORK/csr" | wc -l)" -eq "$N" ] || { echo "CSR generation failed" >&2; exit 1; }

export N CONCURRENCY SPEED_SECONDS OSSL_LOOP_N CFSSL_N SIGIL_CLI_N SIGIL_BENCH_BIN SIGIL_BIN WORK
exec python3 - <<'PY'
import glob, json, os, re, resource, shutil, subprocess, sys, time

E = os.environ
N, C = int(E["N"]), int(E["CONCURRENCY"])
work, csrdir = E["WORK"], os.path.join(E["WORK"], "csr")
csrs = sorted(glob.glob(os.path.join(csrdir, "*.csr")))
ncpu = os.cpu_count()

def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"command failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p

def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def timed(fn):
    c0, t0 = child_cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, child_cpu() - c0

def verify(ca_files, cert, who):
    args = ["openssl", "verify"]
    for i, f in enumerate(ca_files):
        args += ["-CAfile" if i == 0 else "-untrusted", f]
    p = subprocess.run(args + [cert], capture_output=True, text=True)
    if p.returncode != 0 or not p.stdout.strip().endswith("OK"):
        sys.exit(f"{who}: issued certificate does not verify:\n{p.stdout}{p.stderr}")

rows = []   # (name, mode, certs, wall_s, certs_per_s, cpu_ms_per_cert)
load = " ".join(open("/proc/loadavg").read().split()[:3])
ver = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
print(f"== CA issuance, {N} P-256 CSRs; {ver}; {ncpu} cores; load {load}")

# (a) sigil-bench -------------------------------------------------------------------------
home = os.path.join(work, "bench-home")
cmd = [E["SIGIL_BENCH_BIN"], "issue", "--count", str(N), "--concurrency", str(C), "--csr-dir", csrdir, "--home", home]
print("$ " + " ".join(cmd))
p = run(cmd)
res = dict(re.findall(r"^RESULT (\w+)=(\S+)", p.stdout, re.M))
print("\n".join("   " + l for l in p.stdout.strip().splitlines()))
if int(res.get("issued", -1)) != N or int(res.get("recorded", -1)) != N or res.get("audit_chain_ok") != "true":
    sys.exit(f"sigil-bench did not issue and record all {N} certificates with an intact audit chain:\n{p.stdout}")
sigil_rate, sigil_cpu, sigil_wall = float(res["issue_per_s"]), float(res["cpu_ms_per_cert"]), float(res["wall_s"])
rows.append(("sigil-bench issue", f"in-process, C={C}, SQLite+audit, fsync", N, sigil_wall, sigil_rate, sigil_cpu))

# (b) physical limit ----------------------------------------------------------------------
p = run(["openssl", "speed", "-mr", "-seconds", E["SPEED_SECONDS"], "ecdsap256"])
m = re.search(r"^\+F4:\d+:256:([\d.]+):([\d.]+)", p.stdout, re.M)
if not m:
    sys.exit("cannot parse openssl speed output:\n" + p.stdout)
sign_s, verify_s = float(m.group(1)), float(m.group(2))
limit_core = 1 / (1 / sign_s + 1 / verify_s)
print(f"openssl speed ecdsap256 (1 core): {sign_s:,.0f} sign/s, {verify_s:,.0f} verify/s "
      f"-> limit {limit_core:,.0f} certs/s per core, {limit_core * ncpu:,.0f} on {ncpu} cores")
rows.append(("physical limit", "1 verify + 1 sign, 1 core", None, None, limit_core, 1000 / limit_core))
rows.append(("physical limit", f"x {ncpu} cores", None, None, limit_core * ncpu, 1000 / limit_core))

# (c) openssl ca --------------------------------------------------------------------------
od = os.path.join(work, "ossl")
os.makedirs(os.path.join(od, "newcerts"))
open(os.path.join(od, "index.txt"), "w").close()
run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
     "-keyout", f"{od}/ca.key", "-out", f"{od}/ca.pem", "-days", "1825", "-subj", "/C=US/O=Bench/CN=Bench openssl CA",
     "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
cnf = os.path.join(od, "openssl.cnf")
open(cnf, "w").write(f"""[ca]
default_ca = CA_default
[CA_default]
dir = {od}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
rand_serial = yes
default_md = sha256
default_days = 90
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = copy
x509_extensions = leaf_ext
[policy_any]
commonName = supplied
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
certificatePolicies = 2.23.140.1.2.1
crlDistributionPoints = URI:http://pki.example.com/crl/ca.crl
authorityInfoAccess = OCSP;URI:http://pki.example.com/ocsp,caIssuers;URI:http://pki.example.com/ca/ca.crt
""")
out_all = os.path.join(od, "all.pem")
wall, cpu = timed(lambda: run(["openssl", "ca", "-batch", "-config", cnf, "-notext", "-out", out_all, "-infiles", *csrs]))
n_index = sum(1 for _ in open(os.path.join(od, "index.txt")))
if n_index != N:
    sys.exit(f"openssl ca -infiles: index.txt has {n_index} entries, expected {N}")
first = os.path.join(od, "first.pem")
run(["openssl", "x509", "-in", out_all, "-out", first])
verify([f"{od}/ca.pem"], first, "openssl ca")
rows.append(("openssl ca -infiles", "1 process, index.txt, no fsync", N, wall, N / wall, cpu * 1000 / N))

loop_n = min(int(E["OSSL_LOOP_N"]), N)
if loop_n > 0:
    ld = os.path.join(od, "loop"); os.makedirs(ld)
    def ossl_loop():
        for i, f in enumerate(csrs[:loop_n]):
            run(["openssl", "ca", "-batch", "-config", cnf, "-notext", "-in", f, "-out", f"{ld}/{i}.pem"])
    wall, cpu = timed(ossl_loop)
    verify([f"{od}/ca.pem"], f"{ld}/0.pem", "openssl ca loop")
    rows.append(("openssl ca loop", "1 process per cert", loop_n, wall, loop_n / wall, cpu * 1000 / loop_n))

# (d) cfssl sign --------------------------------------------------------------------------
cfssl_n = min(int(E["CFSSL_N"]), N)
cfssl_rate = None
if shutil.which("cfssl") and shutil.which("cfssljson") and cfssl_n > 0:
    cd = os.path.join(work, "cfssl"); os.makedirs(cd)
    open(f"{cd}/ca-csr.json", "w").write(json.dumps({"CN": "Bench CFSSL CA", "key": {"algo": "ecdsa", "size": 256},
                                                     "names": [{"C": "US", "O": "Bench"}]}))
    init = subprocess.run(["cfssl", "gencert", "-initca", f"{cd}/ca-csr.json"], capture_output=True)
    subprocess.run(["cfssljson", "-bare", f"{cd}/ca"], input=init.stdout, check=True, capture_output=True)
    open(f"{cd}/config.json", "w").write(json.dumps({"signing": {"default": {
        "expiry": "2160h", "usages": ["digital signature", "server auth"]}}}))
    ver_c = subprocess.run(["cfssl", "version"], capture_output=True, text=True).stdout.split("\n")[0]
    def cfssl_loop():
        for i, f in enumerate(csrs[:cfssl_n]):
            p = run(["cfssl", "sign", "-ca", f"{cd}/ca.pem", "-ca-key", f"{cd}/ca-key.pem", "-config", f"{cd}/config.json", f])
            if i == 0:
                open(f"{cd}/first.pem", "w").write(json.loads(p.stdout)["cert"])
    wall, cpu = timed(cfssl_loop)
    verify([f"{cd}/ca.pem"], f"{cd}/first.pem", "cfssl sign")
    cfssl_rate = cfssl_n / wall
    rows.append(("cfssl sign loop", f"1 process per cert, no db ({ver_c.strip()})", cfssl_n, wall, cfssl_rate, cpu * 1000 / cfssl_n))
else:
    print("cfssl not available: row skipped")

# (e) sigil ca sign (CLI) -----------------------------------------------------------------
cli_n = min(int(E["SIGIL_CLI_N"]), N)
sigil = E["SIGIL_BIN"]
cli_ok = cli_n > 0 and os.access(sigil, os.X_OK) and \
    "--profile" in subprocess.run([sigil, "ca", "sign", "--help"], capture_output=True, text=True).stdout
if cli_ok:
    sh = os.path.join(work, "sigil-home"); os.makedirs(sh)
    open(f"{sh}/sigil.yaml", "w").write("http_public_url: http://pki.example.com\n")
    env = dict(os.environ, SIGIL_HOME=sh, BENCH_PW="benchmark passphrase")
    run([sigil, "ca", "init", "--key-type", "ec:P-256", "--passphrase-env", "BENCH_PW"], env=env)
    run([sigil, "ca", "init", "--intermediate", "--passphrase-env", "BENCH_PW"], env=env)
    sd = os.path.join(sh, "out"); os.makedirs(sd)
    def sigil_loop():
        for i, f in enumerate(csrs[:cli_n]):
            run([sigil, "ca", "sign", f, "--out", f"{sd}/{i}.pem", "--passphrase-env", "BENCH_PW"], env=env)
    wall, cpu = timed(sigil_loop)
    open(f"{sh}/root.pem", "w").write(run([sigil, "ca", "show", "root", "--pem"], env=env).stdout)
    open(f"{sh}/int.pem", "w").write(run([sigil, "ca", "show", "intermediate", "--pem"], env=env).stdout)
    verify([f"{sh}/root.pem", f"{sh}/int.pem"], f"{sd}/0.pem", "sigil ca sign")
    rows.append(("sigil ca sign loop", "1 process per cert (scrypt unlock)", cli_n, wall, cli_n / wall, cpu * 1000 / cli_n))
else:
    print(f"sigil CLI row skipped ({sigil} missing or without `ca sign`; build it: swift build -c release --product sigil)")

# table -----------------------------------------------------------------------------------
print()
print(f"{'tool':22} {'mode':44} {'certs':>6} {'wall_s':>8} {'certs/s':>9} {'cpu_ms/cert':>11}")
for name, mode, n, wall, rate, cpu in rows:
    print(f"{name:22} {mode:44} {n if n else '':>6} {'' if wall is None else f'{wall:.3f}':>8} {rate:9.1f} {cpu:11.3f}")
print()
ratios = [("sigil / physical limit (all cores)", sigil_rate / (limit_core * ncpu)),
          ("sigil cpu/cert vs ideal cpu/cert", sigil_cpu / (1000 / limit_core))]
ratios += [(f"sigil / {name}", sigil_rate / rate) for name, mode, n, wall, rate, cpu in rows
           if name not in ("sigil-bench issue", "physical limit")]
for label, r in ratios:
    print(f"{label:40} {r:8.3f}x")
print()
print(f"RESULT physical_limit_certs_per_s={limit_core * ncpu:.0f} certs/s ({ncpu} cores)")
for name, mode, n, wall, rate, cpu in rows:
    if name not in ("sigil-bench issue", "physical limit"):
        print(f"RESULT {re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}_certs_per_s={rate:.1f} certs/s")
print(f"RESULT sigil_over_physical_limit={sigil_rate / (limit_core * ncpu):.3f}")
print(f"RESULT sigil_cpu_ms_per_cert={sigil_cpu:.3f} ms")
print(f"RESULT sigil_issue_per_s={sigil_rate:.0f} certs/s")
PY
