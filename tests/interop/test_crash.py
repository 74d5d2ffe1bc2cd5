"""Crash safety (issue 3): a burst of concurrent `sigil ca sign` processes on one SIGIL_HOME,
SIGKILLed mid-flight, must leave a sound database, an intact audit chain, no certificate on disk
that the inventory does not know, and unique serials."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca_helpers import PW_ENV, CAHome, fingerprint
from interop_helpers import describe, pem_blocks, sigil_bin, sigil_ok

WORKERS = int(os.environ.get("SIGIL_CRASH_WORKERS", "6"))
PER_WORKER = int(os.environ.get("SIGIL_CRASH_PER_WORKER", "12"))
# When each round's SIGKILL lands: this many seconds after the round's first finished sign. Counted
# from progress, not from the start of the burst: a debug build on a loaded 2-core machine may take
# seconds per sign, and a kill before any sign finished would leave no file on disk to check. The
# other workers are mid-flight whenever it lands.
KILL_AFTER = [float(x) for x in os.environ.get("SIGIL_CRASH_KILL_AFTER", "0.1,0.6,1.3").split(",")]

WORKER_SH = r'''
for f in "$CSRDIR"/*.csr; do
  b=$(basename "$f" .csr)
  "$SIGIL" ca sign "$f" --profile tls-server --out "$OUTDIR/$b.pem" --passphrase-env "$PWENV" >/dev/null 2>>"$LOGDIR/$WORKER.err"
  echo "$b $?" >>"$LOGDIR/$WORKER.status"
done
'''


def make_csrs(d, prefix, n, key):
    d.mkdir(parents=True)
    for i in range(n):
        name = f"{prefix}-{i:03d}.example.com"
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
               .sign(key, hashes.SHA256()))
        (d / f"{prefix}-{i:03d}.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))


def burst(home: CAHome, tmp_path, rnd: int, kill_after: float) -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    outdir, logdir = tmp_path / f"out{rnd}", tmp_path / f"log{rnd}"
    outdir.mkdir()
    logdir.mkdir()
    procs = []
    for w in range(WORKERS):
        csrdir = tmp_path / f"csr{rnd}" / f"w{w}"
        make_csrs(csrdir, f"r{rnd}w{w}", PER_WORKER, key)
        env = dict(os.environ, **home.env, SIGIL=sigil_bin(), CSRDIR=str(csrdir), OUTDIR=str(outdir),
                   LOGDIR=str(logdir), WORKER=f"w{w}", PWENV=PW_ENV)
        # Each worker loop is its own process group: one killpg takes the loop and its child
        # together, so the loop cannot start another sigil after the kill.
        procs.append(subprocess.Popen(["bash", "-c", WORKER_SH], env=env, start_new_session=True,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 300
    while not any(f.read_text().strip() for f in logdir.glob("*.status")):
        assert time.monotonic() < deadline, "no sign finished within 300 s"
        if all(p.poll() is not None for p in procs):
            break  # nothing left to kill; the checks below say why
        time.sleep(0.02)
    time.sleep(kill_after)
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for p in procs:
        p.wait(timeout=30)
    deadline = time.monotonic() + 10
    for p in procs:  # the whole group must be gone
        while True:
            try:
                os.killpg(p.pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"process group {p.pid} survived SIGKILL"
            time.sleep(0.05)
    statuses = []
    for f in logdir.glob("*.status"):
        statuses += [l.split() for l in f.read_text().splitlines() if l.strip()]
    errs = "".join(f.read_text() for f in logdir.glob("*.err"))
    return {"outdir": outdir, "statuses": statuses, "stderr": errs}


def test_sigkill_during_concurrent_issuance(ca_home, tmp_path, made):
    home = ca_home
    total_files = 0
    for rnd, kill_after in enumerate(KILL_AFTER):
        r = burst(home, tmp_path, rnd, kill_after)

        # 1. the database is sound (Python's sqlite3 opens it first, as any client would)
        con = sqlite3.connect(home.db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            dup = con.execute("SELECT serial, COUNT(*) FROM certificates GROUP BY serial HAVING COUNT(*) > 1").fetchall()
            assert dup == [], f"duplicate serials in the certificates table: {dup}"
            n_issued_audit = con.execute("SELECT COUNT(*) FROM audit WHERE action = 'certificate.issued'").fetchone()[0]
            n_leaf = con.execute("SELECT COUNT(*) FROM certificates WHERE profile = 'tls-server'").fetchone()[0]
        finally:
            con.close()

        # 2. the audit chain is intact
        rc, v, p = home.audit_verify()
        assert rc == 0 and v["ok"], f"round {rnd}: audit chain broken after SIGKILL" + describe(p)

        # 3. every certificate file on disk is whole and in the inventory
        inventory = home.cert_list("--limit", "100000")
        known = {e["fingerprint"].replace(":", "").lower() for e in inventory}
        serials = [int(e["serial"].replace(":", ""), 16) for e in inventory]
        assert len(serials) == len(set(serials)), "duplicate serials in `cert list`"
        files = sorted(r["outdir"].glob("*.pem"))
        for f in files:
            blocks = [d for label, d in pem_blocks(f.read_bytes()) if label == "CERTIFICATE"]
            assert len(blocks) == 1, f"{f.name}: partial or empty certificate file ({f.stat().st_size} bytes)"
            cert = x509.load_der_x509_certificate(blocks[0])
            assert fingerprint(cert) in known, f"{f.name} (serial {cert.serial_number:x}) is on disk but not in the inventory"
        total_files += len(files)

        # 4. every issuance has exactly one audit entry
        assert n_issued_audit == n_leaf, f"{n_leaf} certificates but {n_issued_audit} certificate.issued entries"

        # 5. sign processes that finished before the kill succeeded (no 'database is locked')
        failed = [s for s in r["statuses"] if s[1] != "0"]
        assert not failed, f"round {rnd}: sign processes failed under concurrency: {failed}\n{r['stderr'][-3000:]}"

        others = [p.name for p in r["outdir"].iterdir() if not p.name.endswith(".pem")]
        print(f"round {rnd}: kill after {kill_after}s, {len(r['statuses'])} completed, {len(files)} files, "
              f"{n_leaf} certificates recorded in total, leftover non-.pem files: {others}")

    assert total_files > 0, "no sign process finished before the kills"

    # 6. the home still works afterwards
    c = tmp_path / "after.csr"
    sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--cn", "after.example.com", "--out", c)
    p = home.sign(c, "--out", tmp_path / "after.pem")
    assert p.returncode == 0, describe(p)
    rc, v, p = home.audit_verify()
    assert rc == 0, describe(p)
