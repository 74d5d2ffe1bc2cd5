"""Helpers for the CA interop tests (issue 3): a throwaway SIGIL_HOME per test, profile inputs,
and peer-side checks of issued certificates (openssl 3.0, Python cryptography 50, dilithium-py).

Nothing here trusts sigil's own word about what it wrote: every certificate is read back from the
file and judged by a peer.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65, ML_DSA_87

from interop_helpers import PASSPHRASE, describe, openssl, pem_blocks, run, sigil_bin

PW_ENV = "SIGIL_TEST_CA_PASSPHRASE"
PUBLIC_URL = "http://pki.example.com"

# ------------------------------------------------------------------------------------ profiles

# Classical leaf key types each profile accepts (what the issue says the profiles allow).
CLASSICAL_LEAF = ["ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "rsa:3072", "ed25519"]
PROFILE_KEY_TYPES = {
    "tls-server": ["ec:P-256", "ec:P-384", "ec:P-521", "rsa:2048", "rsa:3072"],
    "tls-client": CLASSICAL_LEAF,
    "email": CLASSICAL_LEAF,
    "code-signing": ["ec:P-256", "ec:P-384", "ec:P-521", "rsa:3072"],
    "ocsp-signing": CLASSICAL_LEAF,
    "sub-ca": CLASSICAL_LEAF,
}
APPROVAL_PROFILES = {"code-signing", "sub-ca"}
ANY_PURPOSE = "any-purpose"
NON_TLS_PROFILES = {"email", "code-signing"}

# `sigil csr new` arguments (besides the key) for a CSR each profile accepts.
PROFILE_CSR_ARGS = {
    "tls-server": ["--cn", "www.example.com", "--san", "DNS:www.example.com", "--san", "DNS:api.example.com"],
    "tls-client": ["--cn", "device-01.example.com"],
    "email": ["--cn", "Alice Example", "--san", "email:alice@example.com"],
    "code-signing": ["--subject", "/C=US/O=Example Corp/CN=Example Code Signer"],
    "ocsp-signing": ["--subject", "/C=US/O=Example Corp/CN=Example OCSP Responder"],
    "sub-ca": ["--subject", "/C=US/O=Example Corp/CN=Example Sub CA"],
}

PROFILE_EKU = {
    "tls-server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "tls-client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "email": [ExtendedKeyUsageOID.EMAIL_PROTECTION],
    "code-signing": [ExtendedKeyUsageOID.CODE_SIGNING],
    "ocsp-signing": [ExtendedKeyUsageOID.OCSP_SIGNING],
    "sub-ca": None,  # no EKU extension
}
# How `openssl x509 -text` (3.0) prints the EKU line.
PROFILE_EKU_TEXT = {
    "tls-server": "TLS Web Server Authentication",
    "tls-client": "TLS Web Client Authentication",
    "email": "E-mail Protection",
    "code-signing": "Code Signing",
    "ocsp-signing": "OCSP Signing",
}
DV_POLICY = "2.23.140.1.2.1"
OCSP_NOCHECK_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")

# ------------------------------------------------------------------------------------ homes


class CAHome:
    """One SIGIL_HOME directory and the environment that points sigil at it."""

    def __init__(self, path: Path, public_url: Optional[str] = PUBLIC_URL, profiles: Optional[str] = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if public_url is not None or profiles is not None:
            self.write_config(public_url=public_url, profiles=profiles)

    def write_config(self, public_url: Optional[str] = PUBLIC_URL, profiles: Optional[str] = None) -> None:
        text = ""
        if public_url is not None:
            text += f"http_public_url: {public_url}\n"
        if profiles:
            text += profiles if profiles.endswith("\n") else profiles + "\n"
        (self.path / "sigil.yaml").write_text(text)

    @property
    def db(self) -> Path:
        return self.path / "sigil.db"

    @property
    def env(self) -> dict:
        return {"SIGIL_HOME": str(self.path), PW_ENV: PASSPHRASE}

    def run(self, *args, prefix: tuple = (), **kw) -> subprocess.CompletedProcess:
        env = dict(self.env)
        env.update(kw.pop("env", {}) or {})
        return run([*prefix, sigil_bin(), *args], env=env, **kw)

    def ok(self, *args, **kw) -> subprocess.CompletedProcess:
        p = self.run(*args, **kw)
        assert p.returncode == 0, describe(p)
        return p

    def json(self, *args, **kw):
        p = self.ok(*args, "--json", **kw)
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            raise AssertionError(f"stdout is not JSON ({e}){describe(p)}")

    # --- CA operations ------------------------------------------------------------------
    def init_root(self, *extra, prefix: tuple = ()) -> dict:
        return self.json("ca", "init", *extra, "--passphrase-env", PW_ENV, prefix=prefix)

    def init_intermediate(self, *extra, prefix: tuple = ()) -> dict:
        made = self.json("ca", "init", "--intermediate", *extra, "--passphrase-env", PW_ENV, prefix=prefix)
        if "--name" not in extra and "--eku" not in extra:
            # The default intermediate is a TLS CA (EKU serverAuth, clientAuth): relying parties
            # chain EKU, so Sigil refuses S/MIME and code-signing certificates from it. Those
            # profiles are issued from an intermediate without EKU restrictions (see `sign`).
            self.json("ca", "init", "--intermediate", "--name", ANY_PURPOSE, "--eku", "none",
                      "--subject", "/C=US/O=Sigil/CN=Sigil Any-Purpose CA", "--passphrase-env", PW_ENV, prefix=prefix)
        return made

    def ca_pem(self, name: str, out: Path) -> Path:
        out.write_text(self.ok("ca", "show", name, "--pem").stdout)
        return out

    def sign(self, csr: Path, *extra, **kw) -> subprocess.CompletedProcess:
        extra = tuple(str(e) for e in extra)
        if "--issuer" not in extra and "--profile" in extra and extra[extra.index("--profile") + 1] in NON_TLS_PROFILES \
                and (self.path / "sigil.db").exists() and ANY_PURPOSE in self.run("ca", "list").stdout:
            extra = (*extra, "--issuer", ANY_PURPOSE)
        return self.run("ca", "sign", csr, *extra, "--passphrase-env", PW_ENV, **kw)

    def approve(self, request_id: str, *extra) -> subprocess.CompletedProcess:
        return self.run("request", "approve", request_id, *extra, "--passphrase-env", PW_ENV)

    def issue(self, csr: Path, profile: str, out: Path, *extra) -> dict:
        """Issue a certificate to `out`; approval profiles go through `request approve`.
        Returns {'request_id': ..., 'serial': ...} (what is known)."""
        p = self.sign(csr, "--profile", profile, "--out", out, "--json", *extra)
        if profile in APPROVAL_PROFILES:
            assert p.returncode == 3, f"profile {profile} should wait for approval (exit 3)" + describe(p)
            assert not out.exists(), f"{out} written although the request is pending"
            data = json.loads(p.stdout)
            assert data.get("status") == "pending" and data.get("request_id"), describe(p)
            a = self.approve(data["request_id"], "--out", out)
            assert a.returncode == 0, describe(a)
            return {"request_id": data["request_id"]}
        assert p.returncode == 0, describe(p)
        data = json.loads(p.stdout)
        return {"request_id": data.get("request_id"), "serial": data.get("serial")}

    def cert_list(self, *filters) -> list:
        data = self.json("cert", "list", *filters)
        assert isinstance(data, list), data
        return data

    def audit_verify(self) -> tuple[int, dict, subprocess.CompletedProcess]:
        p = self.run("audit", "verify", "--json")
        try:
            data = json.loads(p.stdout)
        except ValueError:
            raise AssertionError("audit verify --json did not print JSON" + describe(p))
        return p.returncode, data, p

    def sql(self, query: str, params=()) -> list:
        con = sqlite3.connect(self.db)
        try:
            rows = con.execute(query, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()


def copy_home(src: CAHome, dst: Path) -> CAHome:
    shutil.copytree(src.path, dst)
    h = CAHome.__new__(CAHome)
    h.path = Path(dst)
    return h


# ------------------------------------------------------------------------------------ loading


def load_cert(path: Path) -> x509.Certificate:
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----"):
        blocks = [b for b in pem_blocks(data) if b[0] == "CERTIFICATE"]
        assert len(blocks) == 1, f"{path}: expected one CERTIFICATE block, got {len(blocks)}"
        return x509.load_der_x509_certificate(blocks[0][1])
    return x509.load_der_x509_certificate(data)


def load_certs(path: Path) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for label, der in pem_blocks(Path(path).read_bytes())
            if label == "CERTIFICATE"]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(cert: x509.Certificate, upper: bool = False) -> str:
    """The serial as `openssl x509 -serial` prints it: hex, whole octets (leading zero kept)."""
    h = format(cert.serial_number, "X" if upper else "x")
    return "0" + h if len(h) % 2 else h


def same_serial(a: str, b: str) -> bool:
    return int(a.replace(":", ""), 16) == int(b.replace(":", ""), 16)


def ext(cert: x509.Certificate, cls):
    try:
        return cert.extensions.get_extension_for_class(cls)
    except x509.ExtensionNotFound:
        return None


def ext_oid(cert: x509.Certificate, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def validity_days(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400


# ------------------------------------------------------------------------------------ judges

DILITHIUM_BY_SIG_OID = {
    "2.16.840.1.101.3.4.3.17": ML_DSA_44,
    "2.16.840.1.101.3.4.3.18": ML_DSA_65,
    "2.16.840.1.101.3.4.3.19": ML_DSA_87,
}


def mldsa_public_key_bytes(cert: x509.Certificate) -> bytes:
    """The raw ML-DSA public key (the subjectPublicKey BIT STRING contents)."""
    return cert.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def dilithium_verifies(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    """dilithium-py (pure Python FIPS 204) over tbsCertificate, empty context."""
    scheme = DILITHIUM_BY_SIG_OID[child.signature_algorithm_oid.dotted_string]
    return scheme.verify(mldsa_public_key_bytes(issuer), child.tbs_certificate_bytes, child.signature)


def openssl_verify(root: Path, leaf: Path, *untrusted: Path, purpose: Optional[str] = None) -> tuple[bool, str]:
    """(True when openssl verify printed '<leaf>: OK' and exited 0, combined output)."""
    args = ["verify", "-CAfile", root]
    for u in untrusted:
        args += ["-untrusted", u]
    if purpose:
        args += ["-purpose", purpose]
    p = openssl(*args, leaf)
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and out.splitlines()[-1] == f"{leaf}: OK" and "error" not in out.lower(), \
        f"$ openssl {' '.join(map(str, args))} {leaf}\n{out}"


def openssl_text(cert: Path) -> str:
    p = openssl("x509", "-in", cert, "-noout", "-text")
    assert p.returncode == 0, describe(p)
    return p.stdout


def text_ext_block(text: str, title: str) -> Optional[str]:
    """The lines under an extension heading in `openssl x509 -text` (heading line included)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(title):
            indent = len(line) - len(line.lstrip())
            block = [line]
            for nxt in lines[i + 1:]:
                if not nxt.strip():
                    break
                if len(nxt) - len(nxt.lstrip()) <= indent:
                    break
                block.append(nxt)
            return "\n".join(block)
    return None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()
