"""`sigil serve` (issue 4) driven from outside: the real server on 127.0.0.1 (port 0), judged by
curl, openssl s_client / verify, Python `requests` and `cryptography`, and schemathesis.

Each test stops every server it started (SIGTERM, bounded wait, SIGKILL). Most tests run on a copy
of one SIGIL_HOME that a first `sigil serve` made (CA creation is the slow part of a start in a
debug build); the zero-config test makes its own.

Knobs: SIGIL_FUZZ_MAX_EXAMPLES (20), SIGIL_FUZZ_SEED (1; "random" for a fresh seed each run),
SIGIL_FUZZ_TIMEOUT_S (480), SIGIL_BURST (20 concurrent issuances in the SIGTERM test).
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from interop_helpers import describe, run, sigil_bin
from serve_helpers import (
    API, TOKEN_RE, SigilServer, cert_of, certs_in, copy_home, dns_sans, expect, expect_json,
    expect_problem, fingerprint, free_port, openssl_csr, openssl_verify_chain, same_serial, show,
)

# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def serve_bin(tmp_path_factory) -> str:
    """A private copy of SIGIL_BIN: the lead rebuilds .build/debug/sigil while tests run
    ("Text file busy"), and the CLI and the server must be the same build."""
    src = sigil_bin()
    dst = tmp_path_factory.mktemp("bin") / "sigil"
    for attempt in range(5):
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        p = run([dst, "--help"], timeout=60)
        if p.returncode == 0:
            return str(dst)
        time.sleep(2)
    raise AssertionError("the copied sigil binary does not run" + describe(p))


@dataclass
class Home:
    path: Path
    admin_token: str


@pytest.fixture
def servers(serve_bin, tmp_path):
    """servers(home, *args, env=..., start=True) -> SigilServer; all stopped at teardown."""
    started: list[SigilServer] = []

    def make(home: Path, *args, env: dict | None = None, start: bool = True, timeout: float = 120,
             **kw) -> SigilServer:
        s = SigilServer(serve_bin, home, *args, env=env, logdir=tmp_path / "logs", **kw)
        started.append(s)
        return s.start(timeout=timeout) if start else s.spawn()

    yield make
    for s in started:
        s.stop(timeout=10)
    left = [s.pid for s in started if s.alive()]
    assert not left, f"servers still running after teardown: {left}"


@pytest.fixture(scope="session")
def served_template(serve_bin, tmp_path_factory) -> Home:
    """A SIGIL_HOME that one zero-config `sigil serve` created (root + intermediate CA, admin
    token, generated ca-passphrase), stopped cleanly."""
    d = tmp_path_factory.mktemp("served-template")
    s = SigilServer(serve_bin, d / "home", logdir=d)
    try:
        s.start()
        token = s.admin_token
        assert token, "no admin token on the first start" + s.describe()
    finally:
        rc = s.stop()
    assert rc == 0, f"the template server exited {rc}" + s.describe()
    return Home(d / "home", token)


@pytest.fixture
def home(served_template, tmp_path) -> Home:
    """This test's own copy of the template home."""
    return Home(copy_home(served_template.path, tmp_path / "home"), served_template.admin_token)


def cli(serve_bin: str, home: Path, *args, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
    env["SIGIL_HOME"] = str(home)
    return subprocess.run([serve_bin, *map(str, args)], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=kw.pop("timeout", 120), **kw)


def cli_ok(serve_bin: str, home: Path, *args) -> subprocess.CompletedProcess:
    p = cli(serve_bin, home, *args)
    assert p.returncode == 0, describe(p)
    return p


# A profile that needs a person's approval and that the zero-config intermediate (EKU serverAuth,
# clientAuth) can issue; the built-in approval profiles (code-signing, sub-ca) need another CA.
APPROVAL_PROFILE = "tls-approved"
APPROVAL_YAML = f"""profiles:
  {APPROVAL_PROFILE}:
    base: tls-server
    require_approval: true
"""


def issue(api: API, csr: str, profile: str = "tls-server", **extra) -> dict:
    return expect_json(api.post("/api/v1/certificates", json={"csr": csr, "profile": profile, **extra}), 201)


def inventory(api: API, **params) -> list[dict]:
    """Every page of GET /api/v1/certificates with these filters."""
    items, cursor, pages = [], None, 0
    while True:
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        page = expect_json(api.get("/api/v1/certificates", params=q), 200)
        items += page["items"]
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 200, "pagination does not end"
        if not cursor:
            return items


# ------------------------------------------------------------------------------------ 1. zero config


def test_zero_config_first_start(servers, serve_bin, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    s = servers(home)

    # The admin token: printed once, on stdout, as `admin token: TOKEN`.
    lines = s.stdout.splitlines()
    admin_lines = [line for line in lines if line.startswith("admin token:")]
    assert len(admin_lines) == 1, s.describe()
    token = s.admin_token
    assert TOKEN_RE.match(token), token
    assert token not in s.stderr, "the admin token is on stderr too" + s.describe()

    # The generated CA passphrase: 0600, and a warning about it on stderr.
    pf = home / "ca-passphrase"
    assert pf.is_file(), s.describe()
    assert stat.S_IMODE(pf.stat().st_mode) == 0o600, oct(pf.stat().st_mode)
    passphrase = pf.read_text().strip()
    assert len(passphrase) >= 16
    assert "ca-passphrase" in s.stderr and "WARNING" in s.stderr, s.describe()
    assert passphrase not in s.stdout + s.stderr

    # root.pem: where the listening line says, a self-signed CA certificate.
    assert s.root_pem.resolve() == (home / "root.pem").resolve(), s.match.group(0)
    root_pem = (home / "root.pem").read_text()
    root = cert_of(root_pem)
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    root_file = home / "root.pem"

    # curl verifies the TLS chain against that root, by IP and by name.
    for host in ("127.0.0.1", "localhost"):
        p = run(["curl", "-sS", "--fail", "--max-time", "20", "--cacert", root_file, "-w", "\n%{http_code}",
                 f"https://{host}:{s.https_port}/healthz"], timeout=60)
        assert p.returncode == 0, describe(p)
        body, code = p.stdout.rsplit("\n", 1)
        assert code == "200" and json.loads(body) == {"status": "ok"}, describe(p)
    # ... and the check is real: another CA does not verify it (curl 60: peer certificate problem).
    other = tmp_path / "other-ca.pem"
    p = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", tmp_path / "other.key", "-out", other, "-subj", "/CN=Other CA", "-days", "2"])
    assert p.returncode == 0, describe(p)
    p = run(["curl", "-sS", "--max-time", "20", "--cacert", other, f"{s.url}/healthz"], timeout=60)
    assert p.returncode == 60, "curl trusted the server without Sigil's root" + describe(p)

    # openssl s_client: the chain (leaf <- intermediate <- root) verifies.
    p = run(["openssl", "s_client", "-connect", f"127.0.0.1:{s.https_port}", "-CAfile", root_file,
             "-servername", "localhost", "-showcerts"], timeout=30)
    assert "Verify return code: 0 (ok)" in p.stdout, describe(p)
    served = certs_in(p.stdout)
    assert len(served) >= 2, "the server should send its intermediate too" + describe(p)
    leaf = served[0]
    assert {"DNS:localhost", "IP:127.0.0.1"} <= set(dns_sans(leaf)), dns_sans(leaf)
    assert leaf.issuer != root.subject, "the TLS certificate should come from the intermediate"
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    # Python requests (trust_env off: REQUESTS_CA_BUNDLE would replace verify=).
    api = s.session()
    assert expect_json(api.get("/healthz"), 200) == {"status": "ok"}
    ready = expect_json(api.get("/readyz"), 200)
    assert ready["status"] == "ready", ready
    issuers = expect_json(s.session(token).get("/api/v1/issuers"), 200)["items"]
    assert {i["name"] for i in issuers} == {"root", "intermediate"}, issuers
    kinds = {i["name"]: i["kind"] for i in issuers}
    assert kinds == {"root": "root", "intermediate": "intermediate"}

    # The plain-HTTP surface: CA certificates as DER, application/pkix-cert.
    plain = requests.Session()
    plain.trust_env = False
    r = expect(plain.get(f"{s.http_url}/ca/root.crt", timeout=30), 200)
    assert r.headers["Content-Type"] == "application/pkix-cert", show(r)
    assert r.content == root.public_bytes(serialization.Encoding.DER)
    r = expect(plain.get(f"{s.http_url}/ca/intermediate.crt", timeout=30), 200)
    inter = x509.load_der_x509_certificate(r.content)
    assert inter.issuer == root.subject
    inter.verify_directly_issued_by(root)
    leaf.verify_directly_issued_by(inter)
    assert expect_json(plain.get(f"{s.http_url}/healthz", timeout=30), 200) == {"status": "ok"}
    r = plain.get(f"{s.http_url}/ca/nope.crt", timeout=30)
    expect_problem(r, 404, "not-found")
    plain.close()
    api.close()

    assert s.stop() == 0, s.describe()

    # Second start on the same home: no new token, same passphrase and root, old token still works.
    s2 = servers(home)
    assert "admin token" not in s2.stdout, s2.describe()
    assert pf.read_text().strip() == passphrase
    assert (home / "root.pem").read_text() == root_pem
    assert "generated" not in s2.stderr.lower(), s2.describe()
    expect_json(s2.session(token).get("/api/v1/issuers"), 200)
    assert s2.stop() == 0, s2.describe()


def test_operations_endpoints(servers, home):
    s = servers(home.path)
    anon = s.session()
    api = s.session(home.admin_token)
    expect_json(anon.get("/healthz"), 200)
    expect_json(anon.get("/readyz"), 200)

    def metrics() -> str:
        r = expect(anon.get("/metrics"), 200)
        assert r.headers["Content-Type"].startswith("text/plain"), show(r)
        return r.text

    def value(text: str, name: str) -> float:
        """The sum over every series of a counter/gauge (or _count of a histogram)."""
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    before = metrics()
    _, csr = openssl_csr(home.path.parent / "csr", "m", "m.example.com", ["DNS:m.example.com"])
    issued = issue(api, csr)
    expect_json(api.post(f"/api/v1/certificates/{issued['serial']}/revoke", json={"reason": "superseded"}), 200)
    after = metrics()
    # Labelled counters appear once they have a series; after an issuance and a revocation all do.
    for name in ("sigil_issuances_total", "sigil_issuance_duration_seconds", "sigil_revocations_total",
                 "sigil_http_requests_total", "sigil_certificates_expiring"):
        assert f"# TYPE {name} " in after, f"{name} missing from /metrics:\n{after[:3000]}"
    assert value(after, "sigil_issuances_total") == value(before, "sigil_issuances_total") + 1, after
    assert value(after, "sigil_issuance_duration_seconds_count") >= value(before, "sigil_issuance_duration_seconds_count") + 1
    assert value(after, "sigil_revocations_total") == value(before, "sigil_revocations_total") + 1, after
    assert value(after, "sigil_http_requests_total") > value(before, "sigil_http_requests_total")
    assert home.admin_token not in after

    r = expect(anon.get("/openapi.yaml"), 200)
    doc = yaml.safe_load(r.text)
    assert str(doc["openapi"]).startswith("3.1"), doc.get("openapi")
    paths = doc["paths"]
    for path, methods in {
        "/api/v1/certificates": {"get", "post"}, "/api/v1/certificates/{serial}": {"get"},
        "/api/v1/certificates/{serial}/pem": {"get"}, "/api/v1/certificates/{serial}/revoke": {"post"},
        "/api/v1/certificates/{serial}/renew": {"post"}, "/api/v1/requests": {"get"},
        "/api/v1/requests/{id}": {"get"}, "/api/v1/requests/{id}/approve": {"post"},
        "/api/v1/requests/{id}/reject": {"post"}, "/api/v1/profiles": {"get"}, "/api/v1/issuers": {"get"},
        "/api/v1/issuers/{name}": {"get"}, "/api/v1/issuers/{name}/chain": {"get"}, "/api/v1/audit": {"get"},
        "/api/v1/audit/verify": {"get"}, "/api/v1/tokens": {"get", "post"}, "/api/v1/tokens/{id}": {"delete"},
        "/healthz": {"get"}, "/readyz": {"get"}, "/metrics": {"get"}, "/openapi.yaml": {"get"},
    }.items():
        assert path in paths, f"{path} not in openapi.yaml"
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert s.stop() == 0, s.describe()


# ------------------------------------------------------------------------------------ 2. the API


def test_issue_and_verify(servers, home, serve_bin, tmp_path):
    s = servers(home.path)
    api = s.session(home.admin_token)
    work = tmp_path / "work"

    # A CSR from openssl and one from `sigil csr new`.
    _, csr1 = openssl_csr(work, "web", "web.example.com", ["DNS:web.example.com", "DNS:www.web.example.com"])
    cli_ok(serve_bin, home.path, "csr", "new", "--key-type", "ec:P-256", "--key-out", work / "s.key", "--no-passphrase",
           "--cn", "api.example.com", "--san", "DNS:api.example.com", "--out", work / "s.csr")
    csr2 = (work / "s.csr").read_text()

    for n, (csr, names) in enumerate([(csr1, {"DNS:web.example.com", "DNS:www.web.example.com"}),
                                      (csr2, {"DNS:api.example.com"})]):
        r = api.post("/api/v1/certificates", json={"csr": csr, "profile": "tls-server", "owner": "team-web",
                                                   "tags": ["prod", "web"], "days": 30})
        body = expect_json(r, 201)
        assert {"serial", "certificate", "chain", "fingerprint", "not_after"} <= set(body), show(r)
        cert = cert_of(body["certificate"])
        assert same_serial(body["serial"], cert), (body["serial"], cert.serial_number)
        assert body["fingerprint"] == fingerprint(cert)
        assert set(dns_sans(cert)) == names, dns_sans(cert)
        assert 29 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 31
        assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert body["chain"] and all(certs_in(p) for p in body["chain"])
        ok, out = openssl_verify_chain(s.root_pem, body["certificate"], body["chain"], work / f"v{n}",
                                       purpose="sslserver")
        assert ok, out

        # The inventory has it, by serial and by fingerprint; /pem gives certificate + chain.
        for key in (body["serial"], body["fingerprint"]):
            rec = expect_json(api.get(f"/api/v1/certificates/{key}"), 200)
            assert rec["serial"] == body["serial"] and rec["fingerprint"] == body["fingerprint"], rec
            assert rec["status"] == "active" and rec["profile"] == "tls-server" and rec["owner"] == "team-web", rec
            assert sorted(rec["tags"]) == ["prod", "web"], rec
            assert set(rec["sans"]) == names, rec
        r = expect(api.get(f"/api/v1/certificates/{body['serial']}/pem"), 200)
        assert r.headers["Content-Type"].startswith("application/pem-certificate-chain"), show(r)
        pem_chain = certs_in(r.text)
        assert pem_chain[0] == cert and len(pem_chain) >= 2
        ok, out = openssl_verify_chain(s.root_pem, r.text.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n",
                                       [c.public_bytes(serialization.Encoding.PEM).decode() for c in pem_chain[1:]],
                                       work / f"p{n}")
        assert ok, out

    # Issuers: JSON and PEM chain.
    chain = expect(api.get("/api/v1/issuers/intermediate/chain"), 200)
    inter, root = certs_in(chain.text)[:2]
    assert root == cert_of(s.root_pem.read_text())
    expect_problem(api.get("/api/v1/issuers/nope"), 404, "not-found")
    expect_problem(api.get("/api/v1/certificates/" + "ab" * 16), 404, "not-found")
    assert s.stop() == 0, s.describe()


def test_list_filters_and_pagination(servers, home, tmp_path):
    s = servers(home.path)
    api = s.session(home.admin_token)
    serials = {}
    for i in range(5):
        _, csr = openssl_csr(tmp_path / "csr", f"svc{i}", f"svc{i}.example.com", [f"DNS:svc{i}.example.com"])
        serials[i] = issue(api, csr, owner="team-a" if i < 3 else "team-b", days=10 + i)["serial"]
    # A certificate the filters must not match (besides the server's own TLS certificate).
    _, csr = openssl_csr(tmp_path / "csr", "other", "other.example.org", ["DNS:other.example.org"])
    issue(api, csr, owner="team-c", days=200)

    def serial_set(**params) -> set:
        return {c["serial"] for c in inventory(api, **params)}

    everything = inventory(api)
    assert len(everything) == len({c["fingerprint"] for c in everything}) >= 6
    assert serial_set(owner="team-a") == {serials[0], serials[1], serials[2]}
    assert serial_set(owner="team-b") == {serials[3], serials[4]}
    assert serial_set(name="svc1.example.com") == {serials[1]}
    assert serial_set(name="*.example.com", owner="team-a") == {serials[0], serials[1], serials[2]}
    assert serial_set(profile="tls-server", owner="team-b", issuer="intermediate") == {serials[3], serials[4]}
    assert serial_set(source="issued", owner="team-b") == {serials[3], serials[4]}
    within = serial_set(expiring_within="12d")
    assert {serials[0], serials[1]} <= within and not {serials[3], serials[4]} & within, within
    assert serial_set(owner="nobody") == set()

    # Pagination: limit=2 over everything, no duplicates, no gaps, last page has next_cursor null.
    pages, cursor, seen = 0, None, []
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = expect_json(api.get("/api/v1/certificates", params=params), 200)
        assert len(page["items"]) <= 2
        seen += [c["fingerprint"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert page["items"], "a page with a cursor must not be empty"
        assert pages < 50
    assert len(seen) == len(set(seen)), "pagination repeated a certificate"
    assert set(seen) == {c["fingerprint"] for c in everything}
    assert pages == -(-len(everything) // 2), (pages, len(everything))

    expect_problem(api.get("/api/v1/certificates", params={"status": "bogus"}), 400, "malformed-request")
    expect_problem(api.get("/api/v1/certificates", params={"limit": 0}), 400, "malformed-request")
    expect_problem(api.get("/api/v1/certificates", params={"cursor": "!!!"}), 400, "malformed-request")
    expect_problem(api.get("/api/v1/certificates", params={"colour": "red"}), 400, "malformed-request")
    assert s.stop() == 0, s.describe()


def test_revoke_and_renew(servers, home, tmp_path):
    s = servers(home.path)
    api = s.session(home.admin_token)
    names = ["DNS:renew.example.com", "DNS:alt.renew.example.com"]
    _, csr = openssl_csr(tmp_path / "csr", "old", "renew.example.com", names)
    old = issue(api, csr, owner="team-r")

    # Renew from a new key: same names and profile, a new serial.
    _, csr_new = openssl_csr(tmp_path / "csr", "new", "renew.example.com", names)
    r = api.post(f"/api/v1/certificates/{old['serial']}/renew", json={"csr": csr_new})
    new = expect_json(r, 201)
    assert new["serial"] != old["serial"] and new.get("renewed_from") == old["serial"], show(r)
    new_cert = cert_of(new["certificate"])
    assert set(dns_sans(new_cert)) == set(names)
    ok, out = openssl_verify_chain(s.root_pem, new["certificate"], new["chain"], tmp_path / "v")
    assert ok, out
    assert expect_json(api.get(f"/api/v1/certificates/{new['serial']}"), 200)["owner"] == "team-r"
    # A renewal must keep the names.
    _, csr_other = openssl_csr(tmp_path / "csr", "other", "else.example.com", ["DNS:else.example.com"])
    doc = expect_problem(api.post(f"/api/v1/certificates/{old['serial']}/renew", json={"csr": csr_other}), 422,
                         "policy-violation")
    assert doc.get("errors"), doc

    # Revoke the new one.
    r = api.post(f"/api/v1/certificates/{new['serial']}/revoke", json={"reason": "keyCompromise"})
    rec = expect_json(r, 200)
    assert rec["status"] == "revoked" and rec["revocation_reason"] == 1 and rec["revoked_at"], rec
    assert expect_json(api.get(f"/api/v1/certificates/{new['serial']}"), 200)["status"] == "revoked"
    revoked = {c["serial"] for c in inventory(api, status="revoked")}
    active = {c["serial"] for c in inventory(api, status="active")}
    assert new["serial"] in revoked and new["serial"] not in active
    expect_problem(api.post(f"/api/v1/certificates/{new['serial']}/revoke", json={"reason": "noSuchReason"}), 400)
    expect_problem(api.post("/api/v1/certificates/" + "cd" * 16 + "/revoke", json={}), 404, "not-found")
    assert s.stop() == 0, s.describe()


def test_pending_approve_and_reject(servers, home, tmp_path):
    (home.path / "sigil.yaml").write_text(APPROVAL_YAML)
    s = servers(home.path)
    api = s.session(home.admin_token)
    ids = []
    for n in range(2):
        _, csr = openssl_csr(tmp_path / "csr", f"ap{n}", f"approved{n}.example.com", [f"DNS:approved{n}.example.com"])
        r = api.post("/api/v1/certificates", json={"csr": csr, "profile": APPROVAL_PROFILE})
        body = expect_json(r, 202)
        assert body["status"] == "pending" and body["request_id"], show(r)
        assert r.headers.get("Location", "").endswith(f"/api/v1/requests/{body['request_id']}"), show(r)
        ids.append(body["request_id"])
    pending = {x["id"] for x in expect_json(api.get("/api/v1/requests"), 200)["items"]}
    assert set(ids) <= pending
    one = expect_json(api.get(f"/api/v1/requests/{ids[0]}"), 200)
    assert one["status"] == "pending" and one["profile"] == APPROVAL_PROFILE and "BEGIN CERTIFICATE REQUEST" in one["csr"]
    assert not [c for c in inventory(api, profile=APPROVAL_PROFILE)], "a pending request is not in the inventory yet"

    # Approve the first: 201 with a certificate that verifies.
    issued = expect_json(api.post(f"/api/v1/requests/{ids[0]}/approve", json={"note": "ok by test"}), 201)
    cert = cert_of(issued["certificate"])
    assert dns_sans(cert) == ["DNS:approved0.example.com"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ok, out = openssl_verify_chain(s.root_pem, issued["certificate"], issued["chain"], tmp_path / "v")
    assert ok, out
    done = expect_json(api.get(f"/api/v1/requests/{ids[0]}"), 200)
    assert done["status"] == "issued" and done["decided_by"], done
    assert done["certificate_serial"] and int(done["certificate_serial"], 16) == cert.serial_number, done

    # Reject the second: a reason is required.
    expect_problem(api.post(f"/api/v1/requests/{ids[1]}/reject", json={}), 400, "malformed-request")
    rej = expect_json(api.post(f"/api/v1/requests/{ids[1]}/reject", json={"reason": "not ours"}), 200)
    assert rej["status"] == "rejected", rej
    # A decided request cannot be decided again, and it issues nothing.
    r = api.post(f"/api/v1/requests/{ids[1]}/approve", json={})
    assert 400 <= r.status_code < 500, show(r)
    expect_problem(r, r.status_code)
    assert [c["serial"] for c in inventory(api, profile=APPROVAL_PROFILE)] == [issued["serial"]]
    statuses = {x["id"]: x["status"] for x in expect_json(api.get("/api/v1/requests", params={"status": "all"}), 200)["items"]}
    assert statuses[ids[0]] == "issued" and statuses[ids[1]] == "rejected", statuses
    expect_problem(api.post("/api/v1/requests/no-such-id/approve", json={}), 404, "not-found")
    assert s.stop() == 0, s.describe()


def test_token_create_use_revoke(servers, home, tmp_path):
    s = servers(home.path)
    admin = s.session(home.admin_token)
    r = admin.post("/api/v1/tokens", json={"name": "ci-operator", "role": "operator", "expires_in": "30d"})
    created = expect_json(r, 201)
    token = created["token"]
    assert TOKEN_RE.match(token), created
    assert created["role"] == "operator" and created["expires_at"], created
    listed = expect_json(admin.get("/api/v1/tokens"), 200)["items"]
    assert any(t["id"] == created["id"] for t in listed)
    assert token not in json.dumps(listed) and all("token" not in t for t in listed), "token list shows a secret"

    op = s.session(token)
    _, csr = openssl_csr(tmp_path / "csr", "op", "op.example.com", ["DNS:op.example.com"])
    issue(op, csr)
    expect_json(op.get("/api/v1/certificates"), 200)
    expect_problem(op.get("/api/v1/tokens"), 403, "forbidden")  # operators do not manage tokens

    expect_problem(admin.post("/api/v1/tokens", json={"name": "ci-operator", "role": "operator"}), 409, "conflict")
    expect_problem(admin.post("/api/v1/tokens", json={"name": "x", "role": "root"}), 400, "malformed-request")

    revoked = expect_json(admin.delete(f"/api/v1/tokens/{created['id']}"), 200)
    assert revoked["revoked_at"], revoked
    r = op.get("/api/v1/certificates")
    expect_problem(r, 401, "unauthorized")
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), show(r)
    expect_problem(admin.delete("/api/v1/tokens/nonexistent"), 404, "not-found")

    # No token, a malformed header, a made-up token: 401 problem documents.
    anon = s.session()
    expect_problem(anon.get("/api/v1/certificates"), 401, "unauthorized")
    expect_problem(anon.get("/api/v1/certificates", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
    expect_problem(anon.get("/api/v1/certificates", headers={"Authorization": "Bearer sigil_000000000000_" + "A" * 43}),
                   401, "unauthorized")
    assert s.stop() == 0, s.describe()


def test_roles_and_cli_tokens(servers, home, serve_bin, tmp_path):
    s = servers(home.path)
    admin = s.session(home.admin_token)

    # Tokens made by the CLI on the running server's home work at once.
    auditor_token = cli_ok(serve_bin, home.path, "token", "create", "--role", "auditor", "--name", "aud").stdout.strip()
    assert TOKEN_RE.match(auditor_token), auditor_token
    p = cli_ok(serve_bin, home.path, "token", "create", "--role", "requester", "--name", "ci", "--expires", "30d",
               "--allow", "*.ci.example.com")
    requester_token = p.stdout.strip()
    assert TOKEN_RE.match(requester_token), describe(p)

    _, csr_other = openssl_csr(tmp_path / "csr", "www", "www.example.com", ["DNS:www.example.com"])
    _, csr_ci = openssl_csr(tmp_path / "csr", "b1", "build1.ci.example.com", ["DNS:build1.ci.example.com"])

    # Auditor: reads certificates and the audit trail, cannot issue or manage tokens.
    aud = s.session(auditor_token)
    expect_json(aud.get("/api/v1/certificates"), 200)
    expect_json(aud.get("/api/v1/audit"), 200)
    assert expect_json(aud.get("/api/v1/audit/verify"), 200)["ok"] is True
    expect_problem(aud.post("/api/v1/certificates", json={"csr": csr_ci, "profile": "tls-server"}), 403, "forbidden")
    expect_problem(aud.post("/api/v1/tokens", json={"name": "x", "role": "admin"}), 403, "forbidden")

    # Requester limited to *.ci.example.com.
    req = s.session(requester_token)
    got = issue(req, csr_ci)
    assert dns_sans(cert_of(got["certificate"])) == ["DNS:build1.ci.example.com"]
    count = len(inventory(admin))
    r = req.post("/api/v1/certificates", json={"csr": csr_other, "profile": "tls-server"})
    doc = expect_problem(r, 422, "policy-violation")
    assert doc.get("errors") and any("www.example.com" in e for e in doc["errors"]), show(r)
    assert len(inventory(admin)) == count, "a refused request added a certificate"
    expect_problem(req.get("/api/v1/tokens"), 403, "forbidden")
    expect_problem(req.post(f"/api/v1/certificates/{got['serial']}/revoke", json={}), 403, "forbidden")

    # The CLI lists tokens without secrets and revokes by name; the token stops working.
    p = cli_ok(serve_bin, home.path, "token", "list", "--json")
    listed = json.loads(p.stdout)
    assert {"admin", "aud", "ci"} <= {t["name"] for t in listed}, p.stdout
    for secret in (home.admin_token, auditor_token, requester_token):
        assert secret not in p.stdout
        assert secret.split("_", 2)[2] not in p.stdout
    cli_ok(serve_bin, home.path, "token", "revoke", "ci")
    expect_problem(req.get("/api/v1/certificates"), 401, "unauthorized")
    states = {t["name"]: t["revoked_at"] for t in json.loads(cli_ok(serve_bin, home.path, "token", "list", "--json").stdout)}
    assert states["ci"] and not states["aud"], states
    assert s.stop() == 0, s.describe()


# ------------------------------------------------------------------------------------ 3. bad input


def test_bad_input_is_refused_with_problems(servers, home, tmp_path):
    s = servers(home.path)
    api = s.session(home.admin_token)
    _, csr = openssl_csr(tmp_path / "csr", "ok", "ok.example.com", ["DNS:ok.example.com"])
    count = len(inventory(api))
    url = "/api/v1/certificates"
    jh = {"Content-Type": "application/json"}

    big = json.dumps({"csr": csr + "\n" + "A" * (300 * 1024), "profile": "tls-server"})
    expect_problem(api.post(url, data=big, headers=jh), 413, "payload-too-large")
    expect_problem(api.post(url, data='{"csr": "-----BEGIN', headers=jh), 400, "malformed-request")
    expect_problem(api.post(url, data="[1, 2, 3]", headers=jh), 400, "malformed-request")
    expect_problem(api.post(url, data=b"\xff\xfe\x00garbage", headers=jh), 400, "malformed-request")
    doc = expect_problem(api.post(url, json={"csr": csr, "profile": "tls-server", "colour": "red"}), 400,
                         "malformed-request")
    assert "colour" in doc.get("detail", ""), doc
    expect_problem(api.post(url, json={"csr": csr}), 400, "malformed-request")  # profile missing
    expect_problem(api.post(url, json={"csr": csr, "profile": "tls-server", "days": "ten"}), 400, "malformed-request")
    expect_problem(api.post(url, json={"csr": csr, "profile": "tls-server", "days": True}), 400, "malformed-request")
    expect_problem(api.post(url, json={"csr": csr, "profile": "no-such-profile"}), 400)
    for bad in ("not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nMIIBfoo\n-----END CERTIFICATE REQUEST-----\n",
                csr.replace("BEGIN CERTIFICATE REQUEST", "BEGIN CERTIFICATE").replace("END CERTIFICATE REQUEST", "END CERTIFICATE"),
                ""):
        expect_problem(api.post(url, json={"csr": bad, "profile": "tls-server"}), 400, "malformed-request")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        expect_problem(api.post(url, data=json.dumps({"csr": csr, "profile": "tls-server"}),
                                headers={"Content-Type": ctype}), 415, "unsupported-media-type")
    # The same rules on the other JSON bodies.
    expect_problem(api.post("/api/v1/tokens", json={"name": "t", "role": "auditor", "scope": "all"}), 400)
    expect_problem(api.post("/api/v1/tokens", data="{", headers=jh), 400)
    expect_problem(api.post("/api/v1/tokens", data='{"name":"t","role":"auditor"}',
                            headers={"Content-Type": "text/plain"}), 415)
    expect_problem(api.post("/api/v1/tokens", data=json.dumps({"name": "x" * (300 * 1024), "role": "auditor"}),
                            headers=jh), 413)

    assert len(inventory(api)) == count, "bad requests changed the inventory"
    assert expect_json(api.get("/healthz"), 200) == {"status": "ok"}
    expect_json(api.get("/readyz"), 200)
    issue(api, csr)  # and it still issues
    assert s.stop() == 0, s.describe()


# ------------------------------------------------------------------------------------ 4. schemathesis


def _st_version() -> str:
    import schemathesis
    return getattr(schemathesis, "__version__", "") or __import__("importlib.metadata").metadata.version("schemathesis")


def test_schemathesis_fuzz(servers, home, tmp_path):
    """schemathesis 4.x from the server's own /openapi.yaml, as admin: no 5xx, responses that
    match the schema (status codes, content types, bodies)."""
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.fail("schemathesis is not installed in the venv (tests/interop/requirements.txt)")
    version = _st_version()
    assert version.split(".")[0] == "4", f"this test drives the schemathesis 4.x CLI, found {version}"
    (home.path / "sigil.yaml").write_text(APPROVAL_YAML)
    s = servers(home.path)
    api = s.session(home.admin_token)
    # Some data for the path parameters and links to find: certificates and requests.
    for i in range(3):
        _, csr = openssl_csr(tmp_path / "csr", f"f{i}", f"fuzz{i}.example.com", [f"DNS:fuzz{i}.example.com"])
        issue(api, csr, owner="fuzz")
    for i in range(2):
        _, csr = openssl_csr(tmp_path / "csr", f"fa{i}", f"fuzz-approve{i}.example.com", [f"DNS:fuzz-approve{i}.example.com"])
        expect_json(api.post("/api/v1/certificates", json={"csr": csr, "profile": APPROVAL_PROFILE}), 202)
    # DELETE /api/v1/tokens/{id} would revoke the admin token that the rest of the run uses
    # (found through GET /api/v1/tokens): fuzz it last, with a token of its own.
    last_token = expect_json(api.post("/api/v1/tokens", json={"name": "fuzz-delete", "role": "admin"}), 201)["token"]

    max_examples = os.environ.get("SIGIL_FUZZ_MAX_EXAMPLES", "20")
    seed = os.environ.get("SIGIL_FUZZ_SEED", "1")
    budget = float(os.environ.get("SIGIL_FUZZ_TIMEOUT_S", "480"))  # bounds a hang; a run takes 80 s on a loaded machine
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    # The discovery endpoints are left out: fuzzed targets and paths would make the server connect to
    # arbitrary addresses and walk arbitrary directories (test_discovery.py covers them with loopback servers).
    runs = [("main", home.admin_token, ["--exclude-path-regex", "^/api/v1/(tokens|discovery)/"]),
            ("tokens-delete", last_token, ["--include-path-regex", "^/api/v1/tokens/", "--include-method", "DELETE"])]
    started = time.monotonic()
    for label, token, selection in runs:
        report = tmp_path / f"st-{label}"
        argv = [st, "run", f"{s.url}/openapi.yaml", "--url", s.url, "-H", f"Authorization: Bearer {token}",
                "--tls-verify", s.root_pem, "--max-examples", max_examples, "--checks", checks,
                "--generation-database", "none", "--no-color", "--request-timeout", "30",
                "--report", "har,junit", "--report-dir", report, *selection]
        if seed != "random":
            argv += ["--seed", seed]
        remaining = budget - (time.monotonic() - started)
        assert remaining > 10, "schemathesis time budget spent"
        env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
        try:
            # cwd: schemathesis keeps a .schemathesis/ cache in its working directory.
            p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=remaining,
                               stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"schemathesis ({label}) ran over {remaining:.0f} s:\n{(e.stdout or b'')[-4000:]}")
        output = p.stdout + p.stderr
        # Independent of schemathesis's verdict: no 5xx in what it recorded.
        har = sorted(report.glob("har-*.json"))
        assert har, "schemathesis wrote no HAR report" + describe(p)
        entries = json.loads(har[-1].read_text())["log"]["entries"]
        server_errors = [f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}"
                         for e in entries if e["response"]["status"] >= 500]
        assert not server_errors, f"5xx from the server ({label}):\n" + "\n".join(server_errors[:20]) + describe(p)
        assert p.returncode == 0, f"schemathesis ({label}) found failures:\n{output[-12000:]}"
        if label == "main":
            # The run exercised the API as admin, not just 401s.
            authed = [e for e in entries if e["response"]["status"] < 300 and "/api/v1/" in e["request"]["url"]]
            assert len(authed) >= 20, f"only {len(authed)} 2xx API responses: did authentication work?\n{output[-4000:]}"
            expect_json(api.get("/api/v1/tokens"), 200)
        assert s.alive(), "the server died during fuzzing" + s.describe()
        assert expect_json(s.session().get("/healthz"), 200) == {"status": "ok"}
    assert s.stop() == 0, s.describe()


# ------------------------------------------------------------------------------------ 5. secrets


def test_secrets_never_logged(servers, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    passphrase = "s3cret-Passphrase-" + os.urandom(8).hex()
    s = servers(home, "--log-format", "json", "--log-level", "trace", "--passphrase-env", "SIGIL_TEST_PW",
                env={"SIGIL_TEST_PW": passphrase})
    admin_token = s.admin_token
    assert admin_token
    assert not (home / "ca-passphrase").exists(), "a passphrase was given; none should be generated"
    admin = s.session(admin_token)

    _, csr = openssl_csr(tmp_path / "csr", "sec", "sec.example.com", ["DNS:sec.example.com"])
    issue(admin, csr)
    created = expect_json(admin.post("/api/v1/tokens", json={"name": "ci", "role": "requester",
                                                             "allowed_names": ["*.example.com"]}), 201)["token"]
    issue(s.session(created), csr)
    wrong = "sigil_" + admin_token.split("_")[1] + "_" + "W" * 43  # right id, wrong secret
    expect_problem(s.session(wrong).get("/api/v1/certificates"), 401)
    expect_problem(s.session("garbage-token-value-123456").get("/api/v1/certificates"), 401)
    expect_problem(admin.post("/api/v1/certificates", data='{"csr": 1', headers={"Content-Type": "application/json"}), 400)
    expect_json(admin.get("/api/v1/tokens"), 200)
    assert s.stop() == 0, s.describe()

    out, err = s.stdout, s.stderr
    # stdout: the admin token appears once, on its own line, and nowhere else.
    assert out.count(admin_token) == 1 and f"admin token: {admin_token}" in out.splitlines(), out
    rest_of_stdout = out.replace(f"admin token: {admin_token}", "")
    secrets = {"admin token": admin_token, "created token": created, "wrong token": wrong,
               "garbage token": "garbage-token-value-123456", "CA passphrase": passphrase}
    for what, secret in secrets.items():
        assert secret not in rest_of_stdout, f"{what} on stdout:\n{out}"
        assert secret not in err, f"{what} in the logs (stderr)"
        if secret.startswith("sigil_"):
            assert secret.split("_", 2)[2] not in rest_of_stdout + err, f"the secret part of the {what} is logged"
    assert "Bearer " not in err, "an Authorization header is logged"

    # JSON log lines: each parses; request entries carry hb.request.id.
    records = []
    for line in err.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"a JSON log line does not parse ({e}): {line}")
    assert len(records) >= 10, err[-3000:]
    for rec in records:
        assert {"time", "level", "message"} <= set(rec), rec
    requests_logged = [r for r in records if "hb.request.path" in r or "hb.request.method" in r]
    assert len(requests_logged) >= 7, err[-3000:]  # the 7 API requests above
    for rec in requests_logged:
        assert rec.get("hb.request.id"), f"no request id: {rec}"
    assert len({r["hb.request.id"] for r in requests_logged}) >= 7


def test_json_log_format_is_json_only(servers, tmp_path):
    """With --log-format json, stderr is for a log shipper: every line is a JSON object, the first
    start's notices (CAs created, passphrase generated) included."""
    home = tmp_path / "home"
    s = servers(home, "--log-format", "json")
    expect_json(s.session().get("/healthz"), 200)
    expect_json(s.session(s.admin_token).get("/api/v1/issuers"), 200)
    assert s.stop() == 0, s.describe()
    bad = []
    for line in s.stderr.splitlines():
        if not line.strip():
            continue
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            bad.append(line)
    assert not bad, "stderr lines that are not JSON with --log-format json:\n" + "\n".join(bad[:20])


# ------------------------------------------------------------------------------------ 6. lifecycle


def test_second_instance_is_refused(servers, home):
    first = servers(home.path)
    api = first.session(home.admin_token)
    t0 = time.monotonic()
    second = servers(home.path, start=False)
    try:
        rc = second.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a second sigil serve on the same SIGIL_HOME is still running after 60 s" + second.describe())
    elapsed = time.monotonic() - t0
    assert rc != 0, second.describe()
    assert "already running" in second.stderr, second.describe()
    # It refuses rather than waiting for the lock. The bound leaves room for the start of a debug
    # binary on a loaded 2-core machine (it includes that start); waiting for the first server
    # would never end.
    assert elapsed < 30, f"took {elapsed:.1f} s to refuse"
    assert "listening" not in second.stdout and "admin token" not in second.stdout, second.describe()
    # The first keeps serving.
    assert first.alive()
    assert expect_json(api.get("/readyz"), 200)["status"] == "ready"
    expect_json(api.get("/api/v1/certificates"), 200)
    assert first.stop() == 0, first.describe()


def test_sigterm_with_idle_keepalive_client(servers, home):
    """A client holding an idle HTTPS keep-alive connection must not hold up shutdown for long."""
    s = servers(home.path)
    api = s.session(home.admin_token, track=False, keepalive=True)
    expect_json(api.get("/api/v1/issuers"), 200)  # the connection stays open in the pool
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc = s.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    api.close()
    print(f"SIGTERM with one idle keep-alive HTTPS client: exit {rc} after {took:.2f} s")
    assert rc == 0, s.describe()
    # About 5 s (NIOSSL's wait for the client's close_notify) plus the shutdown itself; what it
    # must not do is wait for the idle client to go (the 30 s idle timeout, or never).
    assert took < 20, f"exit took {took:.1f} s"


def test_sigterm_during_issuance_burst(servers, home, serve_bin, tmp_path):
    s = servers(home.path)
    assert expect_json(s.session().get("/readyz"), 200)["status"] == "ready"
    n = int(os.environ.get("SIGIL_BURST", "20"))
    csrs = [openssl_csr(tmp_path / "csr", f"b{i}", f"burst{i}.example.com", [f"DNS:burst{i}.example.com"])[1]
            for i in range(n)]
    first_201 = threading.Event()
    go = threading.Barrier(n)
    sigterm_at: list[float] = []

    def one(i: int):
        with s.session(home.admin_token, keepalive=True) as api:
            api.get("/healthz")  # connect (TLS) first, so the POSTs start together
            go.wait(timeout=60)
            t0 = time.monotonic()
            try:
                r = api.post("/api/v1/certificates", json={"csr": csrs[i], "profile": "tls-server", "owner": "burst"},
                             timeout=30)
            except requests.RequestException as e:
                return ("error", repr(e), t0, time.monotonic())
            if r.status_code == 201:
                first_201.set()
            return (r.status_code, r.json() if r.status_code == 201 else r.text[:300], t0, time.monotonic())

    with cf.ThreadPoolExecutor(max_workers=n) as ex:
        futures = [ex.submit(one, i) for i in range(n)]
        assert first_201.wait(timeout=60), "no issuance succeeded" + s.describe()
        sigterm_at.append(time.monotonic())
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        exited_in = time.monotonic() - sigterm_at[0]
        results = [f.result(timeout=60) for f in futures]
    assert rc is not None, "sigil serve still running 60 s after SIGTERM" + s.describe()
    assert rc == 0, f"exit status {rc} after SIGTERM" + s.describe()
    # The requests in flight finish first (a debug build on a loaded machine signs and stores
    # them one by one, a second or so each); a hang would not end.
    assert exited_in < 30, f"exit took {exited_in:.1f} s"

    issued = [r[1] for r in results if r[0] == 201]
    failures = [r for r in results if r[0] not in (201, "error")]
    finished_after_term = [r for r in results if r[0] == 201 and r[3] > sigterm_at[0]]
    print(f"burst: {len(issued)} issued ({len(finished_after_term)} answered after SIGTERM), "
          f"{sum(1 for r in results if r[0] == 'error')} connection errors, exit {rc} in {exited_in:.2f} s")
    assert not failures, f"requests answered with an error status during shutdown: {failures}"
    assert issued

    # After exit: every 201 is in the inventory, and the audit chain verifies.
    listed = json.loads(cli_ok(serve_bin, home.path, "cert", "list", "--json", "--owner", "burst").stdout)
    by_serial = {c["serial"]: c for c in listed}
    missing = [b["serial"] for b in issued if b["serial"] not in by_serial]
    assert not missing, f"answered 201 but not in the inventory: {missing}"
    for b in issued:
        assert by_serial[b["serial"]]["fingerprint"] == b["fingerprint"]
        assert by_serial[b["serial"]]["status"] == "active"
    unanswered = set(by_serial) - {b["serial"] for b in issued}
    print(f"burst: {len(unanswered)} issued by the server but not answered to a client")
    p = cli(serve_bin, home.path, "audit", "verify")
    assert p.returncode == 0, describe(p)

    # Restart: ready, and the certificates are served.
    s2 = servers(home.path)
    api = s2.session(home.admin_token)
    assert expect_json(api.get("/readyz"), 200)["status"] == "ready"
    for b in issued:
        assert expect_json(api.get(f"/api/v1/certificates/{b['serial']}"), 200)["fingerprint"] == b["fingerprint"]
    assert expect_json(api.get("/api/v1/audit/verify"), 200)["ok"] is True
    assert s2.stop() == 0, s2.describe()


# ------------------------------------------------------------------------------------ 7. settings


def test_config_precedence(servers, home, tmp_path):
    ports = set()
    while len(ports) < 7:
        ports.add(free_port())
    f_https, f_http, e_https, e_http, c_https, c_http, x_https = sorted(ports)
    (home.path / "sigil.yaml").write_text(f"listen: 127.0.0.1:{f_https}\nhttp_listen: 127.0.0.1:{f_http}\n")

    def check(s: SigilServer, https: int, http: int):
        assert (s.https_port, s.http_port) == (https, http), s.match.group(0)
        expect_json(s.session().get("/healthz"), 200)
        assert s.stop() == 0, s.describe()

    # sigil.yaml alone.
    check(servers(home.path, default_listen=False), f_https, f_http)
    # SIGIL_* environment beats the file.
    env = {"SIGIL_LISTEN": f"127.0.0.1:{e_https}", "SIGIL_HTTP_LISTEN": f"127.0.0.1:{e_http}"}
    check(servers(home.path, env=env, default_listen=False), e_https, e_http)
    # Flags beat both.
    check(servers(home.path, "--listen", f"127.0.0.1:{c_https}", "--http-listen", f"127.0.0.1:{c_http}", env=env,
                  default_listen=False), c_https, c_http)
    # Mixed: flag for one listener, environment for the other.
    check(servers(home.path, "--listen", f"127.0.0.1:{x_https}", env={"SIGIL_HTTP_LISTEN": f"127.0.0.1:{e_http}"},
                  default_listen=False), x_https, e_http)
    # --config FILE replaces SIGIL_HOME/sigil.yaml.
    other = tmp_path / "other.yaml"
    other.write_text(f"listen: 127.0.0.1:{e_https}\nhttp_listen: 127.0.0.1:{c_http}\n")
    check(servers(home.path, "--config", other, default_listen=False), e_https, c_http)
    # A bad listen address in the file is an error naming it, not a silent default.
    (home.path / "sigil.yaml").write_text("listen: nonsense\n")
    bad = servers(home.path, start=False, default_listen=False)
    rc = bad.proc.wait(timeout=60)
    assert rc != 0 and "nonsense" in bad.stderr, bad.describe()
