"""Shared helpers for the interop suite: running sigil and openssl, PEM/DER handling, key types.

Every check here is made by a peer (openssl 3.0 CLI, Python `cryptography`, `dilithium-py`) or by
the tiny DER walker below; nothing trusts sigil's own word about what it wrote.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa

# --------------------------------------------------------------------------------------------
# Fixed inputs

SUBJECT = ("/C=US/ST=NY/L=New York/O=Example Corp/OU=IT Security/CN=www.example.com"
           "/emailAddress=admin@example.com")
SUBJECT_ATTRS = [  # (OID, value) in encoding order, as the string above gives them
    (x509.NameOID.COUNTRY_NAME, "US"),
    (x509.NameOID.STATE_OR_PROVINCE_NAME, "NY"),
    (x509.NameOID.LOCALITY_NAME, "New York"),
    (x509.NameOID.ORGANIZATION_NAME, "Example Corp"),
    (x509.NameOID.ORGANIZATIONAL_UNIT_NAME, "IT Security"),
    (x509.NameOID.COMMON_NAME, "www.example.com"),
    (x509.NameOID.EMAIL_ADDRESS, "admin@example.com"),
]
# The CN is also given as a DNS SAN, so "CN added to SANs" adds nothing here.
SANS = [
    "DNS:www.example.com",
    "DNS:api.example.com",
    "IP:10.0.0.1",
    "IP:2001:db8::1",
    "email:a@b.c",
    "URI:spiffe://example.com/ns/web",
]
# How `openssl req -text` (3.0) prints the same SANs.
SANS_OPENSSL_TEXT = [
    "DNS:www.example.com",
    "DNS:api.example.com",
    "IP Address:10.0.0.1",
    "IP Address:2001:DB8:0:0:0:0:0:1",
    "email:a@b.c",
    "URI:spiffe://example.com/ns/web",
]
OPENSSL_SAN_EXT = "subjectAltName=" + ",".join(SANS)
PASSPHRASE = "correct horse battery staple"

# --------------------------------------------------------------------------------------------
# Key types


@dataclass(frozen=True)
class KeyType:
    name: str                      # the --key-type value, and `key show`'s "type"
    algorithm: str                 # `key show`'s "algorithm"
    size: Optional[int]            # `key show`'s "size" where the contract fixes it
    classical: bool                # openssl 3.0 can read it
    genpkey: Optional[tuple] = None  # openssl genpkey arguments

    def __str__(self) -> str:
        return self.name


KEY_TYPES = [
    KeyType("ec:P-256", "ECDSA", 256, True, ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")),
    KeyType("ec:P-384", "ECDSA", 384, True, ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384")),
    KeyType("ec:P-521", "ECDSA", 521, True, ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521")),
    KeyType("rsa:2048", "RSA", 2048, True, ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")),
    KeyType("rsa:3072", "RSA", 3072, True, ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072")),
    KeyType("rsa:4096", "RSA", 4096, True, ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096")),
    KeyType("ed25519", "Ed25519", None, True, ("-algorithm", "ED25519")),
    KeyType("mldsa:44", "ML-DSA", None, False),
    KeyType("mldsa:65", "ML-DSA", None, False),
    KeyType("mldsa:87", "ML-DSA", None, False),
]
KT = {k.name: k for k in KEY_TYPES}
CLASSICAL = [k for k in KEY_TYPES if k.classical]
MLDSA = [k for k in KEY_TYPES if not k.classical]
EC_TYPES = [k for k in KEY_TYPES if k.name.startswith("ec:")]
RSA_TYPES = [k for k in KEY_TYPES if k.name.startswith("rsa:")]

MLDSA_CLASSES = {
    "mldsa:44": mldsa.MLDSA44PrivateKey,
    "mldsa:65": mldsa.MLDSA65PrivateKey,
    "mldsa:87": mldsa.MLDSA87PrivateKey,
}

# Signature algorithm OIDs -> the names sigil's `csr show` should print.
SIG_OID_NAMES = {
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.3.101.112": "Ed25519",
    "2.16.840.1.101.3.4.3.17": "ML-DSA-44",
    "2.16.840.1.101.3.4.3.18": "ML-DSA-65",
    "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
}


def sig_name_matches(reported: str, oid: str) -> bool:
    """Exact for ECDSA/RSA (RFC names); case-insensitive, optional 'id-' prefix, for EdDSA/ML-DSA."""
    want = SIG_OID_NAMES[oid]
    if want.startswith(("ecdsa", "sha")):
        return reported == want
    norm = reported.lower()
    norm = norm[3:] if norm.startswith("id-") else norm
    return norm == want.lower()


def check_crypto_key_type(key, kt: KeyType) -> None:
    """Assert that a cryptography private or public key object is of key type kt."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    if kt.name.startswith("ec:"):
        assert isinstance(pub, ec.EllipticCurvePublicKey), type(pub)
        want = {"ec:P-256": "secp256r1", "ec:P-384": "secp384r1", "ec:P-521": "secp521r1"}[kt.name]
        assert pub.curve.name == want
    elif kt.name.startswith("rsa:"):
        assert isinstance(pub, rsa.RSAPublicKey), type(pub)
        assert pub.key_size == kt.size
    elif kt.name == "ed25519":
        assert isinstance(pub, ed25519.Ed25519PublicKey), type(pub)
    else:
        cls = {"mldsa:44": mldsa.MLDSA44PublicKey, "mldsa:65": mldsa.MLDSA65PublicKey,
               "mldsa:87": mldsa.MLDSA87PublicKey}[kt.name]
        assert isinstance(pub, cls), type(pub)


# --------------------------------------------------------------------------------------------
# Running programs


def sigil_bin() -> str:
    b = os.environ.get("SIGIL_BIN", "")
    if not b:
        raise RuntimeError("SIGIL_BIN is not set: run the suite through scripts/test.sh")
    if not os.path.isabs(b) or not os.access(b, os.X_OK):
        raise RuntimeError(f"SIGIL_BIN={b!r} is not an absolute path to an executable")
    return b


def run(argv: Sequence[str], *, cwd=None, env=None, input=None, umask=None, timeout=900,
        text=True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    def preexec():
        if umask is not None:
            os.umask(umask)
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=full_env, input=input,
                          capture_output=True, text=text, timeout=timeout,
                          preexec_fn=preexec, stdin=None if input is not None else subprocess.DEVNULL)


def sigil(*args, **kw) -> subprocess.CompletedProcess:
    return run([sigil_bin(), *args], **kw)


def describe(p: subprocess.CompletedProcess) -> str:
    out = p.stdout if isinstance(p.stdout, str) else p.stdout.decode(errors="replace")
    err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
    return (f"\n$ {' '.join(map(str, p.args))}\nexit {p.returncode}\n"
            f"--- stdout ---\n{out[-3000:]}\n--- stderr ---\n{err[-3000:]}")


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, describe(p)
    return p


def sigil_ok(*args, **kw) -> subprocess.CompletedProcess:
    return ok(sigil(*args, **kw))


def sigil_json(*args, **kw) -> dict:
    p = sigil_ok(*args, **kw)
    try:
        data = json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError(f"stdout is not JSON ({e}){describe(p)}")
    assert isinstance(data, dict), describe(p)
    return data


def openssl(*args, **kw) -> subprocess.CompletedProcess:
    return run(["openssl", *args], **kw)


def openssl_ok(*args, **kw) -> subprocess.CompletedProcess:
    return ok(openssl(*args, **kw))


def openssl_pub_sha256(key: Path, *, inform: Optional[str] = None,
                       passfile: Optional[Path] = None) -> str:
    """SHA-256 (hex) of the DER SubjectPublicKeyInfo as `openssl pkey -pubout -outform DER` gives it."""
    args = ["pkey", "-in", key, "-pubout", "-outform", "DER"]
    if inform:
        args += ["-inform", inform]
    if passfile:
        args += ["-passin", f"file:{passfile}"]
    p = openssl_ok(*args, text=False)
    assert len(p.stdout) > 30
    return hashlib.sha256(p.stdout).hexdigest()


def openssl_req_verify(csr: Path, *, inform: Optional[str] = None) -> tuple[bool, str]:
    """(True if openssl printed 'verify OK', combined output). openssl 3.0 exits 0 on a bad
    signature, so the exit status is not the verdict."""
    args = ["req", "-in", csr, "-noout", "-verify"]
    if inform:
        args += ["-inform", inform]
    p = openssl(*args)
    out = p.stdout + p.stderr
    good = "verify OK" in out and "verify failure" not in out.lower()
    return good, out


def spki_sha256(key) -> str:
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def spki_der(key) -> bytes:
    pub = key.public_key() if hasattr(key, "private_bytes") else key
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path, password: Optional[str] = None):
    data = Path(path).read_bytes()
    pw = password.encode() if password is not None else None
    if data.lstrip().startswith(b"-----"):
        return serialization.load_pem_private_key(data, pw)
    return serialization.load_der_private_key(data, pw)


def load_csr(path: Path) -> x509.CertificateSigningRequest:
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_csr(data)
    return x509.load_der_x509_csr(data)


# --------------------------------------------------------------------------------------------
# Error reporting contract: non-zero exit, ONE clear line on stderr (ArgumentParser's usage
# boilerplate after it is tolerated), no crash trace.

CRASH_MARKERS = ("Fatal error", "Stack dump", "Backtrace", "Current stack trace", "SIGSEGV",
                 "Illegal instruction", "💣", "Program crashed")


def error_lines(stderr: str) -> list[str]:
    lines = []
    for line in stderr.splitlines():
        if line.startswith(("Usage:", "USAGE:")):
            break  # ArgumentParser usage block: boilerplate, not the message
        if line.strip():
            lines.append(line.strip())
    return lines


def assert_clean_failure(p: subprocess.CompletedProcess, *, code=None, mentions=()) -> str:
    """Non-zero exit (or exactly `code`), one clear message line, mentioning one of `mentions`
    (each item a str or a tuple of alternatives, matched case-insensitively)."""
    assert p.returncode != 0, "expected failure" + describe(p)
    if code is not None:
        assert p.returncode == code, f"expected exit {code}" + describe(p)
    for m in CRASH_MARKERS:
        assert m not in p.stderr, "crash trace on stderr" + describe(p)
    lines = error_lines(p.stderr)
    assert len(lines) == 1, f"expected one error line on stderr, got {len(lines)}" + describe(p)
    msg = lines[0]
    assert len(msg) >= 10, "error line too terse" + describe(p)
    for m in mentions:
        alts = (m,) if isinstance(m, str) else tuple(m)
        assert any(a.lower() in msg.lower() for a in alts), \
            f"error line should mention one of {alts}" + describe(p)
    return msg


def dir_listing(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in Path(d).rglob("*")}


# --------------------------------------------------------------------------------------------
# PEM / DER


PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)


def pem_blocks(text) -> list[tuple[str, bytes]]:
    if isinstance(text, bytes):
        text = text.decode("ascii")
    return [(m.group(1), base64.b64decode("".join(m.group(2).split()))) for m in PEM_RE.finditer(text)]


def to_pem(label: str, der: bytes) -> str:
    b = base64.b64encode(der).decode()
    return f"-----BEGIN {label}-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) \
        + f"\n-----END {label}-----\n"


def der_of(path: Path) -> tuple[Optional[str], bytes]:
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----"):
        blocks = pem_blocks(data)
        assert len(blocks) == 1, f"{path}: expected one PEM block, got {[b[0] for b in blocks]}"
        return blocks[0]
    return None, data


@dataclass
class TLV:
    tag: int
    start: int      # offset of the tag byte
    vstart: int     # offset of the value
    end: int        # offset just past the value

    def value(self, data: bytes) -> bytes:
        return data[self.vstart:self.end]


def tlv(data: bytes, off: int = 0) -> TLV:
    tag = data[off]
    assert tag & 0x1F != 0x1F, "high tag numbers not supported"
    n = data[off + 1]
    p = off + 2
    if n & 0x80:
        k = n & 0x7F
        assert 1 <= k <= 4, "bad DER length"
        n = int.from_bytes(data[p:p + k], "big")
        p += k
    assert p + n <= len(data), "DER value runs past the end"
    return TLV(tag, off, p, p + n)


def children(data: bytes, parent: TLV) -> list[TLV]:
    out, off = [], parent.vstart
    while off < parent.end:
        t = tlv(data, off)
        out.append(t)
        off = t.end
    assert off == parent.end
    return out


def decode_oid(b: bytes) -> str:
    first = b[0]
    arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    v = 0
    for byte in b[1:]:
        v = (v << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(v)
            v = 0
    return ".".join(map(str, arcs))


def csr_parts(der: bytes) -> dict:
    """Split a PKCS#10 DER: CertificationRequestInfo, signatureAlgorithm, signature BIT STRING."""
    outer = tlv(der, 0)
    assert outer.tag == 0x30 and outer.end == len(der), "CSR is not one DER SEQUENCE"
    cri, alg, sig = children(der, outer)
    assert cri.tag == 0x30 and alg.tag == 0x30 and sig.tag == 0x03
    alg_kids = children(der, alg)
    return {"cri": cri, "alg": alg, "alg_oid": decode_oid(alg_kids[0].value(der)),
            "alg_params": [k.tag for k in alg_kids[1:]], "sig": sig}


def flip_signature_bit(der: bytes) -> bytes:
    """Flip the lowest bit of the last byte INSIDE the signature BIT STRING.

    The last byte of an ECDSA signature is the last byte of the INTEGER s, so the DER stays
    well-formed; for RSA, Ed25519 and ML-DSA the BIT STRING holds raw bytes."""
    parts = csr_parts(der)
    sig = parts["sig"]
    assert sig.end - sig.vstart >= 2 and der[sig.vstart] == 0, "unused-bits byte should be 0"
    b = bytearray(der)
    b[sig.end - 1] ^= 0x01
    return bytes(b)


# DirectoryString / attribute value tags
PRINTABLE, UTF8, IA5 = 0x13, 0x0C, 0x16
OID_TAGS = {
    "2.5.4.6": "C", "2.5.4.8": "ST", "2.5.4.7": "L", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.3": "CN", "1.2.840.113549.1.9.1": "emailAddress",
}


def subject_value_tags(der: bytes) -> list[tuple[str, int]]:
    """[(short name, ASN.1 tag of the value)] for the CSR's subject, in encoding order."""
    cri = csr_parts(der)["cri"]
    version, name = children(der, cri)[:2]
    assert version.value(der) == b"\x00", "CSR version must be 0 (v1)"
    out = []
    for rdn in children(der, name):
        assert rdn.tag == 0x31
        for atv in children(der, rdn):
            oid_t, val_t = children(der, atv)
            out.append((OID_TAGS.get(decode_oid(oid_t.value(der)), decode_oid(oid_t.value(der))), val_t.tag))
    return out


# PKCS#8 encryption OIDs
OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_SCRYPT = "1.3.6.1.4.1.11591.4.11"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def encrypted_pkcs8_params(der: bytes) -> dict:
    """Decode EncryptedPrivateKeyInfo's PBES2 parameters."""
    epki = tlv(der, 0)
    alg, _data = children(der, epki)
    alg_oid_t, pbes2_params = children(der, alg)
    out = {"scheme": decode_oid(alg_oid_t.value(der))}
    kdf, enc = children(der, pbes2_params)
    kdf_oid_t, kdf_params = children(der, kdf)
    out["kdf"] = decode_oid(kdf_oid_t.value(der))
    kp = children(der, kdf_params)
    if out["kdf"] == OID_PBKDF2:
        out["iterations"] = int.from_bytes(kp[1].value(der), "big")
        prf = [k for k in kp[2:] if k.tag == 0x30]
        out["prf"] = decode_oid(children(der, prf[0])[0].value(der)) if prf else "1.2.840.113549.2.7"
    elif out["kdf"] == OID_SCRYPT:
        ints = [int.from_bytes(k.value(der), "big") for k in kp[1:]]
        out["N"], out["r"], out["p"] = ints[0], ints[1], ints[2]
    enc_kids = children(der, enc)
    out["cipher"] = decode_oid(enc_kids[0].value(der))
    return out
