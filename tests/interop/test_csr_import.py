"""`sigil csr show` on CSRs made by peers: openssl 3.0 (classical) and cryptography 50 (ML-DSA)."""
from __future__ import annotations

import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from interop_helpers import (
    CLASSICAL, KT, MLDSA, MLDSA_CLASSES, SANS, SUBJECT, SUBJECT_ATTRS, assert_clean_failure, der_of,
    flip_signature_bit, openssl_ok, openssl_pub_sha256, sig_name_matches, sigil, sigil_json,
    spki_sha256, to_pem,
)


def show(path):
    return sigil_json("csr", "show", path, "--json")


def check_common(data, kt, fp):
    assert data["signature_valid"] is True, data
    assert data["subject"] == SUBJECT, data
    assert sorted(data["sans"]) == sorted(SANS), data
    k = data["key"]
    assert k["type"] == kt.name and k["algorithm"] == kt.algorithm, k
    if kt.size is not None:
        assert k["size"] == kt.size, k
    assert k["public_key_sha256"] == fp, k


@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_csr(ossl, kt):
    csr = ossl.csr(kt.name)
    data = show(csr)
    check_common(data, kt, openssl_pub_sha256(ossl.key(kt.name)))
    oid = x509.load_pem_x509_csr(csr.read_bytes()).signature_algorithm_oid.dotted_string
    assert sig_name_matches(data["signature_algorithm"], oid), (data["signature_algorithm"], oid)
    if kt.name.startswith("ec:"):
        assert data["signature_algorithm"] == "ecdsa-with-SHA256"   # openssl req's default digest
    elif kt.name.startswith("rsa:"):
        assert data["signature_algorithm"] == "sha256WithRSAEncryption"
    assert data["key_usage"] == ["digitalSignature"], data
    assert data["extended_key_usage"] == ["serverAuth"], data
    assert "challenge_password" in data, "challenge_password must be present (null when absent)"
    assert data["challenge_password"] is None
    assert isinstance(data["extensions"], list) and len(data["extensions"]) >= 3, data


@pytest.mark.parametrize("digest,name", [("-sha384", "ecdsa-with-SHA384"), ("-sha512", "ecdsa-with-SHA512")])
def test_openssl_csr_other_digests(ossl, digest, name):
    kt = KT["ec:P-384"]
    data = show(ossl.csr(kt.name, digest))
    check_common(data, kt, openssl_pub_sha256(ossl.key(kt.name)))
    assert data["signature_algorithm"] == name


def test_openssl_rsa_sha512(ossl):
    kt = KT["rsa:3072"]
    data = show(ossl.csr(kt.name, "-sha512"))
    check_common(data, kt, openssl_pub_sha256(ossl.key(kt.name)))
    assert data["signature_algorithm"] == "sha512WithRSAEncryption"


def test_openssl_csr_der(ossl, tmp_path):
    kt = KT["ec:P-256"]
    der = tmp_path / "c.der"
    openssl_ok("req", "-in", ossl.csr(kt.name), "-outform", "DER", "-out", der)
    check_common(show(der), kt, openssl_pub_sha256(ossl.key(kt.name)))


def test_openssl_csr_challenge_password(ossl, tmp_path):
    cnf = tmp_path / "req.cnf"
    cnf.write_text(
        "[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n"
        "[dn]\nCN = www.example.com\n"
        "[attrs]\nchallengePassword = s3cret pass\n")
    csr = tmp_path / "c.csr"
    openssl_ok("req", "-new", "-config", cnf, "-key", ossl.key("ec:P-256"), "-out", csr)
    data = show(csr)
    assert data["signature_valid"] is True
    assert data["challenge_password"] == "s3cret pass"
    assert data["subject"] == "/CN=www.example.com"
    assert data["sans"] == []
    assert len(data["attributes"]) >= 1


@pytest.mark.parametrize("kt", [KT["ec:P-256"], KT["rsa:2048"], KT["ed25519"]], ids=str)
def test_openssl_csr_tampered(ossl, tmp_path, kt):
    _, der = der_of(ossl.csr(kt.name))
    bad = tmp_path / "bad.csr"
    bad.write_text(to_pem("CERTIFICATE REQUEST", flip_signature_bit(der)))
    p = sigil("csr", "show", bad, "--json")
    assert p.returncode in (0, 1), p.stderr
    data = json.loads(p.stdout)
    assert data["signature_valid"] is False
    assert data["subject"] == SUBJECT   # still parsed, just not trusted


# ------------------------------------------------------------------- ML-DSA from cryptography

def cryptography_csr(priv):
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in SUBJECT_ATTRS])
    gns = []
    for s in SANS:
        kind, _, v = s.partition(":")
        gns.append({"DNS": lambda v: x509.DNSName(v), "IP": lambda v: x509.IPAddress(ipaddress.ip_address(v)),
                    "email": lambda v: x509.RFC822Name(v),
                    "URI": lambda v: x509.UniformResourceIdentifier(v)}[kind](v))
    return (x509.CertificateSigningRequestBuilder().subject_name(name)
            .add_extension(x509.SubjectAlternativeName(gns), critical=False)
            .sign(priv, None))


@pytest.mark.parametrize("kt", MLDSA, ids=str)
def test_cryptography_mldsa_csr(tmp_path, kt):
    priv = MLDSA_CLASSES[kt.name].generate()
    csr = cryptography_csr(priv)
    pem, der = tmp_path / "c.csr", tmp_path / "c.der"
    pem.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    der.write_bytes(csr.public_bytes(serialization.Encoding.DER))
    for path in (pem, der):
        data = show(path)
        check_common(data, kt, spki_sha256(priv))
        assert sig_name_matches(data["signature_algorithm"], csr.signature_algorithm_oid.dotted_string), data
    bad = tmp_path / "bad.csr"
    bad.write_text(to_pem("CERTIFICATE REQUEST", flip_signature_bit(der.read_bytes())))
    p = sigil("csr", "show", bad, "--json")
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["signature_valid"] is False


# ------------------------------------------------------------------------------ broken input

@pytest.mark.parametrize("case", ["truncated-pem", "truncated-der", "garbage", "empty", "key-not-csr"])
def test_malformed_csr(ossl, tmp_path, case):
    src = ossl.csr("ec:P-256")
    bad = tmp_path / "bad.csr"
    if case == "truncated-pem":
        t = src.read_text()
        bad.write_text(t[: len(t) // 2])
    elif case == "truncated-der":
        bad.write_bytes(der_of(src)[1][:-10])
    elif case == "garbage":
        bad.write_text("-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n")
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "key-not-csr":
        bad.write_bytes(ossl.key("ec:P-256").read_bytes())
    p = sigil("csr", "show", bad, "--json")
    assert_clean_failure(p)
    assert p.stdout.strip() == ""
