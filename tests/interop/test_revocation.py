"""Revocation (issue 5) judged from outside: `sigil serve`'s OCSP responder and CRLs, and the
`sigil cert revoke` / `sigil crl generate` commands, checked by `openssl ocsp`, `openssl crl`,
`openssl verify -crl_check[_all]`, curl and Python `cryptography` (signatures verified with the
issuer's or the delegated responder's public key, never trusted from sigil's own output).

The server runs on 127.0.0.1: its HTTPS API on port 0, its HTTP listener on a fixed port that this
module picks below the kernel's ephemeral range (so that the CRL distribution point, the AIA OCSP
URL and the CRL's issuing distribution point written at CA creation stay the listener's real URL
in every copy of the template home). Every server is stopped by PID at teardown.
"""
from __future__ import annotations

import base64
import datetime as dt
import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from interop_helpers import children, describe, run, sigil_bin, tlv, to_pem
from serve_helpers import API, SigilServer, cert_of, copy_home, expect_json, openssl_csr

OCSP_NOCHECK_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")
# robustness: every OCSP answer within this many seconds. What it catches is a stall (a responder
# that waits on idle or half-open connections never answers, or only after the 30 s idle
# timeout); a debug build on a loaded 2-core machine can take a second for a normal answer.
OCSP_BOUND_S = 8.0

# CLI/API reason name -> (how `openssl ocsp` prints it, how `openssl crl -text` prints it,
#                         cryptography's ReasonFlags)
# OpenSSL 3.0's OCSP reason table stops at removeFromCRL (8): it prints privilegeWithdrawn (9) and
# aACompromise (10) as "(UNKNOWN)" (`-resp_text`: "(UNKNOWN) (0x9)"); cryptography names them.
REASON_CODES = {"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
                "cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9, "aACompromise": 10}
REASONS = {
    "unspecified": ("unspecified", "Unspecified", x509.ReasonFlags.unspecified),
    "keyCompromise": ("keyCompromise", "Key Compromise", x509.ReasonFlags.key_compromise),
    "cACompromise": ("cACompromise", "CA Compromise", x509.ReasonFlags.ca_compromise),
    "affiliationChanged": ("affiliationChanged", "Affiliation Changed", x509.ReasonFlags.affiliation_changed),
    "superseded": ("superseded", "Superseded", x509.ReasonFlags.superseded),
    "cessationOfOperation": ("cessationOfOperation", "Cessation Of Operation", x509.ReasonFlags.cessation_of_operation),
    "certificateHold": ("certificateHold", "Certificate Hold", x509.ReasonFlags.certificate_hold),
    "privilegeWithdrawn": ("(UNKNOWN)", "Privilege Withdrawn", x509.ReasonFlags.privilege_withdrawn),
    "aACompromise": ("(UNKNOWN)", "AA Compromise", x509.ReasonFlags.aa_compromise),
}
CRL_TEXT_REASONS = {v[1] for v in REASONS.values()} | {"Remove From CRL"}

# ------------------------------------------------------------------------------------ fixtures


def fixed_port() -> int:
    """A free loopback port below the ephemeral range (port-0 binds elsewhere never take it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20001, low - 1))
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free fixed port")


@pytest.fixture(scope="session")
def rev_bin(tmp_path_factory) -> str:
    """A private copy of SIGIL_BIN (the lead rebuilds .build/debug/sigil: "Text file busy"); the
    CLI and the server are the same build."""
    src = sigil_bin()
    dst = tmp_path_factory.mktemp("rev-bin") / "sigil"
    p = None
    for _ in range(5):
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        p = run([dst, "--help"], timeout=60)
        if p.returncode == 0:
            return str(dst)
        time.sleep(2)
    raise AssertionError("the copied sigil binary does not run" + describe(p))


@dataclass
class Template:
    home: Path
    port: int
    admin_token: str


def serve_args(port: int, *extra) -> list:
    return ["--http-listen", f"127.0.0.1:{port}", "--http-public-url", f"http://127.0.0.1:{port}", *extra]


@pytest.fixture(scope="session")
def rev_template(rev_bin, tmp_path_factory) -> Template:
    """A SIGIL_HOME that one zero-config `sigil serve` created (root ec:P-384 + intermediate ec:P-256,
    admin token, generated ca-passphrase), its HTTP URLs pointing at a fixed loopback port."""
    d = tmp_path_factory.mktemp("rev-template")
    port = fixed_port()
    home = d / "home"
    home.mkdir()
    (home / "sigil.yaml").write_text(f"http_public_url: http://127.0.0.1:{port}\nhttp_listen: 127.0.0.1:{port}\n")
    s = SigilServer(rev_bin, home, *serve_args(port), logdir=d)
    try:
        s.start()
        token = s.admin_token
        assert token, "no admin token on the first start" + s.describe()
    finally:
        rc = s.stop()
    assert rc == 0, f"the template server exited {rc}" + s.describe()
    return Template(home, port, token)


@dataclass
class Leaf:
    name: str
    path: Path
    key: Path
    serial: str  # lower-case hex as the API returns it
    cert: x509.Certificate


class Rig:
    """One test's SIGIL_HOME copy, its server, and helpers to issue / revoke / ask OCSP / fetch CRLs."""

    def __init__(self, binary: str, tpl: Template, work: Path):
        self.binary = binary
        self.work = work
        self.home = copy_home(tpl.home, work / "home")
        self.port = tpl.port
        self.token = tpl.admin_token
        self.server: Optional[SigilServer] = None
        self.servers: list[SigilServer] = []
        self.api: Optional[API] = None
        self.files = work / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.leaves: dict[str, Leaf] = {}
        self._n = 0

    # --- server -----------------------------------------------------------------------------
    def start(self, *extra) -> SigilServer:
        s = SigilServer(self.binary, self.home, *serve_args(self.port, *extra), logdir=self.work / "logs")
        self.servers.append(s)
        self.server = s.start()
        self.api = s.session(self.token)
        if not (self.files / "root.pem").exists():
            self._write_ca_files()
        return s

    def stop(self) -> None:
        if self.server is not None:
            rc = self.server.stop()
            assert rc == 0, f"sigil serve exited {rc} on SIGTERM" + self.server.describe()
            self.server = None

    def _write_ca_files(self) -> None:
        for name in ("root", "intermediate"):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            c.request("GET", f"/ca/{name}.crt")
            r = c.getresponse()
            der = r.read()
            c.close()
            assert r.status == 200, f"GET /ca/{name}.crt -> {r.status}"
            (self.files / f"{name}.pem").write_text(to_pem("CERTIFICATE", der))
        # The root served over HTTP is the one `sigil serve` wrote for clients.
        assert cert_of((self.files / "root.pem").read_text()) == cert_of((self.home / "root.pem").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def root_pem(self) -> Path:
        return self.files / "root.pem"

    @property
    def int_pem(self) -> Path:
        return self.files / "intermediate.pem"

    @property
    def root_cert(self) -> x509.Certificate:
        return cert_of(self.root_pem.read_text())

    @property
    def int_cert(self) -> x509.Certificate:
        return cert_of(self.int_pem.read_text())

    # --- certificates -----------------------------------------------------------------------
    def issue(self, name: str) -> Leaf:
        host = f"{name}.example.com"
        key, csr = openssl_csr(self.files / "csr", name, host, [f"DNS:{host}"])
        d = expect_json(self.api.post("/api/v1/certificates", json={"csr": csr, "profile": "tls-server"}), 201)
        path = self.files / f"{name}.pem"
        path.write_text(d["certificate"])
        leaf = Leaf(name, path, key, d["serial"].lower(), cert_of(d["certificate"]))
        assert leaf.cert.serial_number == int(leaf.serial, 16)
        self.leaves[name] = leaf
        return leaf

    def revoke_api(self, leaf: Leaf, reason: str, invalidity: Optional[str] = None) -> dict:
        body = {"reason": reason}
        if invalidity:
            body["invalidity_date"] = invalidity
        return expect_json(self.api.post(f"/api/v1/certificates/{leaf.serial}/revoke", json=body), 200)

    def cli(self, *args, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env["SIGIL_HOME"] = str(self.home)
        return subprocess.run([self.binary, *map(str, args)], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def cli_ok(self, *args) -> subprocess.CompletedProcess:
        p = self.cli(*args)
        assert p.returncode == 0, describe(p)
        return p

    def revoke_cli(self, leaf: Leaf, reason: str, *extra, passphrase: bool = True) -> subprocess.CompletedProcess:
        args = ["cert", "revoke", leaf.serial, "--reason", reason, *extra]
        if passphrase:
            args += ["--passphrase-file", self.home / "ca-passphrase"]
        return self.cli_ok(*args)

    # --- OCSP -------------------------------------------------------------------------------
    def _name(self, stem: str) -> Path:
        self._n += 1
        return self.files / f"{self._n:03d}-{stem}"

    def openssl_ocsp(self, *certs: Leaf, issuer: Optional[Path] = None, nonce: bool = True, extra=(),
                     cafile: Optional[Path] = None) -> "OcspRun":
        """`openssl ocsp -issuer INT -cert A [-cert B...] -url .../ocsp -CAfile root` with the
        request and the response saved (-reqout / -respout)."""
        req, resp = self._name("req.der"), self._name("resp.der")
        args = ["openssl", "ocsp", "-issuer", issuer or self.int_pem]
        for c in certs:
            args += ["-cert", c.path]
        args += ["-url", f"{self.url}/ocsp", "-CAfile", cafile or self.root_pem, "-timeout", "30",
                 "-reqout", req, "-respout", resp, *extra]
        if not nonce:
            args.append("-no_nonce")
        p = run(args, timeout=120)
        return OcspRun(p, req, resp)


@dataclass
class OcspRun:
    proc: subprocess.CompletedProcess
    req: Path
    resp: Path

    @property
    def out(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def why(self) -> str:
        return describe(self.proc)

    def status(self, leaf: Leaf) -> tuple[Optional[str], Optional[str]]:
        """(good|revoked|unknown, reason or None) that openssl printed for this certificate."""
        m = re.search(rf"^{re.escape(str(leaf.path))}: (\w+)\s*$", self.proc.stdout, re.M)
        if not m:
            return None, None
        block = self.proc.stdout[m.end():]
        nxt = re.search(r"^\S.*: \w+\s*$", block, re.M)
        block = block[:nxt.start()] if nxt else block
        r = re.search(r"^\s*Reason: (\S+)", block, re.M)
        return m.group(1), (r.group(1) if r else None)

    def assert_verified(self) -> None:
        assert self.proc.returncode == 0, self.why()
        assert "Response verify OK" in self.out, self.why()
        assert "Verify Failure" not in self.out and "verify error" not in self.out.lower(), self.why()
        assert "WARNING" not in self.out and "Nonce Verify error" not in self.out, self.why()


@pytest.fixture
def rig(rev_bin, rev_template, tmp_path):
    r = Rig(rev_bin, rev_template, tmp_path)
    yield r
    for s in r.servers:
        s.stop(timeout=15)
    left = [s.pid for s in r.servers if s.alive()]
    assert not left, f"servers still running after teardown: {left}"


# ------------------------------------------------------------------------------------ judges


def verify_sig(pub, signature: bytes, data: bytes, hash_alg) -> None:
    """Raise InvalidSignature unless `signature` over `data` verifies with `pub`."""
    if isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(signature, data, ec.ECDSA(hash_alg))
    elif isinstance(pub, rsa.RSAPublicKey):
        pub.verify(signature, data, padding.PKCS1v15(), hash_alg)
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(signature, data)
    else:
        raise AssertionError(f"unexpected key type {type(pub)}")


def key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING contents (ResponderID byKey, CertID issuerKeyHash)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def nonce_of(exts: x509.Extensions) -> Optional[bytes]:
    for e in exts:
        if e.oid == x509.oid.OCSPExtensionOID.NONCE:
            return e.value.nonce
    return None


NONCE_OID_DER = bytes.fromhex("2b0601050507300102")  # 1.3.6.1.5.5.7.48.1.2


def raw_nonce(der: bytes, seq: "object", ext_tag: int) -> Optional[bytes]:
    """The nonce extension's extnValue (raw DER) in the [ext_tag] EXPLICIT Extensions of `seq`."""
    for c in children(der, seq):
        if c.tag != ext_tag:
            continue
        (exts,) = children(der, c)
        for ext in children(der, exts):
            parts = children(der, ext)
            if parts[0].tag == 0x06 and parts[0].value(der) == NONCE_OID_DER:
                return parts[-1].value(der)
    return None


def request_nonce_raw(req_der: bytes) -> Optional[bytes]:
    """From OCSPRequest.tbsRequest.requestExtensions [2] (a DER walk: cryptography cannot load a
    request with more than one certificate)."""
    tbs = children(req_der, tlv(req_der, 0))[0]
    return raw_nonce(req_der, tbs, 0xA2)


def response_nonce_raw(resp: ocsp.OCSPResponse) -> Optional[bytes]:
    """From ResponseData.responseExtensions [1]."""
    tbs = resp.tbs_response_bytes
    return raw_nonce(tbs, tlv(tbs, 0), 0xA1)


@dataclass
class Expect:
    serial: int
    status: str  # good | revoked | unknown
    reason: Optional[str] = None  # CLI reason name when revoked


CERT_STATUS = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
               "unknown": ocsp.OCSPCertStatus.UNKNOWN}


def judge_ocsp(resp_der: bytes, req_der: Optional[bytes], issuer: x509.Certificate, expected: list[Expect],
               mode: str = "ca") -> ocsp.OCSPResponse:
    """Python cryptography's reading of a successful OCSP response: statuses, reasons, nonce echo,
    the responder id and the signature (issuer key in CA mode; the included responder certificate,
    itself signed by the issuer, with EKU OCSPSigning and id-pkix-ocsp-nocheck, in delegated mode)."""
    resp = ocsp.load_der_ocsp_response(resp_der)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, resp.response_status
    singles = list(resp.responses)
    assert len(singles) == len(expected), f"{len(singles)} single responses for {len(expected)} certificates"
    by_serial = {s.serial_number: s for s in singles}
    now = dt.datetime.now(dt.timezone.utc)
    for e in expected:
        s = by_serial.get(e.serial)
        assert s is not None, f"no single response for serial {e.serial:x}"
        assert s.certificate_status == CERT_STATUS[e.status], (hex(e.serial), s.certificate_status, e.status)
        assert s.issuer_key_hash == key_hash(issuer) or s.hash_algorithm.name != "sha1"
        assert s.this_update_utc <= now + dt.timedelta(minutes=5), s.this_update_utc
        assert s.next_update_utc is not None and s.next_update_utc > now, s.next_update_utc
        if e.status == "revoked":
            assert s.revocation_time_utc is not None and s.revocation_time_utc <= now + dt.timedelta(minutes=5)
            want = REASONS[e.reason][2]
            if e.reason == "unspecified":
                assert s.revocation_reason in (None, want), s.revocation_reason
            else:
                assert s.revocation_reason == want, (hex(e.serial), s.revocation_reason, e.reason)
        else:
            assert s.revocation_reason is None and s.revocation_time_utc is None
    # nonce: echoed exactly when the request had one
    if req_der is not None:
        req_nonce = request_nonce_raw(req_der)
        resp_nonce = response_nonce_raw(resp)
        assert resp_nonce == req_nonce, f"nonce: request {req_nonce!r}, response {resp_nonce!r}"
        if len(expected) == 1:  # cryptography's own reading agrees
            assert nonce_of(resp.extensions) == nonce_of(ocsp.load_der_ocsp_request(req_der).extensions)
    # the signer
    if mode == "ca":
        signer = issuer
        assert list(resp.certificates) == [] or all(c == issuer for c in resp.certificates), resp.certificates
    else:
        assert len(resp.certificates) >= 1, "delegated response without the responder certificate"
        signer = resp.certificates[0]
        assert signer.issuer == issuer.subject, signer.issuer
        verify_sig(issuer.public_key(), signer.signature, signer.tbs_certificate_bytes, signer.signature_hash_algorithm)
        eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.OCSP_SIGNING in list(eku), list(eku)
        assert signer.extensions.get_extension_for_oid(OCSP_NOCHECK_OID) is not None
        assert signer.not_valid_before_utc <= now <= signer.not_valid_after_utc
    if resp.responder_key_hash is not None:
        assert resp.responder_key_hash == key_hash(signer), "responder id (byKey) is not the signer's key"
    else:
        assert resp.responder_name == signer.subject, resp.responder_name
    verify_sig(signer.public_key(), resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)
    return resp


def judge_crl(der: bytes, issuer: x509.Certificate) -> x509.CertificateRevocationList:
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(issuer.public_key()), "CRL signature does not verify with the issuer's key"
    assert crl.issuer == issuer.subject
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest, "CRL AKI is not the issuer's SKI"
    crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert crl.next_update_utc is not None and crl.next_update_utc > crl.last_update_utc
    now = dt.datetime.now(dt.timezone.utc)
    assert crl.last_update_utc <= now + dt.timedelta(minutes=5) and crl.next_update_utc > now
    # A bit flipped inside the signature BIT STRING must break the signature (not the parser).
    outer = tlv(der, 0)
    _tbs, _alg, sig = children(der, outer)
    assert sig.tag == 0x03
    bad = bytearray(der)
    bad[sig.end - 3] ^= 0x01
    try:
        tampered = x509.load_der_x509_crl(bytes(bad))
        assert not tampered.is_signature_valid(issuer.public_key()), "a tampered CRL signature verifies"
    except ValueError:
        pass  # an ECDSA signature whose INTEGER broke: still rejected
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def crl_entry(crl: x509.CertificateRevocationList, leaf: Leaf):
    return crl.get_revoked_certificate_by_serial_number(leaf.cert.serial_number)


def entry_reason(entry) -> Optional[x509.ReasonFlags]:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def entry_invalidity(entry) -> Optional[dt.datetime]:
    try:
        return entry.extensions.get_extension_for_class(x509.InvalidityDate).value.invalidity_date_utc
    except x509.ExtensionNotFound:
        return None


def http_get(port: int, path: str, headers: Optional[dict] = None, timeout: float = 30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def http_post(port: int, path: str, body: bytes, ctype: str = "application/ocsp-request", timeout: float = 30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": ctype})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def fetch_crl(rig: Rig, issuer: str = "intermediate") -> bytes:
    status, headers, body = http_get(rig.port, f"/crl/{issuer}.crl")
    assert status == 200, (status, headers, body[:300])
    assert headers.get("content-type") == "application/pkix-crl", headers
    return body


def openssl_crl_text(der_file: Path, issuer_pem: Path) -> tuple[str, subprocess.CompletedProcess]:
    p = run(["openssl", "crl", "-inform", "DER", "-in", der_file, "-noout", "-text", "-CAfile", issuer_pem])
    return p.stdout + p.stderr, p


def parse_crl_text(text: str) -> dict[str, dict]:
    """serial (lower hex) -> {'reason': text or None, 'invalidity': text or None} from `openssl crl -text`."""
    entries: dict[str, dict] = {}
    cur = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        m = re.match(r"^Serial Number: ([0-9A-Fa-f]+)$", s)
        if m:
            cur = entries.setdefault(m.group(1).lower().lstrip("0") or "0", {"reason": None, "invalidity": None})
            continue
        if cur is None:
            continue
        if s.startswith("Signature Algorithm"):
            cur = None
        elif s == "X509v3 CRL Reason Code:" and i + 1 < len(lines):
            cur["reason"] = lines[i + 1].strip()
        elif s == "Invalidity Date:" and i + 1 < len(lines):
            cur["invalidity"] = lines[i + 1].strip()
    return entries


def openssl_verify_crl(rig: Rig, leaf: Path, crl_pem: Path, check_all: bool = False) -> tuple[int, str]:
    args = ["openssl", "verify", "-crl_check_all" if check_all else "-crl_check", "-CAfile", rig.root_pem,
            "-untrusted", rig.int_pem, "-CRLfile", crl_pem, leaf]
    p = run(args)
    return p.returncode, f"$ {' '.join(map(str, args))}\nexit {p.returncode}\n{(p.stdout + p.stderr).strip()}"


def assert_verify_ok(rc: int, out: str, leaf: Path) -> None:
    assert rc == 0 and out.splitlines()[-1] == f"{leaf}: OK", out
    assert "different CRL scope" not in out and "unable to get certificate CRL" not in out, out


def assert_verify_revoked(rc: int, out: str) -> None:
    assert rc != 0, out
    assert "error 23" in out and "certificate revoked" in out, out
    assert "different CRL scope" not in out and "unable to get certificate CRL" not in out, out


def der_to_pem_crl(der: bytes, path: Path) -> Path:
    path.write_text(to_pem("X509 CRL", der))
    return path


# ------------------------------------------------------------------------------------ 1. OCSP


def test_ocsp_good_then_revoked_via_api(rig):
    rig.start()
    leaf = rig.issue("ocsp-api")

    for nonce in (True, False):
        r = rig.openssl_ocsp(leaf, nonce=nonce)
        r.assert_verified()
        assert r.status(leaf) == ("good", None), r.why()
        judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert, [Expect(leaf.cert.serial_number, "good")])
        if nonce:
            assert nonce_of(ocsp.load_der_ocsp_request(r.req.read_bytes()).extensions), "openssl sent no nonce?"
            assert "OCSP Nonce" in run(["openssl", "ocsp", "-respin", r.resp, "-resp_text", "-noverify"]).stdout

    d = rig.revoke_api(leaf, "keyCompromise")
    assert d.get("status") == "revoked", d

    for nonce in (True, False):
        r = rig.openssl_ocsp(leaf, nonce=nonce)
        r.assert_verified()
        assert r.status(leaf) == ("revoked", "keyCompromise"), r.why()
        assert "Revocation Time:" in r.proc.stdout, r.why()
        resp = judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert,
                          [Expect(leaf.cert.serial_number, "revoked", "keyCompromise")])

    # One revocation time everywhere: the API's record, OCSP, the CRL entry.
    api_time = dt.datetime.fromisoformat(d["revoked_at"].replace("Z", "+00:00"))
    crl = judge_crl(fetch_crl(rig), rig.int_cert)
    entry = crl_entry(crl, leaf)
    assert entry is not None and entry_reason(entry) == x509.ReasonFlags.key_compromise
    assert resp.revocation_time_utc == entry.revocation_date_utc == api_time.replace(microsecond=0), \
        (resp.revocation_time_utc, entry.revocation_date_utc, d["revoked_at"])

    # The server's own responses for the no-nonce case are cacheable (RFC 5019), nonce ones are not.
    req = r.req.read_bytes()  # last one: no nonce
    status, headers, body = http_post(rig.port, "/ocsp", req)
    assert status == 200 and headers.get("content-type") == "application/ocsp-response", headers
    assert "max-age=" in headers.get("cache-control", ""), headers
    judge_ocsp(body, req, rig.int_cert, [Expect(leaf.cert.serial_number, "revoked", "keyCompromise")])


def test_ocsp_every_reason_via_cli_and_many_certs_in_one_request(rig):
    rig.start()
    leaves = {reason: rig.issue(f"r-{reason.lower()}") for reason in REASONS}
    good = rig.issue("still-good")

    # The CLI revokes while the server runs: half with the passphrase (CRL rebuilt at once), half
    # without (CRL marked stale); both must show in OCSP at once.
    for i, (reason, leaf) in enumerate(leaves.items()):
        rig.revoke_cli(leaf, reason, passphrase=(i % 2 == 0))

    for reason, leaf in leaves.items():
        r = rig.openssl_ocsp(leaf)
        r.assert_verified()
        st, why = r.status(leaf)
        assert st == "revoked", r.why()
        if reason == "unspecified":
            assert why in (None, "unspecified"), r.why()
        else:
            assert why == REASONS[reason][0], r.why()
            code = f"(0x{REASON_CODES[reason]:x})"
            t = run(["openssl", "ocsp", "-respin", r.resp, "-resp_text", "-noverify"]).stdout
            assert re.search(rf"Revocation Reason: .*{re.escape(code)}", t), (reason, t)
        judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert,
                   [Expect(leaf.cert.serial_number, "revoked", reason)])

    # Several certificates in one request: every status, in one signed response.
    picked = [leaves["keyCompromise"], good, leaves["certificateHold"], leaves["superseded"]]
    r = rig.openssl_ocsp(*picked)
    r.assert_verified()
    assert r.status(picked[0]) == ("revoked", "keyCompromise"), r.why()
    assert r.status(good) == ("good", None), r.why()
    assert r.status(picked[2]) == ("revoked", "certificateHold"), r.why()
    assert r.status(picked[3]) == ("revoked", "superseded"), r.why()
    judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert, [
        Expect(picked[0].cert.serial_number, "revoked", "keyCompromise"),
        Expect(good.cert.serial_number, "good"),
        Expect(picked[2].cert.serial_number, "revoked", "certificateHold"),
        Expect(picked[3].cert.serial_number, "revoked", "superseded"),
    ])

    # Revoking twice fails (exit 1) and changes nothing.
    p = rig.cli("cert", "revoke", leaves["superseded"].serial, "--reason", "keyCompromise")
    assert p.returncode == 1, describe(p)
    r = rig.openssl_ocsp(leaves["superseded"])
    assert r.status(leaves["superseded"]) == ("revoked", "superseded"), r.why()


def test_ocsp_get_form(rig):
    rig.start()
    leaf = rig.issue("ocsp-get")
    rig.revoke_api(leaf, "superseded")
    good = rig.issue("ocsp-get-good")

    for target, want in ((leaf, ("revoked", "superseded")), (good, ("good", None))):
        for nonce in (False, True):
            req = rig.files / f"get-{target.name}-{nonce}.der"
            args = ["openssl", "ocsp", "-issuer", rig.int_pem, "-cert", target.path, "-reqout", req]
            if not nonce:
                args.append("-no_nonce")
            p = run(args)
            assert p.returncode == 0 and req.stat().st_size > 0, describe(p)
            b64 = base64.b64encode(req.read_bytes()).decode()
            # RFC 6960 A.1: url-encoding of the base64 of the DER request; also the raw base64 form
            # that many clients send ('/' and '+' left as they are).
            for path in (f"/ocsp/{urllib.parse.quote(b64, safe='')}", f"/ocsp/{b64}"):
                status, headers, body = http_get(rig.port, path)
                assert status == 200 and headers.get("content-type") == "application/ocsp-response", \
                    (path, status, headers, body[:200])
                resp = rig.files / f"get-{target.name}-{nonce}.resp.der"
                resp.write_bytes(body)
                judge_ocsp(body, req.read_bytes(), rig.int_cert,
                           [Expect(target.cert.serial_number, want[0], want[1])])
                p = run(["openssl", "ocsp", "-respin", resp, "-issuer", rig.int_pem, "-cert", target.path,
                         "-CAfile", rig.root_pem, "-no_nonce"])
                out = p.stdout + p.stderr
                assert p.returncode == 0 and "Response verify OK" in out, (path, describe(p))
                m = re.search(rf"^{re.escape(str(target.path))}: (\w+)", p.stdout, re.M)
                assert m and m.group(1) == want[0], (path, describe(p))
                if want[1]:
                    assert f"Reason: {want[1]}" in p.stdout, (path, describe(p))
                if not nonce:
                    assert "max-age=" in headers.get("cache-control", ""), headers


def test_ocsp_ca_mode_root_answers_for_the_intermediate(rig):
    """CA mode: the issuing CA signs; for the intermediate that is the root."""
    rig.start()
    inter = Leaf("intermediate", rig.int_pem, rig.int_pem, format(rig.int_cert.serial_number, "x"), rig.int_cert)
    r = rig.openssl_ocsp(inter, issuer=rig.root_pem)
    r.assert_verified()
    assert r.status(inter) == ("good", None), r.why()
    judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.root_cert, [Expect(rig.int_cert.serial_number, "good")])


def test_ocsp_delegated_signer(rig):
    rig.start("--ocsp-signer", "delegated")
    leaf = rig.issue("deleg")
    good = rig.issue("deleg-good")

    r = rig.openssl_ocsp(leaf)
    r.assert_verified()
    assert r.status(leaf) == ("good", None), r.why()
    resp = judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert,
                      [Expect(leaf.cert.serial_number, "good")], mode="delegated")
    responder = resp.certificates[0]
    assert responder.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
        rig.int_cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    rig.revoke_cli(leaf, "cessationOfOperation")
    for nonce in (True, False):
        r = rig.openssl_ocsp(leaf, good, nonce=nonce)
        r.assert_verified()
        assert r.status(leaf) == ("revoked", "cessationOfOperation"), r.why()
        assert r.status(good) == ("good", None), r.why()
        judge_ocsp(r.resp.read_bytes(), r.req.read_bytes(), rig.int_cert, [
            Expect(leaf.cert.serial_number, "revoked", "cessationOfOperation"),
            Expect(good.cert.serial_number, "good")], mode="delegated")

    # The responder certificate alone (as a peer would trust it by -VAfile) also verifies.
    va = rig.files / "responder.pem"
    va.write_text(resp.certificates[0].public_bytes(serialization.Encoding.PEM).decode())
    r = rig.openssl_ocsp(leaf, extra=("-VAfile", va))
    r.assert_verified()


def test_ocsp_unknown_issuer_and_unknown_serial(rig, tmp_path):
    rig.start()
    # A CA sigil knows nothing about, and a certificate it issued.
    o = tmp_path / "other"
    o.mkdir()
    p = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", o / "ca.key", "-out", o / "ca.pem", "-subj", "/CN=Other CA", "-days", "30",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    assert p.returncode == 0, describe(p)
    p = run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", o / "leaf.key", "-out", o / "leaf.csr", "-subj", "/CN=other.example.com"])
    assert p.returncode == 0, describe(p)
    p = run(["openssl", "x509", "-req", "-in", o / "leaf.csr", "-CA", o / "ca.pem", "-CAkey", o / "ca.key",
             "-set_serial", "0x1234", "-days", "10", "-out", o / "leaf.pem"])
    assert p.returncode == 0, describe(p)
    other = Leaf("other", o / "leaf.pem", o / "leaf.key", "1234", cert_of((o / "leaf.pem").read_text()))

    r = rig.openssl_ocsp(other, issuer=o / "ca.pem", cafile=o / "ca.pem")
    assert "Responder Error: unauthorized (6)" in r.out, r.why()
    assert ocsp.load_der_ocsp_response(r.resp.read_bytes()).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    # A serial the intermediate never issued: "unknown", signed.
    req = rig.files / "unknown.req"
    resp = rig.files / "unknown.resp"
    p = run(["openssl", "ocsp", "-issuer", rig.int_pem, "-serial", "0xDEADBEEF0123456789", "-url", f"{rig.url}/ocsp",
             "-CAfile", rig.root_pem, "-reqout", req, "-respout", resp, "-timeout", "30"])
    out = p.stdout + p.stderr
    assert p.returncode == 0 and "Response verify OK" in out, describe(p)
    assert re.search(r"^0xDEADBEEF0123456789: unknown", p.stdout, re.M), describe(p)
    judge_ocsp(resp.read_bytes(), req.read_bytes(), rig.int_cert, [Expect(0xDEADBEEF0123456789, "unknown")])


def test_ocsp_malformed_requests(rig):
    rig.start()
    leaf = rig.issue("malformed-probe")
    good_req = rig.files / "good.req"
    p = run(["openssl", "ocsp", "-issuer", rig.int_pem, "-cert", leaf.path, "-no_nonce", "-reqout", good_req])
    assert p.returncode == 0, describe(p)
    valid = good_req.read_bytes()

    bad_bodies = {
        "garbage": b"this is not an OCSP request \x00\x01\x02" * 10,
        "random DER-ish": bytes([0x30, 0x82, 0xFF, 0xFF]) + os.urandom(200),
        "truncated": valid[: len(valid) // 2],
        "trailing junk": valid + b"\x00\x00junk",
        "empty": b"",
        "a certificate": leaf.cert.public_bytes(serialization.Encoding.DER),
    }
    for what, body in bad_bodies.items():
        t0 = time.monotonic()
        status, headers, resp = http_post(rig.port, "/ocsp", body)
        assert time.monotonic() - t0 < 10, what
        assert status == 200, (what, status, resp[:200])
        assert headers.get("content-type") == "application/ocsp-response", (what, headers)
        parsed = ocsp.load_der_ocsp_response(resp)
        assert parsed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, (what, parsed.response_status)
        assert "max-age" not in headers.get("cache-control", ""), (what, headers)
    for path in ("/ocsp/%%%notbase64", "/ocsp/" + base64.b64encode(b"garbage garbage").decode(), "/ocsp/AAAA"):
        status, headers, resp = http_get(rig.port, path)
        assert status == 200, (path, status, resp[:200])
        assert ocsp.load_der_ocsp_response(resp).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST, path

    # Still healthy: a real request answers, and the process is alive.
    assert rig.server.alive(), rig.server.describe()
    status, _h, resp = http_post(rig.port, "/ocsp", valid)
    assert status == 200
    judge_ocsp(resp, valid, rig.int_cert, [Expect(leaf.cert.serial_number, "good")])
    r = rig.openssl_ocsp(leaf)
    r.assert_verified()
    assert r.status(leaf) == ("good", None), r.why()


# ------------------------------------------------------------------------------------ 2./3. CRLs


def test_crl_openssl_text_reasons_invalidity_and_python(rig):
    rig.start()
    inv = "2026-11-01T10:00:00Z"
    leaves = {reason: rig.issue(f"crl-{reason.lower()}") for reason in REASONS}
    good = rig.issue("crl-good")
    for i, (reason, leaf) in enumerate(leaves.items()):
        if i % 2:
            rig.revoke_api(leaf, reason, invalidity=inv if reason == "keyCompromise" else None)
        else:
            extra = ("--invalidity-date", inv) if reason in ("superseded", "cACompromise") else ()
            rig.revoke_cli(leaf, reason, *extra)

    for source in ("http", "cli"):
        f = rig.files / f"crl-{source}.der"
        if source == "http":
            f.write_bytes(fetch_crl(rig))
        else:
            rig.cli_ok("crl", "generate", "--issuer", "intermediate", "--out", f, "--format", "der",
                       "--passphrase-file", rig.home / "ca-passphrase")
        text, p = openssl_crl_text(f, rig.int_pem)
        assert p.returncode == 0 and "verify OK" in text and "verify failure" not in text.lower(), describe(p)
        assert "Version 2" in text, text[:2000]
        entries = parse_crl_text(text)
        for reason, leaf in leaves.items():
            e = entries.get(leaf.serial.lstrip("0"))
            assert e is not None, f"{source}: {reason} leaf {leaf.serial} not on the CRL\n{text[:4000]}"
            if reason == "unspecified":
                assert e["reason"] in (None, "Unspecified"), (source, e)
            else:
                assert e["reason"] == REASONS[reason][1], (source, reason, e)
            if reason in ("keyCompromise", "superseded", "cACompromise"):
                assert e["invalidity"] == "Nov  1 10:00:00 2026 GMT", (source, reason, e)
            else:
                assert e["invalidity"] is None, (source, reason, e)
        assert good.serial.lstrip("0") not in entries, f"{source}: the good leaf is on the CRL"

        crl = judge_crl(f.read_bytes(), rig.int_cert)
        assert len(crl) == len(leaves), (source, len(crl))
        for reason, leaf in leaves.items():
            e = crl_entry(crl, leaf)
            assert e is not None, (source, reason)
            want = REASONS[reason][2]
            got = entry_reason(e)
            assert got == want or (reason == "unspecified" and got is None), (source, reason, got)
            if reason in ("keyCompromise", "superseded", "cACompromise"):
                assert entry_invalidity(e) == dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.timezone.utc), (source, reason)
            assert e.revocation_date_utc <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
        assert crl_entry(crl, good) is None

    # sigil crl show, given the issuer: its own reading agrees on the count (informative, not the judge).
    p = rig.cli("crl", "show", rig.files / "crl-cli.der", "--issuer-cert", rig.int_pem, "--json")
    assert p.returncode == 0, describe(p)

    # PEM output of crl generate reads the same in openssl
    pem = rig.files / "crl.pem"
    rig.cli_ok("crl", "generate", "--out", pem, "--format", "pem", "--passphrase-file", rig.home / "ca-passphrase")
    p = run(["openssl", "crl", "-in", pem, "-noout", "-CAfile", rig.int_pem])
    assert p.returncode == 0 and "verify OK" in p.stdout + p.stderr, describe(p)


def test_crl_http_caching_and_numbers_across_revocations_and_restart(rig):
    rig.start()
    a, b, c = rig.issue("num-a"), rig.issue("num-b"), rig.issue("num-c")
    numbers = []

    def current() -> tuple[int, str]:
        status, headers, body = http_get(rig.port, "/crl/intermediate.crl")
        assert status == 200 and headers.get("content-type") == "application/pkix-crl", (status, headers)
        for h in ("etag", "last-modified", "cache-control", "expires"):
            assert h in headers, (h, headers)
        crl = judge_crl(body, rig.int_cert)
        numbers.append(crl_number(crl))
        return crl_number(crl), headers["etag"]

    n0, etag0 = current()
    # conditional GET
    status, headers, body = http_get(rig.port, "/crl/intermediate.crl", {"If-None-Match": etag0})
    assert status == 304 and body == b"", (status, headers)
    # root CRL too
    root_crl = judge_crl(fetch_crl(rig, "root"), rig.root_cert)
    assert rig.int_cert.serial_number not in {e.serial_number for e in root_crl}

    rig.revoke_api(a, "keyCompromise")
    n1, etag1 = current()
    assert n1 > n0 and etag1 != etag0, numbers
    status, _h, _b = http_get(rig.port, "/crl/intermediate.crl", {"If-None-Match": etag0})
    assert status == 200, "a stale ETag got 304"

    rig.revoke_cli(b, "superseded", passphrase=False)  # CRL marked stale; the server rebuilds on read
    n2, _ = current()
    assert n2 > n1, numbers
    crl = x509.load_der_x509_crl(fetch_crl(rig))
    assert crl_entry(crl, b) is not None, "the stale-marked CRL was served without the new entry"

    # `sigil crl generate` (CLI, server running) takes the next number; the server never goes back.
    out = rig.files / "gen.der"
    rig.cli_ok("crl", "generate", "--out", out, "--passphrase-file", rig.home / "ca-passphrase")
    n_cli = crl_number(judge_crl(out.read_bytes(), rig.int_cert))
    assert n_cli > n2, (n_cli, numbers)
    n3, _ = current()
    assert n3 >= n_cli, f"the server served CRL number {n3} after the CLI issued {n_cli}: {numbers}"

    rig.stop()
    rig.start()
    n4, _ = current()
    assert n4 >= n3, numbers
    rig.revoke_api(c, "affiliationChanged")
    n5, _ = current()
    assert n5 > n4, numbers
    crl = x509.load_der_x509_crl(fetch_crl(rig))
    assert {e.serial_number for e in crl} >= {a.cert.serial_number, b.cert.serial_number, c.cert.serial_number}


def test_openssl_verify_crl_check(rig):
    rig.start()
    bad = rig.issue("verify-revoked")
    good = rig.issue("verify-good")
    held = rig.issue("verify-held")
    rig.revoke_api(bad, "keyCompromise")
    rig.revoke_cli(held, "certificateHold")

    int_crl = der_to_pem_crl(fetch_crl(rig), rig.files / "int-crl.pem")
    root_crl = der_to_pem_crl(fetch_crl(rig, "root"), rig.files / "root-crl.pem")
    both = rig.files / "both-crl.pem"
    both.write_text(int_crl.read_text() + root_crl.read_text())

    for check_all, crlfile in ((False, int_crl), (True, both)):
        assert_verify_revoked(*openssl_verify_crl(rig, bad.path, crlfile, check_all))
        assert_verify_revoked(*openssl_verify_crl(rig, held.path, crlfile, check_all))
        rc, out = openssl_verify_crl(rig, good.path, crlfile, check_all)
        assert_verify_ok(rc, out, good.path)
    # -crl_check_all without the root's CRL must fail (the check is real).
    rc, out = openssl_verify_crl(rig, good.path, int_crl, True)
    assert rc != 0 and "unable to get certificate CRL" in out, out

    # Release the hold: off the next CRL, accepted again, OCSP good.
    rig.revoke_cli(held, "removeFromCRL")
    int_crl2 = der_to_pem_crl(fetch_crl(rig), rig.files / "int-crl2.pem")
    both.write_text(int_crl2.read_text() + root_crl.read_text())
    for check_all, crlfile in ((False, int_crl2), (True, both)):
        rc, out = openssl_verify_crl(rig, held.path, crlfile, check_all)
        assert_verify_ok(rc, out, held.path)
        assert_verify_revoked(*openssl_verify_crl(rig, bad.path, crlfile, check_all))
    crl = judge_crl(fetch_crl(rig), rig.int_cert)
    assert crl_entry(crl, held) is None and crl_entry(crl, bad) is not None
    r = rig.openssl_ocsp(held)
    r.assert_verified()
    assert r.status(held) == ("good", None), r.why()
    # A released certificate is not "revoked" any more: revoking it again works.
    rig.revoke_api(held, "superseded")
    r = rig.openssl_ocsp(held)
    assert r.status(held) == ("revoked", "superseded"), r.why()

    # Releasing a certificate that is not on hold is refused.
    p = rig.cli("cert", "revoke", bad.serial, "--reason", "removeFromCRL")
    assert p.returncode == 1, describe(p)

    # A revoked intermediate on the root's CRL: -crl_check_all rejects even a good leaf (depth 1).
    # (Done last: it changes the hierarchy.)
    rig.cli_ok("cert", "revoke", format(rig.int_cert.serial_number, "x"), "--reason", "cACompromise",
               "--passphrase-file", rig.home / "ca-passphrase")
    root_crl2 = judge_crl(fetch_crl(rig, "root"), rig.root_cert)
    assert crl_entry(root_crl2, Leaf("int", rig.int_pem, rig.int_pem, "", rig.int_cert)) is not None
    both.write_text(int_crl2.read_text() + to_pem("X509 CRL", root_crl2.public_bytes(serialization.Encoding.DER)))
    rc, out = openssl_verify_crl(rig, good.path, both, True)
    assert rc != 0 and "error 23 at 1 depth" in out, out


# ------------------------------------------------------------------------------------ 4. robustness


def test_idle_half_open_and_empty_connections_do_not_stall_ocsp(rig):
    rig.start()
    leaf = rig.issue("robust")
    req_file = rig.files / "robust.req"
    p = run(["openssl", "ocsp", "-issuer", rig.int_pem, "-cert", leaf.path, "-reqout", req_file])
    assert p.returncode == 0, describe(p)
    req = req_file.read_bytes()

    def timed_ocsp(label: str, n: int = 10) -> list[float]:
        took = []
        for i in range(n):
            t0 = time.monotonic()
            status, _h, body = http_post(rig.port, "/ocsp", req, timeout=20)
            dt_s = time.monotonic() - t0
            assert status == 200, (label, i, status)
            judge_ocsp(body, req, rig.int_cert, [Expect(leaf.cert.serial_number, "good")])
            took.append(dt_s)
        assert max(took) < OCSP_BOUND_S, f"{label}: slowest OCSP answer {max(took):.3f} s: {took}"
        return took

    timed_ocsp("before")
    held: list[socket.socket] = []
    try:
        for _ in range(5):  # idle: connected, nothing sent
            held.append(socket.create_connection(("127.0.0.1", rig.port), timeout=5))
        for i in range(5):  # half-open: half a request, then silence
            s = socket.create_connection(("127.0.0.1", rig.port), timeout=5)
            if i % 2:
                s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                          + f"Content-Length: {len(req)}\r\n\r\n".encode() + req[: len(req) // 2])
            else:
                s.sendall(b"POST /ocsp HTTP/1.1\r\nHost: 127.0")
            held.append(s)
        for _ in range(20):  # empty: connect and close at once (this kills `openssl ocsp` 3.0)
            socket.create_connection(("127.0.0.1", rig.port), timeout=5).close()
        s = socket.create_connection(("127.0.0.1", rig.port), timeout=5)  # reset without a word
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        timed_ocsp("during")
        # openssl as a client too, while they are held
        r = rig.openssl_ocsp(leaf)
        r.assert_verified()
    finally:
        for s in held:
            s.close()
    timed_ocsp("after")
    for _ in range(20):
        socket.create_connection(("127.0.0.1", rig.port), timeout=5).close()
    timed_ocsp("after more empty connections")
    assert rig.server.alive(), rig.server.describe()
    status, _h, body = http_get(rig.port, "/healthz", timeout=30)
    assert status == 200, body


def test_idle_connections_are_closed_by_the_server(tmp_path):
    """An idle TCP connection to the relying-party listener is closed after the idle timeout
    (30 s), so silent clients cannot pile up until file descriptors run out."""
    import re as _re
    import socket as _socket
    import subprocess as _subprocess
    import time as _time
    from interop_helpers import sigil_bin as _bin

    env = {**os.environ, "SIGIL_HOME": str(tmp_path / "home")}
    server = _subprocess.Popen([_bin(), "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"], env=env,
                               stdout=_subprocess.PIPE, stderr=_subprocess.DEVNULL, text=True)
    try:
        port = None
        deadline = _time.monotonic() + 120
        while port is None and _time.monotonic() < deadline:
            line = server.stdout.readline()
            match = _re.search(r"and http://127\.0\.0\.1:(\d+)", line)
            if match:
                port = int(match.group(1))
        assert port, "the server did not report its ports"
        # Timed from before the connect: the server's idle timer cannot start earlier, so a slow
        # connect on a loaded machine only lengthens the measured wait (the upper bound is loose).
        started = _time.monotonic()
        idle = _socket.create_connection(("127.0.0.1", port), timeout=60)
        idle.settimeout(60)
        assert idle.recv(1) == b"", "the server sent data on an idle connection"
        waited = _time.monotonic() - started
        assert 29 <= waited <= 50, f"closed after {waited:.1f} s"
    finally:
        server.terminate()
        server.wait(timeout=30)
