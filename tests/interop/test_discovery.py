"""Discovery (issue 7 item 3): `sigil scan` against TLS servers on 127.0.0.1 (Python `ssl` in threads,
with different chains: a chain from Sigil's own CA, an expired certificate, a self-signed one, a
TLS 1.2-only server), `sigil import` over a directory tree of mixed formats and junk, and the REST
endpoints. Every certificate is made here (cryptography, openssl), so each check knows the answer.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from interop_helpers import describe, openssl_ok, sigil_bin
from serve_helpers import SigilServer, expect_json, expect_problem, free_port, openssl_csr

NOW = dt.datetime.now(dt.timezone.utc)


# ------------------------------------------------------------------------------ certificates

def make_cert(cn: str, issuer: tuple | None = None, *, days_from: int = -1, days_to: int = 90, ca: bool = False):
    """(certificate, key); issuer is (certificate, key) or None for self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Discovery Test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW + dt.timedelta(days=days_from))
               .not_valid_after(NOW + dt.timedelta(days=days_to))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def fp(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# ------------------------------------------------------------------------------ TLS servers

class TLSServer:
    """A TLS server on 127.0.0.1 in a thread: handshakes, records the SNI it was sent, closes."""

    def __init__(self, workdir: Path, name: str, chain_pem: str, key_pem_text: str, max_version=None):
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / f"{name}.crt").write_text(chain_pem)
        (workdir / f"{name}.key").write_text(key_pem_text)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(workdir / f"{name}.crt", workdir / f"{name}.key")
        if max_version:
            self.context.maximum_version = max_version
        self.sni: list = []
        self.context.sni_callback = lambda sock, server_name, ctx: self.sni.append(server_name)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(30)  # the handshake: a scanner on a loaded machine may be slow to send its hello
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    try:
                        tls.recv(1)  # until the client closes
                    except (OSError, ssl.SSLError):
                        pass
            except (OSError, ssl.SSLError):
                conn.close()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class World:
    """`sigil serve` on a fresh home (its CA issues one leaf), four TLS servers, one closed port."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.server = SigilServer(sigil_bin(), self.home, logdir=root / "logs").start()
        self.admin = self.server.admin_token
        self.tokens = {"operator": self.new_token("operator", "op"), "auditor": self.new_token("auditor", "aud")}
        # A normal chain from Sigil's CA.
        key, csr = openssl_csr(root / "csr", "sigil-leaf", "sigil.discovery.test", ["DNS:sigil.discovery.test"])
        issued = expect_json(self.server.session(self.admin).post(
            "/api/v1/certificates", json={"csr": csr, "profile": "tls-server"}), 201)
        # The leaf and the CA that signed it (the first of the chain the API returns).
        self.sigil_chain = [x509.load_pem_x509_certificate(p.encode()) for p in [issued["certificate"], issued["chain"][0]]]
        # Self-signed, expired, TLS 1.2 only (its chain: leaf + an intermediate made here).
        self.self_signed, ss_key = make_cert("self.discovery.test")
        self.expired, ex_key = make_cert("expired.discovery.test", days_from=-60, days_to=-2)
        ica, ica_key = make_cert("Discovery Test CA", ca=True, days_to=365)
        self.tls12_leaf, t12_key = make_cert("old.discovery.test", (ica, ica_key))
        self.tls12_chain = [self.tls12_leaf, ica]
        tls = root / "tls"
        self.servers = {
            "sigil": TLSServer(tls, "sigil", "".join(pem(c) for c in self.sigil_chain), key.read_text()),
            "self": TLSServer(tls, "self", pem(self.self_signed), key_pem(ss_key)),
            "expired": TLSServer(tls, "expired", pem(self.expired), key_pem(ex_key)),
            "tls12": TLSServer(tls, "tls12", "".join(pem(c) for c in self.tls12_chain), key_pem(t12_key),
                               max_version=ssl.TLSVersion.TLSv1_2),
        }
        self.closed_port = free_port()

    def new_token(self, role: str, name: str) -> str:
        return self.cli("token", "create", "--role", role, "--name", name).stdout.strip()

    def run(self, *args, timeout=120) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env["SIGIL_HOME"] = str(self.home)
        return subprocess.run([sigil_bin(), *map(str, args)], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def cli(self, *args, timeout=120) -> subprocess.CompletedProcess:
        p = self.run(*args, timeout=timeout)
        assert p.returncode == 0, describe(p)
        return p

    def json(self, *args) -> dict:
        return json.loads(self.cli(*args, "--json").stdout)

    def inventory(self) -> list:
        return self.json("cert", "list", "--limit", "100000")

    def sightings(self, fingerprint: str) -> list:
        return expect_json(self.server.session(self.tokens["auditor"]).get(f"/api/v1/certificates/{fingerprint}/sightings"), 200)["items"]

    def audit_count(self, action: str) -> int:
        with sqlite3.connect(self.home / "sigil.db") as db:
            return db.execute("SELECT COUNT(*) FROM audit WHERE action = ?", (action,)).fetchone()[0]

    def close(self):
        for s in self.servers.values():
            s.stop()
        self.server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("discovery"))
    try:
        yield w
    finally:
        w.close()


def endpoint(summary: dict, port: int) -> dict:
    found = [e for e in summary["endpoints"] if e["location"].endswith(f":{port}")]
    assert len(found) == 1, summary
    return found[0]


# ------------------------------------------------------------------------------ scan

def test_scan_chains_versions_ciphers_and_dedupe(world):
    s = world.servers
    targets = [f"127.0.0.1:{x.port}" for x in s.values()] + [f"127.0.0.1:{world.closed_port}"]
    t0 = time.monotonic()
    first = world.json("scan", *targets, "--timeout", "10s")
    took = time.monotonic() - t0
    assert first["endpoints_scanned"] == 5 and first["endpoints_reached"] == 4 and first["endpoints_unreachable"] == 1, first
    assert first["unreachable"][0]["location"] == f"127.0.0.1:{world.closed_port}"
    assert first["unreachable"][0]["reason"] == "connection refused"
    # The whole chain as presented, leaf first.
    assert endpoint(first, s["sigil"].port)["chain"] == [fp(c) for c in world.sigil_chain]
    assert endpoint(first, s["tls12"].port)["chain"] == [fp(c) for c in world.tls12_chain]
    assert endpoint(first, s["self"].port)["chain"] == [fp(world.self_signed)]
    for name, server in s.items():
        e = endpoint(first, server.port)
        assert e["address"] == "127.0.0.1" and e["server_name"] == "", e
        assert e["tls_version"] == ("TLSv1.2" if name == "tls12" else "TLSv1.3"), e
        assert e["cipher"].startswith("TLS_"), e
    assert "_WITH_" in endpoint(first, s["tls12"].port)["cipher"]  # a TLS 1.2 suite name (IANA)
    # Sigil's leaf and intermediate were in the inventory already; the rest is new.
    inv = first["inventory"]
    assert inv["certificates_found"] == 2 + 1 + 1 + 2 and inv["known_certificates"] == 2 and inv["new_certificates"] == 4, inv
    assert inv["expired"] == 1
    by_fp = {e["fingerprint"].replace(":", "").lower(): e for e in world.inventory()}
    assert by_fp[fp(world.expired)]["status"] == "expired"
    assert by_fp[fp(world.self_signed)]["status"] == "active"
    print(f"\nscan of 5 endpoints: {took:.2f} s")

    time.sleep(1.1)  # sightings keep seconds
    before = world.sightings(fp(world.expired))[0]
    second = world.json("scan", *targets, "--timeout", "10s")
    assert second["inventory"]["new_certificates"] == 0 and second["inventory"]["known_certificates"] == 6, second
    after_inventory = world.inventory()
    fps = [e["fingerprint"].replace(":", "").lower() for e in after_inventory]
    assert len(fps) == len(set(fps)), "duplicates in the inventory"
    for c in [*world.sigil_chain, world.self_signed, world.expired, *world.tls12_chain]:
        assert fps.count(fp(c)) == 1
    sightings = world.sightings(fp(world.expired))
    assert len(sightings) == 1, sightings
    assert sightings[0]["first_seen"] == before["first_seen"] and sightings[0]["last_seen"] > before["last_seen"], (before, sightings)
    assert sightings[0]["kind"] == "tls" and sightings[0]["location"] == f"127.0.0.1:{s['expired'].port}"
    assert sightings[0]["tls_version"] == "TLSv1.3" and sightings[0]["cipher"].startswith("TLS_")
    ica = world.sightings(fp(world.tls12_chain[1]))
    assert [x["chain_position"] for x in ica] == [1] and ica[0]["tls_version"] == "TLSv1.2"


def test_scan_range_file_and_sni(world, tmp_path):
    s = world.servers
    ports = f"{s['self'].port},{s['expired'].port}"
    # 127.0.0.0/30 with two ports: 8 endpoints, only 127.0.0.1 answers.
    summary = world.json("scan", f"127.0.0.0/30:{ports}", "--timeout", "10s", "--concurrency", "4")
    assert summary["endpoints_scanned"] == 8 and summary["endpoints_reached"] == 2, summary
    assert {e["location"] for e in summary["endpoints"]} == {f"127.0.0.1:{p}" for p in ports.split(",")}
    # A range form and --ports, from a file with comments and blank lines, with an SNI name.
    targets = tmp_path / "targets.txt"
    targets.write_text(f"# loopback\n\n127.0.0.1-2   # two hosts\nlocalhost:{s['tls12'].port}\n")
    s["self"].sni.clear()
    s["tls12"].sni.clear()
    summary = world.json("scan", "--file", targets, "--ports", str(s["self"].port), "--sni", "named.discovery.test", "--timeout", "10s")
    assert summary["endpoints_scanned"] == 3 and summary["endpoints_reached"] == 2, summary
    assert s["self"].sni == ["named.discovery.test"]
    assert s["tls12"].sni == ["named.discovery.test"]
    # A DNS name target sends its own name as SNI, and its location keeps the name.
    s["tls12"].sni.clear()
    summary = world.json("scan", f"localhost:{s['tls12'].port}", "--timeout", "10s")
    assert s["tls12"].sni == ["localhost"]
    assert summary["endpoints"][0]["location"] == f"localhost:{s['tls12'].port}" and summary["endpoints"][0]["server_name"] == "localhost"


def test_scan_text_summary_and_exit_codes(world, tmp_path):
    s = world.servers
    plain_http = f"127.0.0.1:{world.server.http_port}"  # sigil serve's plain-HTTP port: not TLS
    p = world.run("scan", f"127.0.0.1:{s['self'].port}", f"127.0.0.1:{world.closed_port}", plain_http, "--timeout", "10s")
    assert p.returncode == 0, describe(p)
    assert "1 answered, 2 unreachable" in p.stdout and f"127.0.0.1:{world.closed_port}: connection refused" in p.stdout, p.stdout
    assert f"{plain_http}: TLS handshake failed" in p.stdout, p.stdout
    assert "\r" not in p.stderr, "no progress bar when stderr is not a terminal"
    count = len(world.inventory())
    audits = world.audit_count("discovery.scan")
    # Nothing answered: exit 1, still one audit entry for the run.
    p = world.run("scan", f"127.0.0.1:{world.closed_port}", "--timeout", "1s")
    assert p.returncode == 1 and "none of the 1 endpoints could be scanned" in p.stderr, describe(p)
    assert world.audit_count("discovery.scan") == audits + 1
    # Bad targets: exit 2, nothing scanned or written.
    bad_file = tmp_path / "bad.txt"
    bad_file.write_text("127.0.0.1:443\nnot a target!\n")
    for args, says in [
        (["10.0.0.0/8:443"], "the limit is 65536"),
        (["127.0.0.1:99999"], "not a port"),
        (["no_such host"], "is not a host"),
        (["127.0.0.5-127.0.0.1"], "ends before it starts"),
        (["--file", bad_file], f"{bad_file}:2"),
        (["--file", tmp_path / "missing.txt"], "missing.txt"),
        ([], "give at least one target"),
        (["127.0.0.1:443", "--timeout", "0s"], "timeout"),
        (["127.0.0.1:443", "--concurrency", "0"], "concurrency"),
        (["127.0.0.1:443", "--sni", "bad name"], "--sni"),
    ]:
        p = world.run("scan", *args)
        assert p.returncode == 2, describe(p)
        assert says in p.stderr, describe(p)
    assert len(world.inventory()) == count
    assert world.audit_count("discovery.scan") == audits + 1


# ------------------------------------------------------------------------------ import

def test_import_tree(world, tmp_path):
    tree = tmp_path / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    a, a_key = make_cert("a.import.test")
    b, _ = make_cert("b.import.test")
    c, _ = make_cert("c.import.test")
    d, _ = make_cert("d.import.test", days_from=-30, days_to=-1)
    (tree / "bundle.pem").write_text("A bundle\n" + pem(a) + "\n" + pem(b))
    (tree / "nested" / "c.der").write_bytes(c.public_bytes(serialization.Encoding.DER))
    (tree / "nested" / "d.pem").write_text(pem(d))
    (tree / "c.pem").write_text(pem(c))  # the same certificate in a second file: one inventory entry, two sightings
    openssl_ok("crl2pkcs7", "-nocrl", "-certfile", tree / "bundle.pem", "-out", tree / "nested" / "deeper" / "ab.p7b")
    openssl_ok("crl2pkcs7", "-nocrl", "-certfile", tree / "nested" / "d.pem", "-outform", "DER", "-out", tree / "nested" / "d.p7c")
    (tree / "server.key").write_text(key_pem(a_key))
    (tree / "junk.bin").write_bytes(bytes(range(256)) * 4)
    (tree / "empty.pem").write_bytes(b"")
    unreadable = tree / "unreadable.pem"
    unreadable.write_text(pem(a))
    unreadable.chmod(0)
    (tree / "dangling.pem").symlink_to(tree / "gone.pem")
    (tree / "nested" / "loop").symlink_to(tree)  # a symlink loop: the walk must end

    p = world.run("import", tree, "--json")
    assert p.returncode == 0, describe(p)
    summary = json.loads(p.stdout)
    junk = {Path(j["path"]).name: j["reason"] for j in summary["junk"]}
    assert set(junk) == {"server.key", "junk.bin", "empty.pem"}, summary
    assert junk["empty.pem"] == "empty file" and "private key" in junk["server.key"]
    skipped = {Path(x["path"]).name for x in summary["skipped"]}
    assert "dangling.pem" in skipped
    if os.geteuid() != 0:
        assert "unreadable.pem" in skipped
    assert summary["private_keys_skipped"] == 1
    files = {Path(f["path"]).name: f["certificates"] for f in summary["files"]}
    assert files["bundle.pem"] == [fp(a), fp(b)] and files["ab.p7b"] == [fp(a), fp(b)]
    assert files["c.der"] == [fp(c)] and files["c.pem"] == [fp(c)] and files["d.p7c"] == [fp(d)]
    inv = summary["inventory"]
    assert inv["certificates_found"] == 4 and inv["new_certificates"] == 4 and inv["expired"] == 1, inv
    assert "PRIVATE KEY" not in p.stdout + p.stderr and key_pem(a_key).splitlines()[1] not in p.stdout + p.stderr

    by_fp = {e["fingerprint"].replace(":", "").lower(): e for e in world.inventory()}
    for cert in (a, b, c, d):
        assert fp(cert) in by_fp
    assert by_fp[fp(d)]["status"] == "expired"
    c_seen = world.sightings(fp(c))
    assert {x["location"] for x in c_seen} == {str(tree / "nested" / "c.der"), str(tree / "c.pem")}
    assert all(x["kind"] == "file" and x["path"] == x["location"] for x in c_seen)

    again = world.json("import", tree)
    assert again["inventory"]["new_certificates"] == 0 and again["inventory"]["known_certificates"] == 4
    assert len([e for e in world.inventory() if e["fingerprint"].replace(":", "").lower() == fp(a)]) == 1

    # Text summary; a missing path is bad input (exit 2) and nothing is written.
    p = world.run("import", tree / "nested" / "c.der")
    assert p.returncode == 0 and "1 certificate(s)" in p.stdout, describe(p)
    audits = world.audit_count("discovery.import")
    p = world.run("import", tree, tmp_path / "missing")
    assert p.returncode == 2 and "missing" in p.stderr, describe(p)
    assert world.audit_count("discovery.import") == audits


# ------------------------------------------------------------------------------ REST API

def test_rest_scan_import_and_roles(world, tmp_path):
    s = world.servers
    operator = world.server.session(world.tokens["operator"])
    auditor = world.server.session(world.tokens["auditor"])
    body = {"targets": [f"127.0.0.1:{s['self'].port}", "127.0.0.1"], "ports": [world.closed_port], "timeout_ms": 2000}
    expect_problem(auditor.post("/api/v1/discovery/scans", json=body), 403)
    summary = expect_json(operator.post("/api/v1/discovery/scans", json=body), 200)
    assert summary["endpoints_scanned"] == 2 and summary["endpoints_reached"] == 1 and summary["endpoints_unreachable"] == 1, summary
    assert summary["endpoints"][0]["chain"] == [fp(world.self_signed)]
    for bad in [{"targets": []}, {"targets": ["10.0.0.0/16"]}, {"targets": ["x"], "ports": [0]}, {"targets": ["x"], "timeout_ms": 0},
                {"targets": ["x"], "bogus": 1}, {"targets": "127.0.0.1"}]:
        expect_problem(operator.post("/api/v1/discovery/scans", json=bad), 400)

    pem_file = tmp_path / "api.pem"
    e, _ = make_cert("api.import.test")
    pem_file.write_text(pem(e))
    expect_problem(auditor.post("/api/v1/discovery/imports", json={"paths": [str(pem_file)]}), 403)
    summary = expect_json(operator.post("/api/v1/discovery/imports", json={"paths": [str(pem_file)]}), 200)
    assert summary["files"][0]["certificates"] == [fp(e)] and summary["inventory"]["new_certificates"] == 1
    expect_problem(operator.post("/api/v1/discovery/imports", json={"paths": ["relative.pem"]}), 400)
    expect_problem(operator.post("/api/v1/discovery/imports", json={"paths": [str(tmp_path / "missing")]}), 400)

    seen = expect_json(auditor.get(f"/api/v1/certificates/{fp(e)}/sightings"), 200)
    assert seen["fingerprint"] == fp(e) and seen["items"][0]["location"] == str(pem_file)
    expect_problem(auditor.get("/api/v1/certificates/" + "ab" * 32 + "/sightings"), 404)
    # The inventory's source filter shows what discovery found.
    admin = world.server.session(world.admin)
    discovered = expect_json(admin.get("/api/v1/certificates", params={"source": "discovered", "limit": 1000}), 200)["items"]
    imported = expect_json(admin.get("/api/v1/certificates", params={"source": "imported", "limit": 1000}), 200)["items"]
    assert fp(world.self_signed) in {x["fingerprint"].replace(":", "").lower() for x in discovered}
    assert fp(e) in {x["fingerprint"].replace(":", "").lower() for x in imported}


# ------------------------------------------------------------------------------ dashboard and schedule

def test_dashboard_where_seen(world):
    import html
    import re
    api = world.server.session(None)
    r = api.get("/signin?next=/")
    value = re.search(r'name="signin" value="([^"]+)"', r.text).group(1)
    r = api.post("/signin", data={"signin": value, "token": world.tokens["auditor"], "next": "/"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    # Make sure the TLS 1.2 server's certificates have been seen, then read their page.
    world.json("scan", f"127.0.0.1:{world.servers['tls12'].port}", "--timeout", "10s")
    r = api.get(f"/ui/certificates/{fp(world.tls12_chain[1])}")
    assert r.status_code == 200, r.text[:500]
    page = html.unescape(r.text)
    section = page[page.index("Where seen"):page.index("History")]
    assert f"127.0.0.1:{world.servers['tls12'].port}" in section and "TLSv1.2" in section and "chain #1" in section, section
    assert "_WITH_" in section
    # A certificate nobody has seen (Sigil's root: no server presents it) says so.
    root = [c for c in world.json("ca", "list") if c["name"] == "root"][0]
    r = api.get(f"/ui/certificates/{root['fingerprint'].replace(':', '').lower()}")
    assert r.status_code == 200 and "Not seen by discovery" in r.text, r.text[:500]


def test_scheduled_discovery(world, tmp_path):
    """`discovery:` in sigil.yaml: the leader scans and imports at start, then every interval."""
    home = tmp_path / "sched-home"
    home.mkdir()
    certs = tmp_path / "certs"
    certs.mkdir()
    f, _ = make_cert("scheduled.import.test")
    (certs / "f.pem").write_text(pem(f))
    (home / "sigil.yaml").write_text(
        "discovery:\n  interval: 1h\n  timeout: 10s\n"
        f"  targets: [\"127.0.0.1:{world.servers['self'].port}\"]\n  paths: [\"{certs}\"]\n")
    server = SigilServer(sigil_bin(), home, logdir=tmp_path / "logs").start()
    try:
        api = server.session(server.admin_token)
        deadline = time.monotonic() + 90
        seen = []
        while time.monotonic() < deadline:
            r = api.get(f"/api/v1/certificates/{fp(world.self_signed)}/sightings")
            if r.status_code == 200 and r.json()["items"]:
                seen = r.json()["items"]
                imported = api.get(f"/api/v1/certificates/{fp(f)}/sightings")
                if imported.status_code == 200 and imported.json()["items"]:
                    break
            time.sleep(0.3)
        assert seen and seen[0]["location"] == f"127.0.0.1:{world.servers['self'].port}", server.describe()
        assert expect_json(api.get(f"/api/v1/certificates/{fp(f)}/sightings"), 200)["items"][0]["path"] == str(certs / "f.pem")
        audit = expect_json(api.get("/api/v1/audit", params={"limit": 1000}), 200)
        items = audit["items"] if isinstance(audit, dict) else audit
        actions = [(e["actor"], e["action"]) for e in items]
        assert ("scheduler", "discovery.scan") in actions and ("scheduler", "discovery.import") in actions, actions
        token = server.admin_token
    finally:
        assert server.stop() == 0, server.describe()
    # A restart within the interval does not run the schedule again: the audit trail says it ran.
    server = SigilServer(sigil_bin(), home, logdir=tmp_path / "logs2").start()
    try:
        api = server.session(token)
        # Wait for the scheduler's decision (it says when it found the last run), not for a while:
        # from then on a run at start would have to be in the audit trail already or never.
        deadline = time.monotonic() + 60
        while "scheduled discovery: last ran at" not in server.stderr:
            assert time.monotonic() < deadline and server.alive(), "the scheduler never decided" + server.describe()
            time.sleep(0.2)

        def runs():
            audit = expect_json(api.get("/api/v1/audit", params={"limit": 1000}), 200)
            items = audit["items"] if isinstance(audit, dict) else audit
            return sorted(e["action"] for e in items if e["actor"] == "scheduler" and e["action"].startswith("discovery."))
        assert runs() == ["discovery.import", "discovery.scan"], (runs(), server.describe())
    finally:
        assert server.stop() == 0, server.describe()
    # A bad schedule stops the server before it starts (exit 2).
    (home / "sigil.yaml").write_text("discovery:\n  interval: 1h\n  targets: [\"10.0.0.0/8\"]\n")
    bad = SigilServer(sigil_bin(), home, logdir=tmp_path / "logs").spawn()
    assert bad.proc.wait(timeout=60) == 2, bad.describe()
    assert "the limit is 65536" in bad.stderr, bad.describe()


def test_progress_bar_only_at_a_terminal(world):
    """Standard error at a pseudo-terminal gets the bar; a pipe never does (checked in the text-summary test)."""
    import pty
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
    env["SIGIL_HOME"] = str(world.home)
    p = subprocess.Popen([sigil_bin(), "scan", f"127.0.0.0/28:{world.closed_port}", "--timeout", "1s"], env=env,
                         stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    out, _ = p.communicate(timeout=60)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    assert p.returncode == 1, (out, err)
    assert b"] 16/16 endpoints" in err and b"\r\x1b[K[" in err, err
    assert b"\x1b[K" not in out and b"16 scanned" in out, out  # the bar never reaches stdout
