"""`sigil csr new --template` and `sigil csr lint`."""
from __future__ import annotations

import json

import pytest

from interop_helpers import (
    der_of, dir_listing, flip_signature_bit, load_csr, openssl_ok, openssl_req_verify, sigil,
    sigil_json, sigil_ok, to_pem,
)

TEMPLATE = """\
subject:
  fixed: {O: Example Corp, C: US}   # applied when absent; a different given value is a violation
  required: [CN, O]
key_types: [ec:P-256, ec:P-384, rsa:3072, rsa:4096]
san:
  required_suffixes: [.example.com]  # every DNS SAN must be under one
  allowed_types: [DNS, IP]
  min: 1
"""


@pytest.fixture
def template(tmp_path):
    t = tmp_path / "template.yaml"
    t.write_text(TEMPLATE)
    return t


def test_template_violations_are_all_listed(tmp_path, template):
    p = sigil("csr", "new", "--template", template, "--key-type", "rsa:2048", "--no-passphrase",
              "--key-out", tmp_path / "k.pem", "--cn", "www.example.com", "--org", "Other Corp",
              "--san", "DNS:www.other.org", "--san", "email:a@b.c", "--out", tmp_path / "c.csr")
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert dir_listing(tmp_path) == {"template.yaml"}, "no key and no CSR may be written"
    err = p.stderr
    missing = []
    if "rsa:2048" not in err:
        missing.append("key type rsa:2048 not allowed")
    if "www.other.org" not in err:
        missing.append("DNS SAN www.other.org not under .example.com")
    if "Other Corp" not in err:
        missing.append("O=Other Corp differs from the fixed O=Example Corp")
    if "email" not in err.lower() and "a@b.c" not in err:
        missing.append("SAN type email not allowed")
    assert not missing, f"stderr does not name: {missing}\n--- stderr ---\n{err}"


def test_template_required_subject_and_san_min(made, tmp_path, template):
    p = sigil("csr", "new", "--template", template, "--key", made.key("ec:P-256"), "--org", "Example Corp",
              "--out", tmp_path / "c.csr")
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert dir_listing(tmp_path) == {"template.yaml"}
    assert "CN" in p.stderr, p.stderr
    assert "san" in p.stderr.lower() or "subject alternative" in p.stderr.lower(), p.stderr


def test_template_rejects_existing_key_of_wrong_type(ossl, tmp_path, template):
    p = sigil("csr", "new", "--template", template, "--key", ossl.key("rsa:2048"), "--cn", "www.example.com",
              "--out", tmp_path / "c.csr")
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "rsa:2048" in p.stderr, p.stderr
    assert dir_listing(tmp_path) == {"template.yaml"}


def test_template_applies_fixed_fields(made, tmp_path, template):
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--template", template, "--key", made.key("ec:P-256"), "--cn", "www.example.com",
             "--out", csr)
    data = sigil_json("csr", "show", csr, "--json")
    parts = set(data["subject"].strip("/").split("/"))
    assert {"CN=www.example.com", "O=Example Corp", "C=US"} <= parts, data["subject"]
    assert data["sans"] == ["DNS:www.example.com"]
    assert openssl_req_verify(csr)[0]
    # and lint with the same template is clean
    lint = sigil("csr", "lint", csr, "--template", template, "--json")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert json.loads(lint.stdout)["errors"] == 0


def test_template_same_fixed_value_is_fine(made, tmp_path, template):
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--template", template, "--key", made.key("ec:P-384"), "--cn", "api.example.com",
             "--org", "Example Corp", "--country", "US", "--san", "IP:10.0.0.1", "--out", csr)
    c = load_csr(csr)
    assert c.is_signature_valid


# ------------------------------------------------------------------------------------- lint

def check_lint_shape(data):
    assert isinstance(data["errors"], int) and isinstance(data["warnings"], int), data
    assert isinstance(data["findings"], list), data
    for f in data["findings"]:
        assert f["severity"] in ("error", "warning", "info"), f
        assert isinstance(f["code"], str) and f["code"], f
        assert isinstance(f["message"], str) and f["message"], f
    assert data["errors"] == sum(f["severity"] == "error" for f in data["findings"]), data
    assert data["warnings"] == sum(f["severity"] == "warning" for f in data["findings"]), data


def test_lint_clean_csr(made, tmp_path):
    csr = tmp_path / "c.csr"
    sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--cn", "www.example.com", "--org", "Example Corp",
             "--country", "US", "--out", csr)
    p = sigil("csr", "lint", csr, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(p.stdout)
    check_lint_shape(data)
    assert data["errors"] == 0, data


def test_lint_peer_csr_against_template(ossl, tmp_path, template):
    """An openssl-made CSR that breaks the template three ways: exit 1, an error for each."""
    csr = tmp_path / "c.csr"
    openssl_ok("req", "-new", "-batch", "-key", ossl.key("ec:P-256"), "-subj", "/O=Other Corp/CN=www.other.org",
               "-addext", "subjectAltName=DNS:www.other.org,email:a@b.c", "-out", csr)
    p = sigil("csr", "lint", csr, "--template", template, "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    data = json.loads(p.stdout)
    check_lint_shape(data)
    assert data["errors"] >= 3, data
    text = json.dumps(data)
    assert "www.other.org" in text and "Other Corp" in text, data


def test_lint_tampered_signature_is_an_error(made, tmp_path):
    _, csr = made.csr("ec:P-256")
    bad = tmp_path / "bad.csr"
    bad.write_text(to_pem("CERTIFICATE REQUEST", flip_signature_bit(der_of(csr)[1])))
    p = sigil("csr", "lint", bad, "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    data = json.loads(p.stdout)
    check_lint_shape(data)
    assert data["errors"] >= 1
