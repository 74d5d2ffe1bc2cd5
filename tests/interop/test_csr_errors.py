"""`sigil csr new` failures: non-zero exit, one clear stderr line, and NO file left behind."""
from __future__ import annotations

import pytest

from interop_helpers import assert_clean_failure, dir_listing, sigil, sigil_ok

NEW_KEY = ["--key-type", "ec:P-256", "--no-passphrase"]


def csr_new(tmp_path, *args):
    return sigil("csr", "new", *args, cwd=tmp_path)


@pytest.mark.parametrize("subject", [
    "CN=www.example.com",            # no leading slash
    "/CN",                           # no '='
    "/FOO=bar/CN=www.example.com",   # unknown attribute
    "/C=USA/CN=www.example.com",     # country is two letters
])
def test_bad_subject_leaves_nothing(tmp_path, subject):
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", tmp_path / "k.pem", "--subject", subject,
                "--out", tmp_path / "c.csr")
    assert_clean_failure(p, mentions=[("subject", subject.strip("/") or "subject")])
    assert dir_listing(tmp_path) == set()


@pytest.mark.parametrize("san", ["FOO:bar", "IP:999.1.1.1", "IP:not-an-ip", "DNS:", "www.example.com"])
def test_bad_san_leaves_nothing(tmp_path, san):
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", tmp_path / "k.pem", "--cn", "www.example.com",
                "--san", san, "--out", tmp_path / "c.csr")
    assert_clean_failure(p, mentions=[("san", san.split(":")[0] or "san", "subject alternative")])
    assert dir_listing(tmp_path) == set()


@pytest.mark.parametrize("where", ["missing-dir", "parent-is-file"])
def test_unwritable_csr_out_leaves_no_key(tmp_path, where):
    if where == "missing-dir":
        out = tmp_path / "no" / "such" / "c.csr"
    else:
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "c.csr"
    before = dir_listing(tmp_path)
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", tmp_path / "k.pem", "--cn", "www.example.com", "--out", out)
    assert_clean_failure(p)
    assert dir_listing(tmp_path) == before, "a key (or temp file) was left behind"


def test_unwritable_key_out_leaves_no_csr(tmp_path):
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", tmp_path / "no" / "such" / "k.pem",
                "--cn", "www.example.com", "--out", tmp_path / "c.csr")
    assert_clean_failure(p)
    assert dir_listing(tmp_path) == set()


def test_existing_csr_without_force(tmp_path):
    csr = tmp_path / "c.csr"
    csr.write_text("keep me\n")
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", tmp_path / "k.pem", "--cn", "www.example.com", "--out", csr)
    assert_clean_failure(p, code=1, mentions=[("exist", "--force", "overwrite")])
    assert csr.read_text() == "keep me\n"
    assert dir_listing(tmp_path) == {"c.csr"}


def test_existing_key_out_without_force(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("keep me\n")
    p = csr_new(tmp_path, *NEW_KEY, "--key-out", key, "--cn", "www.example.com", "--out", tmp_path / "c.csr")
    assert_clean_failure(p, code=1, mentions=[("exist", "--force", "overwrite")])
    assert key.read_text() == "keep me\n"
    assert dir_listing(tmp_path) == {"k.pem"}


def test_force_overwrites_both(tmp_path):
    key, csr = tmp_path / "k.pem", tmp_path / "c.csr"
    key.write_text("old\n")
    csr.write_text("old\n")
    sigil_ok("csr", "new", *NEW_KEY, "--key-out", key, "--cn", "www.example.com", "--out", csr, "--force")
    assert "PRIVATE KEY" in key.read_text() and "CERTIFICATE REQUEST" in csr.read_text()
    assert dir_listing(tmp_path) == {"k.pem", "c.csr"}


def test_wrong_passphrase_for_key_leaves_no_csr(made, tmp_path, wrong_passfile):
    key = made.key("ec:P-256", "scrypt")
    p = csr_new(tmp_path, "--key", key, "--passphrase-file", wrong_passfile, "--cn", "www.example.com",
                "--out", tmp_path / "c.csr")
    assert_clean_failure(p, code=2, mentions=[("passphrase", "password", "decrypt")])
    assert dir_listing(tmp_path) == set()


def test_missing_key_file(tmp_path):
    p = csr_new(tmp_path, "--key", tmp_path / "nope.pem", "--cn", "www.example.com", "--out", tmp_path / "c.csr")
    assert_clean_failure(p, mentions=["nope.pem"])
    assert dir_listing(tmp_path) == set()


def test_small_rsa_refused(tmp_path):
    p = csr_new(tmp_path, "--key-type", "rsa:1024", "--no-passphrase", "--key-out", tmp_path / "k.pem",
                "--cn", "www.example.com", "--out", tmp_path / "c.csr")
    assert_clean_failure(p, code=2, mentions=[("1024", "2048")])
    assert dir_listing(tmp_path) == set()


def test_unknown_key_type(tmp_path):
    p = csr_new(tmp_path, "--key-type", "ec:P-192", "--no-passphrase", "--key-out", tmp_path / "k.pem",
                "--cn", "www.example.com", "--out", tmp_path / "c.csr")
    assert_clean_failure(p, code=2, mentions=[("ec:P-192", "key type", "key-type")])
    assert dir_listing(tmp_path) == set()


def test_key_type_needs_key_out(tmp_path):
    """A new key that would be written nowhere is a usage error, not a lost key."""
    p = csr_new(tmp_path, "--key-type", "ec:P-256", "--no-passphrase", "--cn", "www.example.com",
                "--out", tmp_path / "c.csr")
    assert p.returncode == 2, p.stderr
    assert dir_listing(tmp_path) == set()
