"""`sigil report compliance` over an inventory built by peers: openssl makes the certificates
(RSA 1024, SHA-1, MD5, self-signed, wildcard, one key in two certificates), `sigil import` reads
some from a directory, `sigil scan` sees others served by `openssl s_server` on 127.0.0.1. Every
finding is known in advance; each format is read back with Python's own parsers (json, csv,
html.parser), and `--fail-on` is used as the CI gate it is meant to be.
"""
from __future__ import annotations

import csv
import datetime
import html.parser
import io
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from interop_helpers import describe, openssl, openssl_ok, sigil
from serve_helpers import free_port



def sha256_fp(pem: Path) -> str:
    return x509.load_pem_x509_certificate(pem.read_bytes()).fingerprint(hashes.SHA256()).hex()


def serial_of(pem: Path) -> int:
    return x509.load_pem_x509_certificate(pem.read_bytes()).serial_number


class Fixtures:
    """Keys and certificates made with openssl in `d`."""

    def __init__(self, d: Path):
        self.d = d
        d.mkdir(parents=True, exist_ok=True)

    def key(self, name: str, spec: list[str]) -> Path:
        k = self.d / f"{name}.key"
        openssl_ok("genpkey", *spec, "-out", k)
        return k

    def ec_key(self, name: str) -> Path:
        return self.key(name, ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])

    def rsa_key(self, name: str, bits: int) -> Path:
        return self.key(name, ["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"])

    def self_signed(self, name: str, key: Path, subject: str, days: int, ext: list[str]) -> Path:
        c = self.d / f"{name}.pem"
        args = ["req", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(days), "-out", c]
        for e in ext:
            args += ["-addext", e]
        openssl_ok(*args)
        return c

    def leaf(self, name: str, key: Path, cn: str, ca: Path, ca_key: Path, digest: str = "sha256", days: int = 90,
             sans: list[str] | None = None) -> subprocess.CompletedProcess:
        csr = self.d / f"{name}.csr"
        openssl_ok("req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr)
        ext = self.d / f"{name}.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\nsubjectAltName=" + ",".join(f"DNS:{n}" for n in (sans or [cn])) + "\n")
        return openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", f"-{digest}",
                       "-days", str(days), "-extfile", ext, "-out", self.d / f"{name}.pem")


class TLSServer:
    """`openssl s_server` serving one certificate on 127.0.0.1."""

    def __init__(self, cert: Path, key: Path, logdir: Path):
        self.port = free_port()
        self.log = open(logdir / f"s_server-{self.port}.log", "w")
        self.proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-cert", str(cert), "-key", str(key),
                                      "-www", "-quiet"], stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"openssl s_server on {self.port} did not start: {(logdir / f's_server-{self.port}.log').read_text()}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def require_discovery():
    p = sigil("import", "--help")
    if p.returncode != 0:
        pytest.skip("this sigil has no `sigil import` / `sigil scan` yet (the discovery branch)")


class Inventory:
    def __init__(self, home: Path, expected: set[tuple[str, str]], md5: bool, reason: str):
        self.home = home
        self.env = {"SIGIL_HOME": str(home)}
        self.expected = expected
        self.md5 = md5
        self.md5_reason = reason

    def report(self, *args) -> subprocess.CompletedProcess:
        return sigil("report", "compliance", *args, env=self.env, timeout=120)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Inventory:
    require_discovery()
    base = tmp_path_factory.mktemp("report")
    f = Fixtures(base / "made")
    at_rest = base / "at-rest"
    (at_rest / "nested").mkdir(parents=True)
    expected: set[tuple[str, str]] = set()

    # An outside CA (EC P-256) that signs most of the leaves, imported so its leaves' issuer is known.
    ca_key = f.ec_key("outside-ca")
    ca = f.self_signed("outside-ca", ca_key, "/O=Elsewhere/CN=Outside CA", 1000,
                       ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"])
    # A legacy RSA CA for the SHA-1 and MD5 leaves.
    legacy_key = f.rsa_key("legacy-ca", 2048)
    legacy = f.self_signed("legacy-ca", legacy_key, "/CN=Legacy CA", 1000,
                           ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"])

    ok_leaf = lambda p: (p.returncode == 0) or pytest.fail(describe(p))
    ok_leaf(f.leaf("weak", f.rsa_key("weak", 1024), "weak.example.test", ca, ca_key))
    expected.add(("weak-key", "weak"))
    ok_leaf(f.leaf("sha1", f.rsa_key("sha1", 2048), "sha1.example.test", legacy, legacy_key, digest="sha1"))
    expected.add(("sha1-signature", "sha1"))
    md5 = f.leaf("md5", f.rsa_key("md5", 2048), "md5.example.test", legacy, legacy_key, digest="md5")
    if md5.returncode == 0:
        expected.add(("md5-signature", "md5"))
    ok_leaf(f.leaf("wildcard", f.ec_key("wildcard"), "*.wild.example.test", ca, ca_key))
    expected.add(("wildcard", "wildcard"))
    shared = f.ec_key("shared")
    for name in ("shared-a", "shared-b"):
        ok_leaf(f.leaf(name, shared, f"{name}.example.test", ca, ca_key))
        expected.add(("shared-key", name))
    clean_key = f.ec_key("clean")
    ok_leaf(f.leaf("clean", clean_key, "clean.example.test", ca, ca_key))

    # At rest: the CAs and leaves, as PEM and DER, in a tree with a junk file.
    for name in ("outside-ca", "legacy-ca", "weak", "sha1", "wildcard", "shared-a", "clean") + (("md5",) if md5.returncode == 0 else ()):
        (at_rest / f"{name}.pem").write_bytes((f.d / f"{name}.pem").read_bytes())
    openssl_ok("x509", "-in", f.d / "shared-b.pem", "-outform", "DER", "-out", at_rest / "nested" / "shared-b.der")
    (at_rest / "nested" / "notes.txt").write_text("not a certificate\n")

    # In use: served by openssl s_server and found by `sigil scan`.
    self_key = f.ec_key("selfie")
    selfie = f.self_signed("selfie", self_key, "/CN=selfie.example.test", 60, ["subjectAltName=DNS:selfie.example.test"])
    expected.add(("self-signed-in-use", "selfie"))
    orphan_ca_key = f.ec_key("vanished-ca")
    orphan_ca = f.self_signed("vanished-ca", orphan_ca_key, "/CN=Vanished CA", 1000, ["basicConstraints=critical,CA:TRUE"])
    orphan_key = f.ec_key("orphan")
    ok_leaf(f.leaf("orphan", orphan_key, "orphan.example.test", orphan_ca, orphan_ca_key))
    expected.add(("unknown-issuer-in-use", "orphan"))
    # Expired two days ago: openssl 3.0's `x509 -req` cannot back-date, so Python's cryptography signs it with the outside CA's key.
    expired_key = f.ec_key("expired")
    ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    expired_cert = (x509.CertificateBuilder()
                    .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "expired.example.test")]))
                    .issuer_name(ca_cert.subject)
                    .public_key(serialization.load_pem_private_key(expired_key.read_bytes(), None).public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(days=100)).not_valid_after(now - datetime.timedelta(days=2))
                    .add_extension(x509.SubjectAlternativeName([x509.DNSName("expired.example.test")]), critical=False)
                    .sign(serialization.load_pem_private_key(ca_key.read_bytes(), None), hashes.SHA256()))
    (f.d / "expired.pem").write_bytes(expired_cert.public_bytes(serialization.Encoding.PEM))
    expected.add(("expired-in-use", "expired"))

    home = base / "home"
    env = {"SIGIL_HOME": str(home)}
    p = sigil("import", str(at_rest), env=env, timeout=120)
    assert p.returncode == 0, describe(p)
    servers = [TLSServer(f.d / f"{n}.pem", k, base) for n, k in (("selfie", self_key), ("orphan", orphan_key), ("expired", expired_key),
                                                                     ("clean", clean_key))]
    try:
        # Every endpoint answers: the timeout only bounds a handshake on a loaded machine.
        p = sigil("scan", "--timeout", "20s", *[s.target for s in servers], env=env, timeout=180)
        assert p.returncode == 0, describe(p)
    finally:
        for s in servers:
            s.stop()
    serials = {name: serial_of(f.d / f"{name}.pem") for name in
               ("weak", "sha1", "md5", "wildcard", "shared-a", "shared-b", "selfie", "orphan", "expired") if (f.d / f"{name}.pem").exists()}
    inv = Inventory(home, {(check, serials[name]) for check, name in expected}, md5.returncode == 0, describe(md5))
    inv.fingerprints = {name: sha256_fp(f.d / f"{name}.pem") for name in serials}
    inv.base = base
    return inv


def findings_of(document: dict) -> set[tuple[str, int]]:
    """(check, serial number): Sigil writes serials as the DER's hex, leading zero octets included."""
    return {(f["check"], int(f["certificate"]["serial"], 16)) for f in document["findings"]}


def test_json_has_exactly_the_expected_findings(inventory):
    p = inventory.report("--format", "json")
    assert p.returncode == 0, describe(p)
    doc = json.loads(p.stdout)
    found = findings_of(doc)
    assert found == inventory.expected, (f"missing {inventory.expected - found}; extra {found - inventory.expected}" + describe(p))
    assert doc["schema"] == "sigil.compliance-report.v1"
    assert doc["summary"]["highest_severity"] == "critical"
    assert doc["summary"]["findings"] == len(inventory.expected)
    by_check = {c["id"]: c for c in doc["checks"]}
    assert by_check["weak-key"]["severity"] == "critical" and by_check["sha1-signature"]["severity"] == "high"
    assert any(c["id"] == "PCI DSS v4.0 4.2.1.1" for c in by_check["unknown-issuer-in-use"]["controls"])
    # Where each lives: the scanned ones at their endpoint, the imported ones in their file.
    expired = next(f for f in doc["findings"] if f["check"] == "expired-in-use")
    assert [loc["kind"] for loc in expired["locations"]] == ["tls"] and expired["locations"][0]["location"].startswith("127.0.0.1:")
    assert expired["certificate"]["fingerprint"] == inventory.fingerprints["expired"]
    weak = next(f for f in doc["findings"] if f["check"] == "weak-key")
    assert any(loc["kind"] == "file" and loc["location"].endswith("weak.pem") for loc in weak["locations"]), weak["locations"]
    shared = [f for f in doc["findings"] if f["check"] == "shared-key"]
    assert {tuple(f["shares_key_with"]) for f in shared} == {(inventory.fingerprints["shared-a"],), (inventory.fingerprints["shared-b"],)}
    agility = doc["crypto_agility"]
    assert agility["post_quantum"] == 0 and agility["quantum_vulnerable"] == agility["total"] > 0
    names = {k["name"] for k in agility["keys"]}
    assert {"RSA 1024", "RSA 2048", "ECDSA 256"} <= names, names


def test_md5_fixture(inventory):
    if not inventory.md5:
        pytest.skip("this openssl refuses MD5 certificate signatures: " + inventory.md5_reason[-300:])
    assert any(check == "md5-signature" for check, _ in inventory.expected)


def test_csv_rows_match(inventory, tmp_path):
    out = tmp_path / "report.csv"
    p = inventory.report("--format", "csv", "--output", str(out))
    assert p.returncode == 0 and p.stdout == "", describe(p)
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    raw = out.read_bytes()
    assert b"\r\n" in raw, "RFC 4180 line ends"
    rows = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
    assert {(r["check"], int(r["serial"], 16)) for r in rows} == inventory.expected and len(rows) == len(inventory.expected)
    # Fields with commas (titles, details) are quoted, and come back whole.
    weak = next(r for r in rows if r["check"] == "weak-key")
    assert weak["title"] == "Weak keys (RSA under 2048 bits, elliptic curves under P-256)", weak
    assert b'"Weak keys (RSA under 2048 bits, elliptic curves under P-256)"' in raw
    assert weak["issuer"] == "/O=Elsewhere/CN=Outside CA" and weak["locations"].startswith("file "), weak
    # Written again over the old file: replaced atomically, no temporary left behind.
    p = inventory.report("--format", "csv", "--output", str(out))
    assert p.returncode == 0, describe(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["report.csv"]


class _Checker(html.parser.HTMLParser):
    VOID = {"meta", "br", "link", "img", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.problems, self.text, self.external = [], [], [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") or (name == "style" and "url(" in (value or "")):
                self.external.append((tag, name, value))
        if tag == "script":
            self.external.append((tag, "script", ""))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_well_formed_and_self_contained(inventory):
    p = inventory.report("--format", "html")
    assert p.returncode == 0, describe(p)
    checker = _Checker()
    checker.feed(p.stdout)
    checker.close()
    assert not checker.problems and not checker.stack, (checker.problems, checker.stack)
    assert not checker.external, f"external assets: {checker.external}"
    text = "".join(checker.text)
    for fingerprint in inventory.fingerprints.values():
        assert fingerprint in text
    assert "*.wild.example.test" in text and "<script" not in p.stdout


def test_text_summary_first_then_by_severity(inventory):
    p = inventory.report()
    assert p.returncode == 0, describe(p)
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Sigil compliance report") and lines[2].startswith(f"Findings: {len(inventory.expected)}")
    order = [lines.index(h) for h in ("CRITICAL", "HIGH", "MEDIUM", "LOW")]
    assert order == sorted(order), order
    assert "Crypto agility" in p.stdout and "PCI DSS v4.0 4.2.1.1" in p.stdout


def test_fail_on_is_a_gate(inventory, tmp_path):
    p = inventory.report("--fail-on", "critical", "--format", "json")
    assert p.returncode == 1 and "at or above critical" in p.stderr, describe(p)
    assert findings_of(json.loads(p.stdout)) == inventory.expected, "the report is still written when the gate fails"
    # A home holding only the clean leaf and its CA passes even the strictest gate.
    clean_home = tmp_path / "clean-home"
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    for name in ("outside-ca", "clean"):
        (clean_dir / f"{name}.pem").write_bytes((inventory.base / "made" / f"{name}.pem").read_bytes())
    assert sigil("import", str(clean_dir), env={"SIGIL_HOME": str(clean_home)}).returncode == 0
    p = sigil("report", "compliance", "--fail-on", "info", env={"SIGIL_HOME": str(clean_home)})
    assert p.returncode == 0, describe(p)
    assert "Findings: 0" in p.stdout


@pytest.mark.parametrize("flags, message", [
    (["--format", "pdf"], "--format must be text, json, csv or html"),
    (["--fail-on", "urgent"], "--fail-on must be info, low, medium, high or critical"),
    (["--expiring-within", "soon"], "--expiring-within must be a duration"),
    (["--max-validity", "0"], "--max-validity must be a number of days"),
])
def test_bad_flags_exit_2_and_write_nothing(inventory, tmp_path, flags, message):
    out = tmp_path / "r.json"
    p = inventory.report("--output", str(out), *flags)
    assert p.returncode == 2 and message in p.stderr, describe(p)
    assert list(tmp_path.iterdir()) == []
