"""An offline root held by openssl: `sigil ca csr` -> `openssl x509 -req` -> `sigil ca import`
(issue 3). The root and its signature are openssl's; what sigil then issues is judged by
`openssl verify` and cryptography."""
from __future__ import annotations

import pytest
from cryptography import x509

from ca_helpers import PW_ENV, CAHome, fingerprint, load_cert, openssl_verify
from interop_helpers import describe, load_csr, openssl_ok, sigil_ok, spki_der

INT_SUBJECT = "/C=US/O=Example Corp/CN=Example Issuing CA"

CA_EXT = ("[ca]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
LEAF_EXT = ("[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")


class OfflineRoot:
    def __init__(self, d, curve="P-384"):
        self.d = d
        self.key = d / "root.key"
        self.pem = d / "root.pem"
        openssl_ok("req", "-x509", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-nodes",
                   "-keyout", self.key, "-out", self.pem, "-days", "3650", "-sha384",
                   "-subj", "/C=US/O=Example Corp/CN=Example Offline Root",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        (d / "ca.cnf").write_text(CA_EXT)
        (d / "leaf.cnf").write_text(LEAF_EXT)

    def sign(self, csr, out, ext="ca", days=1825):
        openssl_ok("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key, "-CAcreateserial",
                   "-days", str(days), "-sha384", "-extfile", self.d / f"{ext}.cnf", "-extensions", ext,
                   "-out", out)
        return out


@pytest.fixture
def offline(tmp_path):
    home = CAHome(tmp_path / "home")
    root = OfflineRoot(tmp_path)
    csr = tmp_path / "int.csr"
    p = home.run("ca", "csr", "--subject", INT_SUBJECT, "--out", csr, "--passphrase-env", PW_ENV)
    assert p.returncode == 0, describe(p)
    return home, root, csr


def test_ca_csr_is_a_valid_request(offline):
    home, root, csr = offline
    p = openssl_ok("req", "-in", csr, "-noout", "-verify", "-subject", "-nameopt", "compat")
    assert "verify OK" in p.stdout + p.stderr, describe(p)
    assert "subject=" + INT_SUBJECT in p.stdout
    cas = {c["name"]: c for c in home.json("ca", "list")}
    assert cas["intermediate"]["status"] == "pending", cas
    # a pending CA cannot issue
    made = home.path.parent / "leaf.csr"
    sigil_ok("csr", "new", "--key-type", "ec:P-256", "--key-out", home.path.parent / "leaf.key", "--no-passphrase",
             "--cn", "www.example.com", "--out", made)
    p = home.sign(made, "--out", home.path.parent / "leaf.pem")
    assert p.returncode != 0, "a pending intermediate issued a certificate" + describe(p)
    assert not (home.path.parent / "leaf.pem").exists()


def test_offline_root_import_then_issue(offline, tmp_path):
    home, root, csr = offline
    int_p = root.sign(csr, tmp_path / "int.pem")
    p = home.run("ca", "import", "--cert", int_p, "--chain", root.pem, "--passphrase-env", PW_ENV, "--json")
    assert p.returncode == 0, describe(p)
    cas = {c["name"]: c for c in home.json("ca", "list")}
    assert cas["intermediate"]["status"] == "active", cas
    assert cas["intermediate"]["fingerprint"].replace(":", "").lower() == fingerprint(load_cert(int_p))

    leaf_csr, leaf_p, chain_p = tmp_path / "leaf.csr", tmp_path / "leaf.pem", tmp_path / "chain.pem"
    sigil_ok("csr", "new", "--key-type", "ec:P-256", "--key-out", tmp_path / "leaf.key", "--no-passphrase",
             "--cn", "www.example.com", "--san", "DNS:www.example.com", "--out", leaf_csr)
    p = home.sign(leaf_csr, "--out", leaf_p, "--chain-out", chain_p)
    assert p.returncode == 0, describe(p)

    good, out = openssl_verify(root.pem, leaf_p, int_p)
    assert good, out
    good, out = openssl_verify(root.pem, leaf_p, chain_p)
    assert good, out
    leaf, inter, r = load_cert(leaf_p), load_cert(int_p), load_cert(root.pem)
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(r)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki == ski, (f"leaf AKI {aki.hex()} != imported intermediate's SKI {ski.hex()}: the AKI must copy "
                        "the issuer certificate's SKI (RFC 5280 4.2.1.1), not recompute it")
    # the imported intermediate certificate is the one sigil hands out
    shown = home.ok("ca", "show", "intermediate", "--pem").stdout
    assert fingerprint(x509.load_pem_x509_certificate(shown.encode())) == fingerprint(inter)


def test_import_refuses_certificate_for_another_key(offline, tmp_path):
    home, root, csr = offline
    other_csr = tmp_path / "other.csr"
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", tmp_path / "other.key", "-subj", INT_SUBJECT, "-out", other_csr)
    wrong = root.sign(other_csr, tmp_path / "wrong.pem")
    p = home.run("ca", "import", "--cert", wrong, "--chain", root.pem, "--passphrase-env", PW_ENV)
    assert p.returncode == 1, describe(p)
    assert "key" in p.stderr.lower(), describe(p)
    assert "Fatal error" not in p.stderr
    cas = {c["name"]: c for c in home.json("ca", "list")}
    assert cas["intermediate"]["status"] == "pending", cas


def test_import_refuses_non_ca_certificate(offline, tmp_path):
    home, root, csr = offline
    leafish = root.sign(csr, tmp_path / "nonca.pem", ext="leaf")
    assert spki_der(load_cert(leafish).public_key()) == spki_der(load_csr(csr).public_key())
    p = home.run("ca", "import", "--cert", leafish, "--chain", root.pem, "--passphrase-env", PW_ENV)
    assert p.returncode == 1, describe(p)
    assert any(w in p.stderr.lower() for w in ("not a ca", "basicconstraints", "ca:true")), describe(p)
    cas = {c["name"]: c for c in home.json("ca", "list")}
    assert cas["intermediate"]["status"] == "pending", cas


def test_import_refuses_chain_that_did_not_sign_it(offline, tmp_path):
    home, root, csr = offline
    int_p = root.sign(csr, tmp_path / "int.pem")
    (tmp_path / "other").mkdir()
    other = OfflineRoot(tmp_path / "other")
    p = home.run("ca", "import", "--cert", int_p, "--chain", other.pem, "--passphrase-env", PW_ENV)
    assert p.returncode == 1, describe(p)
    cas = {c["name"]: c for c in home.json("ca", "list")}
    assert cas["intermediate"]["status"] == "pending", cas
