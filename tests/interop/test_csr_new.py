"""`sigil csr new` output judged by openssl 3.0, cryptography 50 and dilithium-py."""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from dilithium_py.ml_dsa import ML_DSA_44, ML_DSA_65, ML_DSA_87

from interop_helpers import (
    CLASSICAL, IA5, KEY_TYPES, MLDSA, PASSPHRASE, PRINTABLE, SANS, SANS_OPENSSL_TEXT, SUBJECT,
    SUBJECT_ATTRS, UTF8, check_crypto_key_type, csr_parts, der_of, dir_listing,
    flip_signature_bit, load_csr, load_private_key, openssl_ok, openssl_pub_sha256,
    openssl_req_verify, pem_blocks, sig_name_matches, sigil, sigil_json, sigil_ok, spki_der,
    spki_sha256, subject_value_tags, to_pem,
)

DILITHIUM = {"mldsa:44": ML_DSA_44, "mldsa:65": ML_DSA_65, "mldsa:87": ML_DSA_87}
MLDSA_SIG_OID = {"mldsa:44": "2.16.840.1.101.3.4.3.17", "mldsa:65": "2.16.840.1.101.3.4.3.18",
                 "mldsa:87": "2.16.840.1.101.3.4.3.19"}


def expected_sans() -> list:
    out = []
    for s in SANS:
        kind, _, v = s.partition(":")
        out.append({"DNS": x509.DNSName, "email": x509.RFC822Name,
                    "URI": x509.UniformResourceIdentifier}.get(kind, None)(v)
                   if kind != "IP" else x509.IPAddress(ipaddress.ip_address(v)))
    return out


def csr_sans(csr) -> list:
    try:
        return list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def tampered(tmp_path, csr_path):
    label, der = der_of(csr_path)
    bad_der = flip_signature_bit(der)
    out = tmp_path / "tampered.csr"
    out.write_text(to_pem("CERTIFICATE REQUEST", bad_der))
    return out, bad_der


# ------------------------------------------------------------------------------------ openssl

@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_verifies_sigil_csr(made, kt):
    _, csr = made.csr(kt.name)
    good, out = openssl_req_verify(csr)
    assert good, out


@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_text_shows_subject_and_sans(made, kt):
    _, csr = made.csr(kt.name)
    p = openssl_ok("req", "-in", csr, "-noout", "-text")
    lines = p.stdout.splitlines()
    idx = [i for i, l in enumerate(lines) if "X509v3 Subject Alternative Name" in l]
    assert idx, p.stdout
    printed = [s.strip() for s in lines[idx[0] + 1].split(",")]
    assert sorted(printed) == sorted(SANS_OPENSSL_TEXT), p.stdout
    subj = openssl_ok("req", "-in", csr, "-noout", "-subject", "-nameopt", "compat").stdout.strip()
    assert subj == "subject=" + SUBJECT


@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_reads_csr_key_and_it_matches(made, tmp_path, kt):
    key, csr = made.csr(kt.name)
    pub = tmp_path / "csrpub.pem"
    pub.write_text(openssl_ok("req", "-in", csr, "-noout", "-pubkey").stdout)
    csr_pub = openssl_ok("pkey", "-pubin", "-in", pub, "-outform", "DER", text=False).stdout
    assert hashlib.sha256(csr_pub).hexdigest() == openssl_pub_sha256(key)


# ------------------------------------------------------------------------------- cryptography

@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_cryptography_loads_and_verifies(made, kt):
    key, csr_path = made.csr(kt.name)
    label, der = der_of(csr_path)
    assert label == "CERTIFICATE REQUEST"
    csr = load_csr(csr_path)
    assert csr.is_signature_valid
    priv = load_private_key(key)
    check_crypto_key_type(priv, kt)
    assert spki_der(csr.public_key()) == spki_der(priv)
    assert [(a.oid, a.value) for a in csr.subject] == SUBJECT_ATTRS
    assert sorted(map(repr, csr_sans(csr))) == sorted(map(repr, expected_sans()))
    assert all(a.oid != x509.oid.AttributeOID.CHALLENGE_PASSWORD for a in csr.attributes)


@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_subject_string_types(made, kt):
    """C is PrintableString, emailAddress IA5String (RFC 5280), the rest UTF8String; version 0."""
    _, csr = made.csr(kt.name)
    tags = subject_value_tags(der_of(csr)[1])
    assert [n for n, _ in tags] == ["C", "ST", "L", "O", "OU", "CN", "emailAddress"]
    want = {"C": PRINTABLE, "emailAddress": IA5}
    for name, tag in tags:
        assert tag == want.get(name, UTF8), (name, hex(tag))


@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_signature_algorithm_identifier(made, kt):
    _, csr = made.csr(kt.name)
    parts = csr_parts(der_of(csr)[1])
    if kt.name.startswith("rsa:"):
        assert parts["alg_oid"] in ("1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13")
        assert parts["alg_params"] == [0x05], "RSA PKCS#1 v1.5 AlgorithmIdentifier carries NULL"
    elif kt.name.startswith("ec:"):
        assert parts["alg_oid"].startswith("1.2.840.10045.4.3.")
        assert parts["alg_params"] == [], "ECDSA AlgorithmIdentifier parameters must be absent"
    elif kt.name == "ed25519":
        assert parts["alg_oid"] == "1.3.101.112"
        assert parts["alg_params"] == []
    else:
        assert parts["alg_oid"] == MLDSA_SIG_OID[kt.name]
        assert parts["alg_params"] == [], "ML-DSA AlgorithmIdentifier parameters must be absent"


# ---------------------------------------------------------------------------- ML-DSA judges

@pytest.mark.parametrize("kt", MLDSA, ids=str)
def test_dilithium_py_verifies_mldsa_csr(made, kt):
    _, csr_path = made.csr(kt.name)
    csr = load_csr(csr_path)
    pk = csr.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    alg = DILITHIUM[kt.name]
    tbs = csr.tbs_certrequest_bytes
    assert alg.verify(pk, tbs, csr.signature)  # pure ML-DSA, empty context
    bad_tbs = bytearray(tbs)
    bad_tbs[len(bad_tbs) // 2] ^= 0x01
    assert not alg.verify(pk, bytes(bad_tbs), csr.signature)
    assert not alg.verify(pk, tbs, csr.signature, ctx=b"x")


# ------------------------------------------------------------------------- negative controls

@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_tampered_signature_is_rejected_by_peers_and_sigil(made, tmp_path, kt):
    _, csr_path = made.csr(kt.name)
    bad_path, bad_der = tampered(tmp_path, csr_path)
    bad = x509.load_der_x509_csr(bad_der)   # still parses: only the signature changed
    assert bad.is_signature_valid is False
    if kt.classical:
        good, out = openssl_req_verify(bad_path)
        assert not good, out
    else:
        pk = bad.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert not DILITHIUM[kt.name].verify(pk, bad.tbs_certrequest_bytes, bad.signature)
    p = sigil("csr", "show", bad_path, "--json")
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["signature_valid"] is False


# ---------------------------------------------------------------------------- sigil csr show

@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_sigil_csr_show_own_csr(made, kt):
    key, csr_path = made.csr(kt.name)
    data = sigil_json("csr", "show", csr_path, "--json")
    assert data["subject"] == SUBJECT
    assert sorted(data["sans"]) == sorted(SANS)
    assert len(data["sans"]) == len(set(data["sans"]))
    assert data["signature_valid"] is True
    csr = load_csr(csr_path)
    assert sig_name_matches(data["signature_algorithm"], csr.signature_algorithm_oid.dotted_string), \
        (data["signature_algorithm"], csr.signature_algorithm_oid.dotted_string)
    k = data["key"]
    assert k["type"] == kt.name and k["algorithm"] == kt.algorithm
    if kt.size is not None:
        assert k["size"] == kt.size
    assert k["public_key_sha256"] == spki_sha256(load_private_key(key))
    kshow = sigil_json("key", "show", key, "--json")
    assert kshow["public_key_sha256"] == k["public_key_sha256"]
    assert "challenge_password" in data, "challenge_password must be present (null when absent)"
    assert data["challenge_password"] is None
    for f in ("key_usage", "extended_key_usage", "extensions", "attributes"):
        assert isinstance(data[f], list), (f, data)


# ------------------------------------------------------------------------------ key handling

@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_csr_key_out_mode_and_format(made, kt):
    key, _ = made.csr(kt.name)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert der_of(key)[0] == "PRIVATE KEY"


def test_csr_new_encrypted_key_out(tmp_path, passfile):
    key, csr = tmp_path / "k.pem", tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key-type", "ec:P-384", "--key-out", key, "--passphrase-file", passfile,
             "--cn", "www.example.com", "--out", csr)
    assert der_of(key)[0] == "ENCRYPTED PRIVATE KEY"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    priv = load_private_key(key, PASSPHRASE)
    assert spki_der(load_csr(csr).public_key()) == spki_der(priv)
    assert openssl_req_verify(csr)[0]


def _openssl_key_variants(ossl, tmp_path, passfile):
    """(name, path, passphrase args) for openssl-written keys in every format sigil reads."""
    out = []
    for kt in CLASSICAL:
        out.append((f"{kt.name}-pkcs8", ossl.key(kt.name), []))
    sec1 = tmp_path / "sec1.pem"
    openssl_ok("ecparam", "-genkey", "-name", "secp384r1", "-out", sec1)
    out.append(("ec:P-384-sec1-params", sec1, []))
    pkcs1 = tmp_path / "pkcs1.pem"
    openssl_ok("rsa", "-in", ossl.key("rsa:2048"), "-traditional", "-out", pkcs1)
    out.append(("rsa:2048-pkcs1", pkcs1, []))
    der = tmp_path / "k.der"
    openssl_ok("pkey", "-in", ossl.key("ed25519"), "-outform", "DER", "-out", der)
    out.append(("ed25519-der", der, []))
    for kdf, args in {"pbkdf2": ["-v2prf", "hmacWithSHA256"], "scrypt": ["-scrypt"]}.items():
        enc = tmp_path / f"enc-{kdf}.pem"
        openssl_ok("pkcs8", "-topk8", "-v2", "aes-256-cbc", *args, "-in", ossl.key("ec:P-256"),
                   "-out", enc, "-passout", f"file:{passfile}")
        out.append((f"ec:P-256-encrypted-{kdf}", enc, ["--passphrase-file", str(passfile)]))
    return out


def test_csr_from_existing_openssl_keys(ossl, tmp_path, passfile):
    failures = []
    for name, key, pw in _openssl_key_variants(ossl, tmp_path, passfile):
        csr = tmp_path / f"{name.replace(':', '_')}.csr"
        p = sigil("csr", "new", "--key", key, *pw, "--cn", "www.example.com", "--out", csr)
        if p.returncode != 0:
            failures.append(f"{name}: exit {p.returncode}: {p.stderr.strip()[:300]}")
            continue
        passin = ["-passin", f"file:{passfile}"] if pw else []
        fp = hashlib.sha256(openssl_ok("pkey", "-in", key, *passin, "-pubout", "-outform", "DER",
                                       text=False).stdout).hexdigest()
        if spki_sha256(load_csr(csr).public_key()) != fp:
            failures.append(f"{name}: CSR public key differs from the key's")
        good, out = openssl_req_verify(csr)
        if not good:
            failures.append(f"{name}: openssl: {out.strip()[:300]}")
        if not load_csr(csr).is_signature_valid:
            failures.append(f"{name}: cryptography: signature invalid")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("kt", MLDSA, ids=str)
def test_csr_from_existing_mldsa_key(made, tmp_path, kt):
    key = made.key(kt.name)
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--out", csr)
    c = load_csr(csr)
    assert c.is_signature_valid
    assert spki_der(c.public_key()) == spki_der(load_private_key(key))


def test_csr_from_encrypted_sigil_key_passphrase_env(made, tmp_path):
    key = made.key("ec:P-256", "scrypt")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--passphrase-env", "SIGIL_TEST_PW", "--cn", "www.example.com",
             "--out", csr, env={"SIGIL_TEST_PW": PASSPHRASE})
    assert spki_der(load_csr(csr).public_key()) == spki_der(load_private_key(key, PASSPHRASE))


# ------------------------------------------------------------------------ output and options

def test_csr_to_stdout(made, tmp_path):
    key = made.key("ec:P-256")
    before = dir_listing(tmp_path)
    p = sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", cwd=tmp_path)
    blocks = pem_blocks(p.stdout)
    assert [b[0] for b in blocks] == ["CERTIFICATE REQUEST"], p.stdout
    assert p.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----"), p.stdout[:200]
    csr = x509.load_der_x509_csr(blocks[0][1])
    assert csr.is_signature_valid
    assert dir_listing(tmp_path) == before


def test_csr_der_format(made, tmp_path):
    key = made.key("rsa:2048")
    csr = tmp_path / "c.der"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--format", "der", "--out", csr)
    raw = csr.read_bytes()
    assert raw[0] == 0x30, "DER output should start with a SEQUENCE"
    c = x509.load_der_x509_csr(raw)
    assert c.is_signature_valid
    good, out = openssl_req_verify(csr, inform="DER")
    assert good, out
    data = sigil_json("csr", "show", csr, "--json")
    assert data["signature_valid"] is True
    assert data["subject"] == "/CN=www.example.com"


def test_subject_flags(made, tmp_path):
    key = made.key("ec:P-256")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--org", "Example Corp",
             "--ou", "IT Security", "--locality", "New York", "--state", "NY", "--country", "US",
             "--email", "admin@example.com", "--out", csr)
    c = load_csr(csr)
    assert sorted((a.oid.dotted_string, a.value) for a in c.subject) == \
        sorted((o.dotted_string, v) for o, v in SUBJECT_ATTRS)
    data = sigil_json("csr", "show", csr, "--json")
    for part in SUBJECT.strip("/").split("/"):
        assert f"/{part}" in data["subject"], (part, data["subject"])
    assert data["sans"] == ["DNS:www.example.com"]


def test_dns_cn_is_added_to_sans(made, tmp_path):
    key = made.key("ec:P-256")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--san", "DNS:api.example.com",
             "--san", "IP:10.0.0.1", "--out", csr)
    data = sigil_json("csr", "show", csr, "--json")
    assert sorted(data["sans"]) == sorted(["DNS:www.example.com", "DNS:api.example.com", "IP:10.0.0.1"])
    assert sorted(map(repr, csr_sans(load_csr(csr)))) == sorted(map(repr, [
        x509.DNSName("www.example.com"), x509.DNSName("api.example.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]))


def test_no_cn_san(made, tmp_path):
    key = made.key("ec:P-256")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--san", "DNS:api.example.com",
             "--no-cn-san", "--out", csr)
    assert sigil_json("csr", "show", csr, "--json")["sans"] == ["DNS:api.example.com"]
    assert csr_sans(load_csr(csr)) == [x509.DNSName("api.example.com")]


def test_no_cn_san_and_no_sans_means_no_san_extension(made, tmp_path):
    key = made.key("ec:P-256")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--no-cn-san", "--out", csr)
    c = load_csr(csr)   # an empty SAN extension would be invalid DER (SIZE 1..MAX)
    assert csr_sans(c) == []
    assert sigil_json("csr", "show", csr, "--json")["sans"] == []
    assert openssl_req_verify(csr)[0]


def test_non_dns_cn_not_added(made, tmp_path):
    key = made.key("ec:P-256")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "Example Device 42", "--out", csr)
    assert csr_sans(load_csr(csr)) == []
    data = sigil_json("csr", "show", csr, "--json")
    assert data["sans"] == [] and data["subject"] == "/CN=Example Device 42"


def test_key_usage_and_ext_key_usage(made, tmp_path):
    key = made.key("rsa:2048")
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", key, "--cn", "www.example.com", "--key-usage",
             "digitalSignature,keyEncipherment", "--ext-key-usage", "serverAuth,clientAuth", "--out", csr)
    c = load_csr(csr)
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment
    assert not (ku.content_commitment or ku.data_encipherment or ku.key_agreement or ku.key_cert_sign
                or ku.crl_sign)
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    text = openssl_ok("req", "-in", csr, "-noout", "-text").stdout
    assert "Digital Signature, Key Encipherment" in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    data = sigil_json("csr", "show", csr, "--json")
    assert sorted(data["key_usage"]) == ["digitalSignature", "keyEncipherment"]
    assert sorted(data["extended_key_usage"]) == ["clientAuth", "serverAuth"]
    assert openssl_req_verify(csr)[0]
