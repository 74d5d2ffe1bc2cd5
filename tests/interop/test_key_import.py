"""`sigil key show` on keys made by peers: openssl 3.0 (classical) and cryptography 50 (ML-DSA)."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from interop_helpers import (
    CLASSICAL, EC_TYPES, KT, MLDSA, MLDSA_CLASSES, PASSPHRASE, RSA_TYPES, assert_clean_failure,
    children, openssl_ok, openssl_pub_sha256, sigil, sigil_json, spki_sha256, tlv,
)


def show(path, *extra, **kw):
    return sigil_json("key", "show", path, *extra, "--json", **kw)


def check(data, kt, fp, *, encrypted, fmt):
    assert data["type"] == kt.name, data
    assert data["algorithm"] == kt.algorithm, data
    if kt.size is not None:
        assert data["size"] == kt.size, data
    assert data["encrypted"] is encrypted, data
    assert data["format"] == fmt, data
    assert data["public_key_sha256"] == fp, data


# ------------------------------------------------------------------------------------ PKCS#8

@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_pkcs8_pem(ossl, kt):
    key = ossl.key(kt.name)
    check(show(key), kt, openssl_pub_sha256(key), encrypted=False, fmt="PKCS#8")


@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_pkcs8_der(ossl, tmp_path, kt):
    key = ossl.key(kt.name)
    der = tmp_path / "k.der"
    # (`openssl pkey -outform DER` would write SEC1 / PKCS#1 for EC / RSA keys in openssl 3.0)
    openssl_ok("pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER", "-out", der)
    raw = der.read_bytes()
    top = children(raw, tlv(raw))
    assert top[0].value(raw) == b"\x00" and top[1].tag == 0x30, "not a PKCS#8 PrivateKeyInfo"
    check(show(der), kt, openssl_pub_sha256(key), encrypted=False, fmt="PKCS#8")


ENC = {
    "pbkdf2": ["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256"],
    "scrypt": ["-v2", "aes-256-cbc", "-scrypt"],
}


@pytest.mark.parametrize("kdf", sorted(ENC))
@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_encrypted_pkcs8_pem(ossl, tmp_path, passfile, kt, kdf):
    key = ossl.key(kt.name)
    enc = tmp_path / "enc.pem"
    openssl_ok("pkcs8", "-topk8", *ENC[kdf], "-in", key, "-out", enc, "-passout", f"file:{passfile}")
    assert "ENCRYPTED PRIVATE KEY" in enc.read_text()
    check(show(enc, "--passphrase-file", passfile), kt, openssl_pub_sha256(key),
          encrypted=True, fmt="PKCS#8")


@pytest.mark.parametrize("kdf", sorted(ENC))
def test_openssl_encrypted_pkcs8_der(ossl, tmp_path, passfile, kdf):
    kt = KT["ec:P-384"]
    key = ossl.key(kt.name)
    enc = tmp_path / "enc.der"
    openssl_ok("pkcs8", "-topk8", *ENC[kdf], "-in", key, "-outform", "DER", "-out", enc,
               "-passout", f"file:{passfile}")
    check(show(enc, "--passphrase-file", passfile), kt, openssl_pub_sha256(key),
          encrypted=True, fmt="PKCS#8")


def test_openssl_encrypted_pkcs8_passphrase_env(ossl, tmp_path, passfile):
    kt = KT["rsa:2048"]
    key = ossl.key(kt.name)
    enc = tmp_path / "enc.pem"
    openssl_ok("pkcs8", "-topk8", *ENC["scrypt"], "-in", key, "-out", enc, "-passout", f"file:{passfile}")
    data = show(enc, "--passphrase-env", "SIGIL_TEST_PW", env={"SIGIL_TEST_PW": PASSPHRASE})
    check(data, kt, openssl_pub_sha256(key), encrypted=True, fmt="PKCS#8")


@pytest.mark.parametrize("kdf", sorted(ENC))
def test_openssl_encrypted_wrong_passphrase(ossl, tmp_path, passfile, wrong_passfile, kdf):
    enc = tmp_path / "enc.pem"
    openssl_ok("pkcs8", "-topk8", *ENC[kdf], "-in", ossl.key("ec:P-256"), "-out", enc,
               "-passout", f"file:{passfile}")
    p = sigil("key", "show", enc, "--passphrase-file", wrong_passfile, "--json")
    assert_clean_failure(p, code=2, mentions=[("passphrase", "password", "decrypt")])


# -------------------------------------------------------------------------------------- SEC1

CURVE = {"ec:P-256": "prime256v1", "ec:P-384": "secp384r1", "ec:P-521": "secp521r1"}


@pytest.mark.parametrize("kt", EC_TYPES, ids=str)
def test_openssl_ecparam_genkey_sec1_with_params_block(tmp_path, kt):
    key = tmp_path / "k.pem"
    openssl_ok("ecparam", "-genkey", "-name", CURVE[kt.name], "-out", key)
    text = key.read_text()
    assert "BEGIN EC PARAMETERS" in text and "BEGIN EC PRIVATE KEY" in text
    check(show(key), kt, openssl_pub_sha256(key), encrypted=False, fmt="SEC1")


@pytest.mark.parametrize("kt", EC_TYPES, ids=str)
def test_openssl_sec1_pem_and_der(ossl, tmp_path, kt):
    key = ossl.key(kt.name)
    pem, der = tmp_path / "k.pem", tmp_path / "k.der"
    openssl_ok("ec", "-in", key, "-out", pem)
    openssl_ok("ec", "-in", key, "-outform", "DER", "-out", der)
    assert "BEGIN EC PRIVATE KEY" in pem.read_text()
    fp = openssl_pub_sha256(key)
    check(show(pem), kt, fp, encrypted=False, fmt="SEC1")
    check(show(der), kt, fp, encrypted=False, fmt="SEC1")


# ------------------------------------------------------------------------------------ PKCS#1

@pytest.mark.parametrize("kt", RSA_TYPES, ids=str)
def test_openssl_pkcs1_pem_and_der(ossl, tmp_path, kt):
    key = ossl.key(kt.name)
    pem, der = tmp_path / "k.pem", tmp_path / "k.der"
    openssl_ok("rsa", "-in", key, "-traditional", "-out", pem)
    openssl_ok("rsa", "-in", key, "-traditional", "-outform", "DER", "-out", der)
    assert "BEGIN RSA PRIVATE KEY" in pem.read_text()
    fp = openssl_pub_sha256(key)
    check(show(pem), kt, fp, encrypted=False, fmt="PKCS#1")
    check(show(der), kt, fp, encrypted=False, fmt="PKCS#1")


# ------------------------------------------------------------------- ML-DSA from cryptography

@pytest.mark.parametrize("kt", MLDSA, ids=str)
def test_cryptography_mldsa_seed_pkcs8(tmp_path, kt):
    priv = MLDSA_CLASSES[kt.name].generate()
    pem, der = tmp_path / "k.pem", tmp_path / "k.der"
    pem.write_bytes(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    der.write_bytes(priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    # cryptography writes the RFC 9881 seed-only form: [0] IMPLICIT OCTET STRING (32 bytes)
    assert b"\x80\x20" in der.read_bytes()
    fp = spki_sha256(priv)
    check(show(pem), kt, fp, encrypted=False, fmt="PKCS#8")
    check(show(der), kt, fp, encrypted=False, fmt="PKCS#8")


@pytest.mark.parametrize("kt", MLDSA, ids=str)
def test_cryptography_mldsa_encrypted_pkcs8(tmp_path, passfile, kt):
    priv = MLDSA_CLASSES[kt.name].generate()
    enc = tmp_path / "k.pem"
    enc.write_bytes(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    assert "ENCRYPTED PRIVATE KEY" in enc.read_text()
    check(show(enc, "--passphrase-file", passfile), kt, spki_sha256(priv), encrypted=True, fmt="PKCS#8")


# ------------------------------------------------------------------------------ broken input

def _pem_body(path):
    return path.read_text()


@pytest.mark.parametrize("case", ["garbage-base64", "truncated-pem", "truncated-der", "empty",
                                  "no-pem-block", "wrong-label", "bit-flipped-length"])
def test_malformed_key(ossl, tmp_path, case):
    src = ossl.key("ec:P-256")
    text = src.read_text()
    bad = tmp_path / "bad.pem"
    if case == "garbage-base64":
        bad.write_text("-----BEGIN PRIVATE KEY-----\nthis is not base64 !!!\n-----END PRIVATE KEY-----\n")
    elif case == "truncated-pem":
        bad.write_text(text[: len(text) // 2])
    elif case == "truncated-der":
        der = tmp_path / "k.der"
        openssl_ok("pkey", "-in", src, "-outform", "DER", "-out", der)
        bad.write_bytes(der.read_bytes()[:-20])
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "no-pem-block":
        bad.write_text("hello, I am not a key\n")
    elif case == "wrong-label":
        bad.write_text(text.replace("PRIVATE KEY", "CERTIFICATE"))
    elif case == "bit-flipped-length":
        der = tmp_path / "k.der"
        openssl_ok("pkey", "-in", src, "-outform", "DER", "-out", der)
        b = bytearray(der.read_bytes())
        b[1] ^= 0x40  # outer SEQUENCE length now wrong
        bad.write_bytes(bytes(b))
    p = sigil("key", "show", bad, "--json")
    assert_clean_failure(p)
    assert p.stdout.strip() == ""


def test_missing_file(tmp_path):
    p = sigil("key", "show", tmp_path / "nope.pem", "--json")
    assert_clean_failure(p, mentions=["nope.pem"])
