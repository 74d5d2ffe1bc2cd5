"""`sigil key new` / `sigil key show` on sigil's own keys, judged by openssl and cryptography."""
from __future__ import annotations

import os
import stat

import pytest

from interop_helpers import (
    CLASSICAL, KEY_TYPES, OID_AES256_CBC, OID_HMAC_SHA256, OID_PBES2, OID_PBKDF2, OID_SCRYPT,
    PASSPHRASE, assert_clean_failure, check_crypto_key_type, der_of, dir_listing,
    encrypted_pkcs8_params, load_private_key, openssl, openssl_ok, openssl_pub_sha256, sigil,
    sigil_json, sigil_ok, spki_sha256,
)

KDFS = ["scrypt", "pbkdf2"]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def check_show(data: dict, kt, *, encrypted: bool, fmt: str = "PKCS#8") -> None:
    assert data["type"] == kt.name, data
    assert data["algorithm"] == kt.algorithm, data
    assert isinstance(data["size"], int) and not isinstance(data["size"], bool) and data["size"] > 0, data
    if kt.size is not None:
        assert data["size"] == kt.size, data
    assert data["encrypted"] is encrypted, data
    assert data["format"] == fmt, data
    fp = data["public_key_sha256"]
    assert isinstance(fp, str) and len(fp) == 64 and fp == fp.lower() and int(fp, 16) >= 0, data


# ---------------------------------------------------------------------------------- plain keys

@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_key_new_plain_pkcs8(made, kt):
    key = made.key(kt.name)
    label, der = der_of(key)
    assert label == "PRIVATE KEY"
    assert mode(key) == 0o600, oct(mode(key))
    priv = load_private_key(key)
    check_crypto_key_type(priv, kt)
    data = sigil_json("key", "show", key, "--json")
    check_show(data, kt, encrypted=False)
    assert data["public_key_sha256"] == spki_sha256(priv)


@pytest.mark.parametrize("kt", [k for k in KEY_TYPES if k.name.startswith("mldsa")], ids=str)
def test_mldsa_private_key_is_usable(made, kt):
    """cryptography signs with sigil's ML-DSA key and the public key verifies it."""
    priv = load_private_key(made.key(kt.name))
    sig = priv.sign(b"interop")
    priv.public_key().verify(sig, b"interop")


@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_reads_plain_key(made, kt):
    key = made.key(kt.name)
    openssl_ok("pkey", "-in", key, "-noout")
    data = sigil_json("key", "show", key, "--json")
    assert data["public_key_sha256"] == openssl_pub_sha256(key)


# ------------------------------------------------------------------------------ encrypted keys

@pytest.mark.parametrize("kdf", KDFS + ["default"])
@pytest.mark.parametrize("kt", KEY_TYPES, ids=str)
def test_key_new_encrypted_pkcs8(made, passfile, kt, kdf):
    key = made.key(kt.name, kdf)
    label, der = der_of(key)
    assert label == "ENCRYPTED PRIVATE KEY"
    assert mode(key) == 0o600, oct(mode(key))
    params = encrypted_pkcs8_params(der)
    assert params["scheme"] == OID_PBES2, params
    assert params["cipher"] == OID_AES256_CBC, params
    if kdf in ("scrypt", "default"):  # scrypt is the default
        assert params["kdf"] == OID_SCRYPT, params
    else:
        assert params["kdf"] == OID_PBKDF2, params
        assert params["prf"] == OID_HMAC_SHA256, params
    priv = load_private_key(key, PASSPHRASE)
    check_crypto_key_type(priv, kt)
    with pytest.raises(ValueError):
        load_private_key(key, "not the passphrase")
    data = sigil_json("key", "show", key, "--passphrase-file", passfile, "--json")
    check_show(data, kt, encrypted=True)
    assert data["public_key_sha256"] == spki_sha256(priv)


@pytest.mark.parametrize("kdf", KDFS)
@pytest.mark.parametrize("kt", CLASSICAL, ids=str)
def test_openssl_reads_encrypted_key(made, passfile, wrong_passfile, kt, kdf):
    key = made.key(kt.name, kdf)
    openssl_ok("pkey", "-in", key, "-noout", "-passin", f"file:{passfile}")
    bad = openssl("pkey", "-in", key, "-noout", "-passin", f"file:{wrong_passfile}")
    assert bad.returncode != 0, "openssl accepted a wrong passphrase: the key is not really encrypted"
    fp = openssl_pub_sha256(key, passfile=passfile)
    data = sigil_json("key", "show", key, "--passphrase-file", passfile, "--json")
    assert data["public_key_sha256"] == fp


def test_passphrase_env(tmp_path):
    key = tmp_path / "k.pem"
    env = {"SIGIL_TEST_PASSPHRASE": PASSPHRASE}
    sigil_ok("key", "new", "--out", key, "--passphrase-env", "SIGIL_TEST_PASSPHRASE", env=env)
    assert der_of(key)[0] == "ENCRYPTED PRIVATE KEY"
    priv = load_private_key(key, PASSPHRASE)
    data = sigil_json("key", "show", key, "--passphrase-env", "SIGIL_TEST_PASSPHRASE", "--json", env=env)
    assert data["type"] == "ec:P-256"  # the default key type
    assert data["encrypted"] is True
    assert data["public_key_sha256"] == spki_sha256(priv)


def test_passphrase_file_trailing_newline_like_openssl(tmp_path):
    """`echo secret > pw` is how people write passphrase files; openssl -passin file: reads the
    first line without its newline. A key sigil encrypts with such a file must open in openssl
    with the same file."""
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    key = tmp_path / "k.pem"
    sigil_ok("key", "new", "--out", key, "--passphrase-file", pw)
    openssl_ok("pkey", "-in", key, "-noout", "-passin", f"file:{pw}")
    sigil_json("key", "show", key, "--passphrase-file", pw, "--json")


def test_default_key_type_is_p256(tmp_path):
    key = tmp_path / "k.pem"
    sigil_ok("key", "new", "--out", key, "--no-passphrase")
    check_crypto_key_type(load_private_key(key), KEY_TYPES[0])


# ------------------------------------------------------------------------ file mode, overwrite

@pytest.mark.parametrize("umask", [0o000, 0o022])
@pytest.mark.parametrize("variant", ["plain", "encrypted"])
def test_key_mode_0600_whatever_the_umask(tmp_path, passfile, umask, variant):
    key = tmp_path / "k.pem"
    extra = ["--no-passphrase"] if variant == "plain" else ["--passphrase-file", passfile]
    sigil_ok("key", "new", "--out", key, *extra, umask=umask)
    assert mode(key) == 0o600, oct(mode(key))


def test_refuses_to_overwrite_without_force(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("keep me\n")
    os.chmod(key, 0o644)
    p = sigil("key", "new", "--out", key, "--no-passphrase")
    assert_clean_failure(p, code=1, mentions=[("exist", "--force", "overwrite")])
    assert key.read_text() == "keep me\n"
    assert dir_listing(tmp_path) == {"k.pem"}


def test_force_overwrites_and_sets_0600(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("old\n")
    os.chmod(key, 0o644)
    sigil_ok("key", "new", "--out", key, "--no-passphrase", "--force")
    assert der_of(key)[0] == "PRIVATE KEY"
    load_private_key(key)
    assert mode(key) == 0o600, oct(mode(key))
    assert dir_listing(tmp_path) == {"k.pem"}


# ------------------------------------------------------------------------------- bad requests

@pytest.mark.parametrize("bits", ["1024", "512", "2047"])
def test_small_rsa_refused(tmp_path, bits):
    key = tmp_path / "k.pem"
    p = sigil("key", "new", "--key-type", f"rsa:{bits}", "--out", key, "--no-passphrase")
    assert_clean_failure(p, code=2, mentions=[(bits, "2048")])
    assert dir_listing(tmp_path) == set()


@pytest.mark.parametrize("bad", ["ec:P-192", "dsa:2048", "rsa:abc", "mldsa:99", "ed448x", ""])
def test_unknown_key_type(tmp_path, bad):
    key = tmp_path / "k.pem"
    p = sigil("key", "new", "--key-type", bad, "--out", key, "--no-passphrase")
    assert_clean_failure(p, code=2, mentions=[("key type", "key-type", bad or "key")])
    assert dir_listing(tmp_path) == set()


def test_passphrase_choice_is_required(tmp_path):
    """Neither --no-passphrase nor a passphrase source: a usage error, not a silent plain key."""
    key = tmp_path / "k.pem"
    p = sigil("key", "new", "--out", key)
    assert p.returncode == 2, p.stderr
    assert dir_listing(tmp_path) == set()


def test_missing_passphrase_env_var(tmp_path):
    key = tmp_path / "k.pem"
    env = {k: v for k, v in os.environ.items() if k != "SIGIL_TEST_UNSET_VAR"}
    p = sigil("key", "new", "--out", key, "--passphrase-env", "SIGIL_TEST_UNSET_VAR", env=env)
    assert_clean_failure(p, mentions=["SIGIL_TEST_UNSET_VAR"])
    assert dir_listing(tmp_path) == set()


@pytest.mark.parametrize("where", ["missing-dir", "parent-is-file"])
def test_unwritable_out(tmp_path, where):
    if where == "missing-dir":
        out = tmp_path / "no" / "such" / "dir" / "k.pem"
    else:
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "k.pem"
    before = dir_listing(tmp_path)
    p = sigil("key", "new", "--out", out, "--no-passphrase")
    assert_clean_failure(p)
    assert dir_listing(tmp_path) == before


@pytest.mark.parametrize("kdf", KDFS)
def test_wrong_passphrase(made, wrong_passfile, kdf):
    key = made.key("ec:P-256", kdf)
    p = sigil("key", "show", key, "--passphrase-file", wrong_passfile, "--json")
    assert_clean_failure(p, code=2, mentions=[("passphrase", "password", "decrypt")])
    assert p.stdout.strip() == ""
