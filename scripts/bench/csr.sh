#!/usr/bin/env bash
# scripts/bench/csr.sh -- `sigil csr new` vs `openssl req -new -newkey` (key + CSR, one process each).
#
# Same work for both tools: a new unencrypted key, a PKCS#10 request with the same subject and one
# DNS SAN, both written to files. Whole-process wall time, release build of sigil. Runs of the two
# tools are interleaved so machine noise hits both alike. Prints median / p90 / min per tool and the
# sigil/openssl ratio of the medians (below 1 means sigil is faster).
#
# Env knobs:
#   RUNS_EC   (default 51)  runs per tool for ec:P-256
#   RUNS_RSA  (default 21)  runs per tool for rsa:2048
#   WARMUP    (default 3)   untimed runs per tool and case first
#   SKIP_BUILD=1            use the existing .build/release/sigil
#   SIGIL_BIN               time this binary instead
# Last lines: RESULT csr_<case>_ratio=<sigil/openssl median ratio>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS_EC="${RUNS_EC:-51}"
RUNS_RSA="${RUNS_RSA:-21}"
WARMUP="${WARMUP:-3}"

command -v openssl >/dev/null || { echo "openssl not found (apt-get install openssl)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }

if [ -z "${SIGIL_BIN:-}" ]; then
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "==> swift build -c release --product sigil" >&2
    (cd "$ROOT" && swift build -c release --product sigil >&2)
  fi
  SIGIL_BIN="$ROOT/.build/release/sigil"
fi
[ -x "$SIGIL_BIN" ] || { echo "sigil binary not found: $SIGIL_BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sigil-bench-csr.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

export SIGIL_BIN RUNS_EC RUNS_RSA WARMUP WORK
exec python3 - <<'PY'
import os, statistics, subprocess, sys, time

sigil = os.environ["SIGIL_BIN"]
work = os.environ["WORK"]
warmup = int(os.environ["WARMUP"])
SUBJ = "/C=US/O=Example Corp/CN=www.example.com"
SAN = "DNS:www.example.com"

def sigil_cmd(kt, d):
    return [sigil, "csr", "new", "--key-type", kt, "--key-out", f"{d}/k.pem", "--no-passphrase",
            "--subject", SUBJ, "--san", SAN, "--out", f"{d}/c.csr", "--force"]

def openssl_cmd(newkey, d):
    return ["openssl", "req", "-new", *newkey, "-nodes", "-keyout", f"{d}/k.pem", "-out", f"{d}/c.csr",
            "-subj", SUBJ, "-addext", f"subjectAltName={SAN}"]

CASES = [
    ("ec_p256", "ec:P-256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], int(os.environ["RUNS_EC"])),
    ("rsa2048", "rsa:2048", ["-newkey", "rsa:2048"], int(os.environ["RUNS_RSA"])),
]

def once(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed (exit {p.returncode}): {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    return dt

def verify(d, who):
    p = subprocess.run(["openssl", "req", "-in", f"{d}/c.csr", "-noout", "-verify", "-text"],
                       capture_output=True, text=True)
    out = p.stdout + p.stderr
    if "verify OK" not in out or "DNS:www.example.com" not in out:
        sys.exit(f"{who}: the CSR does not verify or lacks the SAN:\n{out}")

def pct(xs, q):  # nearest-rank percentile
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]

ver = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
load = open("/proc/loadavg").read().split()[:3]
print(f"== sigil csr new vs openssl req -new -newkey; {ver}; {os.cpu_count()} cores; load {' '.join(load)}")
print(f"   subject {SUBJ}, SAN {SAN}; sigil binary: {sigil}")
print()
rows, results = [], []
for name, kt, newkey, runs in CASES:
    ds, do = os.path.join(work, f"{name}-sigil"), os.path.join(work, f"{name}-openssl")
    os.makedirs(ds); os.makedirs(do)
    cs, co = sigil_cmd(kt, ds), openssl_cmd(newkey, do)
    for _ in range(warmup):
        once(cs); once(co)
    verify(ds, "sigil"); verify(do, "openssl")
    ts, to = [], []
    for i in range(runs):           # interleaved, alternating who goes first
        if i % 2 == 0:
            ts.append(once(cs)); to.append(once(co))
        else:
            to.append(once(co)); ts.append(once(cs))
    for tool, xs in (("sigil", ts), ("openssl", to)):
        rows.append((name, tool, runs, statistics.median(xs) * 1e3, pct(xs, 90) * 1e3, min(xs) * 1e3,
                     statistics.mean(xs) * 1e3))
    ratio = statistics.median(ts) / statistics.median(to)
    results.append((name, ratio))
    rows.append((name, "ratio", None, ratio, pct(ts, 90) / pct(to, 90), None, None))

print(f"{'case':9} {'tool':8} {'runs':>4} {'median_ms':>10} {'p90_ms':>9} {'min_ms':>8} {'mean_ms':>9}")
for name, tool, runs, med, p90, mn, mean in rows:
    if tool == "ratio":
        print(f"{name:9} {'sig/ossl':8} {'':>4} {med:9.2f}x {p90:8.2f}x")
    else:
        print(f"{name:9} {tool:8} {runs:4d} {med:10.2f} {p90:9.2f} {mn:8.2f} {mean:9.2f}")
print()
for name, ratio in results:
    print(f"RESULT csr_{name}_ratio={ratio:.3f} sigil/openssl (median wall time; <1 = sigil faster)")
PY
