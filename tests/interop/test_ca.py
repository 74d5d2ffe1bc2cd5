"""`sigil ca init / sign / request approve` (issue 3): what the CA issues, judged by openssl 3.0,
Python cryptography 50, dilithium-py (ML-DSA) and pkilint.

Every test runs in its own SIGIL_HOME (a copy of one session-wide default hierarchy, or a fresh
one where the hierarchy itself is under test).
"""
from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca_helpers import (
    APPROVAL_PROFILES, DV_POLICY, OCSP_NOCHECK_OID, PROFILE_EKU, PROFILE_EKU_TEXT, PROFILE_KEY_TYPES,
    PUBLIC_URL, CAHome, dilithium_verifies, ext, ext_oid, fingerprint, load_cert, load_certs,
    openssl_text, openssl_verify, same_serial, text_ext_block, validity_days,
)
from interop_helpers import describe, load_csr, openssl, openssl_ok, run, sigil_ok, spki_der

MATRIX = [(p, kt) for p, kts in PROFILE_KEY_TYPES.items() for kt in kts]
# sub-ca's default (1825 days) equals the intermediate's own lifetime, so a sub-CA issued now
# would outlive its issuer: ask for one year.
EXTRA_ARGS = {"sub-ca": ["--days", "365"]}
DEFAULT_DAYS = {"tls-server": 90, "tls-client": 90, "email": 365, "code-signing": 365,
                "ocsp-signing": 30, "sub-ca": 365}
EXPECTED_SANS = {
    "tls-server": [x509.DNSName("www.example.com"), x509.DNSName("api.example.com")],
    "tls-client": [x509.DNSName("device-01.example.com")],
    "email": [x509.RFC822Name("alice@example.com")],
    "code-signing": None, "ocsp-signing": None, "sub-ca": None,
}


# The default intermediate is a TLS CA (EKU serverAuth, clientAuth), and relying parties chain
# EKU, so Sigil refuses S/MIME and code-signing certificates from it; those come from an
# intermediate made with `--eku none`. A sub-CA cannot come from the pathLen-0 intermediate.
ISSUER_FOR = {"email": "any-purpose", "code-signing": "any-purpose", "sub-ca": "root"}


def hierarchy(home: CAHome, tmp_path, issuer: str = "intermediate"):
    root_p = home.ca_pem("root", tmp_path / "root.pem")
    int_p = home.ca_pem(issuer, tmp_path / f"{issuer}.pem")
    return root_p, int_p, load_cert(root_p), load_cert(int_p)


def aki_matches_ski(child: x509.Certificate, issuer: x509.Certificate) -> None:
    aki = ext(child, x509.AuthorityKeyIdentifier)
    ski = ext(issuer, x509.SubjectKeyIdentifier)
    assert aki is not None and not aki.critical, "AKI missing or critical"
    assert ski is not None, "issuer has no SKI"
    assert aki.value.key_identifier == ski.value.digest, (
        f"AKI keyIdentifier {aki.value.key_identifier.hex()} != issuer SKI {ski.value.digest.hex()} "
        "(RFC 5280 4.2.1.1: the AKI keyIdentifier is the issuer certificate's SKI)")


def check_serial(cert: x509.Certificate) -> None:
    s = cert.serial_number
    assert s > 0, f"serial {s} is not positive"
    assert s.bit_length() >= 64, f"serial {s:x} has only {s.bit_length()} bits (BR: >= 64 bits of entropy)"
    assert (s.bit_length() + 8) // 8 <= 20, f"serial {s:x} is longer than 20 octets (RFC 5280 4.1.2.2)"


def check_revocation_urls(cert: x509.Certificate, issuer_name: str) -> None:
    cdp = ext(cert, x509.CRLDistributionPoints)
    assert cdp is not None, "no CRL distribution point"
    uris = [n.value for dp in cdp.value for n in (dp.full_name or [])]
    assert uris == [f"{PUBLIC_URL}/crl/{issuer_name}.crl"], uris
    aia = ext(cert, x509.AuthorityInformationAccess)
    assert aia is not None, "no authority information access"
    ocsp = [d.access_location.value for d in aia.value if d.access_method == AuthorityInformationAccessOID.OCSP]
    cai = [d.access_location.value for d in aia.value if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    assert ocsp == [f"{PUBLIC_URL}/ocsp"], ocsp
    assert cai == [f"{PUBLIC_URL}/ca/{issuer_name}.crt"], cai


# ------------------------------------------------------------------------ every profile x key type

@pytest.mark.parametrize("profile,kt", MATRIX, ids=[f"{p}-{k}" for p, k in MATRIX])
def test_profile_issuance_matrix(ca_home, leaf_csrs, tmp_path, profile, kt):
    csr_p = leaf_csrs.csr(profile, kt)
    leaf_p = tmp_path / "leaf.pem"
    issuer = ISSUER_FOR.get(profile, "intermediate")
    info = ca_home.issue(csr_p, profile, leaf_p, *EXTRA_ARGS.get(profile, []), "--issuer", issuer)
    root_p, int_p, root, inter = hierarchy(ca_home, tmp_path, issuer)

    # openssl builds and checks the chain
    good, out = openssl_verify(root_p, leaf_p, int_p)
    assert good, out

    # cryptography checks each link's signature
    leaf = load_cert(leaf_p)
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert leaf.issuer == inter.subject
    aki_matches_ski(leaf, inter)

    # the certificate is for the CSR's key
    assert spki_der(leaf.public_key()) == spki_der(load_csr(csr_p).public_key())
    assert leaf.version == x509.Version.v3
    check_serial(leaf)
    assert abs(validity_days(leaf) - DEFAULT_DAYS[profile]) <= 1, validity_days(leaf)
    assert leaf.not_valid_after_utc <= inter.not_valid_after_utc, "the certificate outlives its issuer"

    # extensions, as cryptography reads them
    bc = ext(leaf, x509.BasicConstraints)
    assert bc is not None and bc.critical
    ku = ext(leaf, x509.KeyUsage)
    assert ku is not None and ku.critical
    assert ku.value.digital_signature
    if profile == "sub-ca":
        assert bc.value.ca is True and bc.value.path_length == 0
        assert ku.value.key_cert_sign and ku.value.crl_sign
    else:
        assert bc.value.ca is False
        assert not ku.value.key_cert_sign and not ku.value.crl_sign
        if not kt.startswith("rsa:"):
            assert not ku.value.key_encipherment, "keyEncipherment on a non-RSA key"
    eku = ext(leaf, x509.ExtendedKeyUsage)
    if PROFILE_EKU[profile] is None:
        assert eku is None, f"unexpected EKU {list(eku.value)}"
    else:
        assert eku is not None and list(eku.value) == PROFILE_EKU[profile], eku
    ski = ext(leaf, x509.SubjectKeyIdentifier)
    assert ski is not None and not ski.critical and len(ski.value.digest) >= 16
    san = ext(leaf, x509.SubjectAlternativeName)
    if EXPECTED_SANS[profile] is None:
        assert san is None, list(san.value)
    else:
        assert san is not None and sorted(map(str, san.value)) == sorted(map(str, EXPECTED_SANS[profile]))
    if profile == "ocsp-signing":
        nocheck = ext_oid(leaf, OCSP_NOCHECK_OID)
        assert nocheck is not None, "no id-pkix-ocsp-nocheck"
        assert not nocheck.critical
    else:
        check_revocation_urls(leaf, issuer)
    if profile == "tls-server":
        pol = ext(leaf, x509.CertificatePolicies)
        assert pol is not None and DV_POLICY in [p.policy_identifier.dotted_string for p in pol.value]
        assert leaf.subject == x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]), \
            leaf.subject.rfc4514_string()

    # the same extensions, as openssl prints them
    text = openssl_text(leaf_p)
    assert "X509v3 Basic Constraints: critical" in text
    assert ("CA:TRUE, pathlen:0" if profile == "sub-ca" else "CA:FALSE") in text_ext_block(text, "X509v3 Basic Constraints")
    kub = text_ext_block(text, "X509v3 Key Usage: critical")
    assert kub and "Digital Signature" in kub, text
    if profile in PROFILE_EKU_TEXT:
        assert PROFILE_EKU_TEXT[profile] in (text_ext_block(text, "X509v3 Extended Key Usage") or ""), text
    else:
        assert "X509v3 Extended Key Usage" not in text
    assert "X509v3 Subject Key Identifier" in text
    assert "X509v3 Authority Key Identifier" in text
    if EXPECTED_SANS[profile]:
        assert "X509v3 Subject Alternative Name" in text
    if profile == "ocsp-signing":
        assert "OCSP No Check" in text
    else:
        assert f"URI:{PUBLIC_URL}/crl/{issuer}.crl" in (text_ext_block(text, "X509v3 CRL Distribution Points") or ""), text
        aia = text_ext_block(text, "Authority Information Access") or ""
        assert f"OCSP - URI:{PUBLIC_URL}/ocsp" in aia and f"CA Issuers - URI:{PUBLIC_URL}/ca/{issuer}.crt" in aia, text
    if profile == "tls-server":
        assert f"Policy: {DV_POLICY}" in text

    # the inventory has it
    listed = [c for c in ca_home.cert_list() if c["fingerprint"].replace(":", "").lower() == fingerprint(leaf)]
    assert len(listed) == 1, "issued certificate is not in `cert list`"
    assert same_serial(listed[0]["serial"], format(leaf.serial_number, "x"))
    assert listed[0]["profile"] == profile
    if profile in APPROVAL_PROFILES:
        assert listed[0]["request_id"] == info["request_id"]


# openssl's purpose checks include EKU chaining (a CA's EKU must allow the leaf's purpose).
PURPOSES = [("tls-server", "sslserver"), ("tls-client", "sslclient"), ("email", "smimesign"),
            ("ocsp-signing", "ocsphelper")]


@pytest.mark.parametrize("profile,purpose", PURPOSES, ids=[p for p, _ in PURPOSES])
def test_leaf_passes_openssl_purpose_check(ca_home, leaf_csrs, tmp_path, profile, purpose):
    """A certificate issued under a profile is usable for that purpose by an EKU-chaining
    relying party (openssl verify -purpose), with the default hierarchy."""
    leaf_p = tmp_path / "leaf.pem"
    issuer = ISSUER_FOR.get(profile, "intermediate")
    ca_home.issue(leaf_csrs.csr(profile, "ec:P-256"), profile, leaf_p, "--issuer", issuer)
    root_p, int_p, _, _ = hierarchy(ca_home, tmp_path, issuer)
    good, out = openssl_verify(root_p, leaf_p, int_p, purpose=purpose)
    assert good, out


def test_sub_ca_from_root_can_issue(ca_home, leaf_csrs, tmp_path):
    """A sub-CA issued by the root (sub-ca profile, approval) signs a leaf that openssl accepts."""
    key = leaf_csrs.key("ec:P-256")
    sub_p = tmp_path / "sub.pem"
    ca_home.issue(leaf_csrs.csr("sub-ca", "ec:P-256"), "sub-ca", sub_p, "--issuer", "root", "--days", "365")
    root_p = ca_home.ca_pem("root", tmp_path / "root.pem")
    good, out = openssl_verify(root_p, sub_p)
    assert good, out
    leaf_p = openssl_signed_leaf(tmp_path, sub_p, key)
    good, out = openssl_verify(root_p, leaf_p, sub_p)
    assert good, out


def test_sub_ca_under_pathlen0_intermediate_is_refused_or_usable(ca_home, leaf_csrs, tmp_path):
    """The default intermediate has pathLen 0, so a CA it certifies can never issue a certificate
    that validates. Sigil must refuse that (exit 1 with a reason), not issue a useless CA."""
    key = leaf_csrs.key("ec:P-256")
    sub_p = tmp_path / "sub.pem"
    p = ca_home.sign(leaf_csrs.csr("sub-ca", "ec:P-256"), "--profile", "sub-ca", "--days", "365",
                     "--out", sub_p, "--json")
    if p.returncode == 1:
        assert "path" in p.stderr.lower(), describe(p)
        return
    assert p.returncode == 3, describe(p)
    rid = json.loads(p.stdout)["request_id"]
    a = ca_home.approve(rid, "--out", sub_p)
    if a.returncode == 1:
        assert "path" in a.stderr.lower(), describe(a)
        return
    assert a.returncode == 0, describe(a)
    root_p, int_p, _, _ = hierarchy(ca_home, tmp_path)
    leaf_p = openssl_signed_leaf(tmp_path, sub_p, key)
    good, out = openssl_verify(root_p, leaf_p, int_p, sub_p)
    assert good, ("sigil issued a sub-CA under a pathLen-0 intermediate; nothing it signs validates:\n" + out)


def openssl_signed_leaf(tmp_path, ca_pem, ca_key):
    (tmp_path / "leaf.cnf").write_text(
        "[e]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    openssl_ok("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", tmp_path / "x.key", "-subj", "/CN=x.example.com", "-out", tmp_path / "x.csr")
    out = tmp_path / "x.pem"
    openssl_ok("x509", "-req", "-in", tmp_path / "x.csr", "-CA", ca_pem, "-CAkey", ca_key, "-days", "30",
               "-extfile", tmp_path / "leaf.cnf", "-extensions", "e", "-out", out)
    return out


def test_chain_outputs(ca_home, leaf_csrs, tmp_path):
    """--chain-out is issuer first; --fullchain-out is leaf + chain; `ca show --chain` matches."""
    leaf_p, chain_p, full_p = tmp_path / "leaf.pem", tmp_path / "chain.pem", tmp_path / "full.pem"
    p = ca_home.sign(leaf_csrs.csr("tls-server", "ec:P-256"), "--out", leaf_p, "--chain-out", chain_p,
                     "--fullchain-out", full_p)
    assert p.returncode == 0, describe(p)
    root_p, int_p, root, inter = hierarchy(ca_home, tmp_path)
    leaf = load_cert(leaf_p)
    chain = load_certs(chain_p)
    assert [fingerprint(c) for c in chain][:1] == [fingerprint(inter)]
    assert [fingerprint(c) for c in chain] in ([fingerprint(inter)], [fingerprint(inter), fingerprint(root)])
    assert [fingerprint(c) for c in load_certs(full_p)] == [fingerprint(leaf)] + [fingerprint(c) for c in chain]
    shown = load_certs_text(ca_home.ok("ca", "show", "intermediate", "--chain").stdout)
    assert [fingerprint(c) for c in shown] == [fingerprint(inter), fingerprint(root)]
    good, out = openssl_verify(root_p, leaf_p, chain_p)
    assert good, out


def load_certs_text(text: str) -> list:
    from interop_helpers import pem_blocks
    return [x509.load_der_x509_certificate(d) for label, d in pem_blocks(text) if label == "CERTIFICATE"]


# ------------------------------------------------------------------------ the default hierarchy

def test_default_root_and_intermediate(ca_template, tmp_path):
    root_p, int_p, root, inter = hierarchy(ca_template, tmp_path)
    good, out = openssl_verify(root_p, int_p)
    assert good, out
    inter.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    for c in (root, inter):
        check_serial(c)
        assert c.version == x509.Version.v3
    # root: ec:P-384, self-signed, ~10 years, CA without a path length
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey) and root.public_key().curve.name == "secp384r1"
    assert root.issuer == root.subject
    assert 3649 <= validity_days(root) <= 3651, validity_days(root)
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length is None
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert ext(root, x509.SubjectKeyIdentifier) is not None
    # intermediate: ec:P-256, ~5 years, pathLen 0, signed by the root
    assert isinstance(inter.public_key(), ec.EllipticCurvePublicKey) and inter.public_key().curve.name == "secp256r1"
    assert inter.issuer == root.subject
    assert 1824 <= validity_days(inter) <= 1826, validity_days(inter)
    bc = ext(inter, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is True and bc.value.path_length == 0
    ku = ext(inter, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    eku = ext(inter, x509.ExtendedKeyUsage)
    assert eku is not None and set(eku.value) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    aki_matches_ski(inter, root)
    assert inter.not_valid_after_utc <= root.not_valid_after_utc
    # openssl prints the same
    text = openssl_text(int_p)
    assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
    # ca list / show agree with the files
    cas = {c["name"]: c for c in ca_template.json("ca", "list")}
    assert cas["root"]["key_type"] == "ec:P-384" and cas["intermediate"]["key_type"] == "ec:P-256"
    assert cas["intermediate"]["parent"] == "root"
    assert cas["root"]["fingerprint"].replace(":", "").lower() == fingerprint(root)
    assert cas["intermediate"]["fingerprint"].replace(":", "").lower() == fingerprint(inter)
    assert same_serial(cas["intermediate"]["serial"], format(inter.serial_number, "x"))


def test_ca_init_short_passphrase_refused(tmp_path):
    home = CAHome(tmp_path / "home")
    p = home.run("ca", "init", "--passphrase-env", "SHORTPW", env={"SHORTPW": "1234567"})
    assert p.returncode != 0, describe(p)
    assert not home.run("ca", "list", "--json").stdout.strip().strip("[]").strip(), "a CA was created anyway"


# ------------------------------------------------------------------------ CAs of other key types

CLASSICAL_CA = [("rsa:3072", "rsa:3072", "tls-server", "ec:P-256"),
                ("ed25519", "ed25519", "tls-client", "ed25519"),
                ("ec:P-256", "rsa:3072", "tls-server", "rsa:2048")]


@pytest.mark.parametrize("root_kt,int_kt,profile,leaf_kt", CLASSICAL_CA, ids=[f"{a}-{b}" for a, b, _, _ in CLASSICAL_CA])
def test_classical_ca_key_types(tmp_path, leaf_csrs, root_kt, int_kt, profile, leaf_kt):
    home = CAHome(tmp_path / "home")
    r = home.init_root("--key-type", root_kt)
    i = home.init_intermediate("--key-type", int_kt)
    assert r["key_type"] == root_kt and i["key_type"] == int_kt
    leaf_p = tmp_path / "leaf.pem"
    home.issue(leaf_csrs.csr(profile, leaf_kt), profile, leaf_p)
    root_p, int_p, root, inter = hierarchy(home, tmp_path)
    good, out = openssl_verify(root_p, leaf_p, int_p)
    assert good, out
    leaf = load_cert(leaf_p)
    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)
    leaf.verify_directly_issued_by(inter)
    aki_matches_ski(inter, root)
    aki_matches_ski(leaf, inter)
    want = {"rsa:3072": rsa.RSAPublicKey, "ed25519": ed25519.Ed25519PublicKey, "ec:P-256": ec.EllipticCurvePublicKey}
    assert isinstance(root.public_key(), want[root_kt]) and isinstance(inter.public_key(), want[int_kt])


def _flip_sig(cert: x509.Certificate) -> x509.Certificate:
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the signature BIT STRING (raw bytes for ML-DSA)
    return x509.load_der_x509_certificate(bytes(der))


def test_mldsa_hierarchy(tmp_path, leaf_csrs):
    """mldsa:87 root -> mldsa:65 intermediate -> mldsa:44 tls-client leaf. Judges: cryptography 50
    (verify_directly_issued_by) and dilithium-py over tbsCertificate; a flipped signature bit must
    fail both (so the judges are not no-ops)."""
    home = CAHome(tmp_path / "home")
    assert home.init_root("--key-type", "mldsa:87")["key_type"] == "mldsa:87"
    assert home.init_intermediate("--key-type", "mldsa:65")["key_type"] == "mldsa:65"
    csr_p = tmp_path / "leaf.csr"
    sigil_ok("csr", "new", "--key", leaf_csrs.made.key("mldsa:44"), "--cn", "device-01.example.com", "--out", csr_p)
    leaf_p = tmp_path / "leaf.pem"
    home.issue(csr_p, "tls-client", leaf_p)
    root_p, int_p, root, inter = hierarchy(home, tmp_path)
    leaf = load_cert(leaf_p)
    assert isinstance(root.public_key(), mldsa.MLDSA87PublicKey)
    assert isinstance(inter.public_key(), mldsa.MLDSA65PublicKey)
    assert isinstance(leaf.public_key(), mldsa.MLDSA44PublicKey)
    sig_oids = [c.signature_algorithm_oid.dotted_string for c in (root, inter, leaf)]
    assert sig_oids == ["2.16.840.1.101.3.4.3.19", "2.16.840.1.101.3.4.3.19", "2.16.840.1.101.3.4.3.18"]
    for child, issuer in ((root, root), (inter, root), (leaf, inter)):
        child.verify_directly_issued_by(issuer)
        assert dilithium_verifies(child, issuer)
        bad = _flip_sig(child)
        with pytest.raises(Exception):
            bad.verify_directly_issued_by(issuer)
        assert not dilithium_verifies(bad, issuer)
    aki_matches_ski(inter, root)
    aki_matches_ski(leaf, inter)
    ext_leaf = ext(leaf, x509.ExtendedKeyUsage)
    assert list(ext_leaf.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = ext(leaf, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment


def test_mixed_mldsa_root_ec_intermediate(tmp_path, leaf_csrs):
    """ML-DSA-87 root -> ec:P-256 intermediate -> ec:P-256 and ML-DSA-44 leaves."""
    home = CAHome(tmp_path / "home")
    home.init_root("--key-type", "mldsa:87")
    home.init_intermediate("--key-type", "ec:P-256")
    root_p, int_p, root, inter = hierarchy(home, tmp_path)
    assert isinstance(inter.public_key(), ec.EllipticCurvePublicKey)
    assert inter.signature_algorithm_oid.dotted_string == "2.16.840.1.101.3.4.3.19"
    inter.verify_directly_issued_by(root)
    assert dilithium_verifies(inter, root)
    assert not dilithium_verifies(_flip_sig(inter), root)
    aki_matches_ski(inter, root)

    ec_leaf = tmp_path / "ec-leaf.pem"
    home.issue(leaf_csrs.csr("tls-server", "ec:P-256"), "tls-server", ec_leaf)
    leaf = load_cert(ec_leaf)
    leaf.verify_directly_issued_by(inter)
    assert leaf.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"
    # openssl 3.0 cannot read the ML-DSA root, but checks the EC link with the intermediate as anchor
    p = openssl("verify", "-partial_chain", "-CAfile", int_p, ec_leaf)
    assert p.returncode == 0 and p.stdout.strip().endswith("OK"), describe(p)

    csr_p = tmp_path / "ml.csr"
    sigil_ok("csr", "new", "--key", leaf_csrs.made.key("mldsa:44"), "--cn", "device-02.example.com", "--out", csr_p)
    ml_leaf = tmp_path / "ml-leaf.pem"
    home.issue(csr_p, "tls-client", ml_leaf)
    leaf2 = load_cert(ml_leaf)
    assert isinstance(leaf2.public_key(), mldsa.MLDSA44PublicKey)
    leaf2.verify_directly_issued_by(inter)


# ------------------------------------------------------------------------ pkilint

def pkilint(tool: str, *args) -> tuple[int, str]:
    import os
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), tool)
    if not os.path.exists(exe):
        pytest.fail(f"{exe} not found: pip install pkilint (tests/interop/requirements.txt)")
    p = run([exe, *args])
    return p.returncode, f"$ {tool} {' '.join(map(str, args))}\nexit {p.returncode}\n{p.stdout}{p.stderr}"


def assert_no_lint_errors(code: int, out: str) -> None:
    assert "(ERROR)" not in out and "(FATAL)" not in out, out
    assert code == 0, out


@pytest.fixture
def lint_home(tmp_path) -> CAHome:
    """A fresh default hierarchy with public-looking subjects and URLs."""
    home = CAHome(tmp_path / "home", public_url=PUBLIC_URL)
    home.init_root("--subject", "/C=US/O=Example Corp/CN=Example Root CA")
    home.init_intermediate("--subject", "/C=US/O=Example Corp/CN=Example TLS Issuing CA")
    return home


@pytest.mark.parametrize("kt", PROFILE_KEY_TYPES["tls-server"])
def test_pkilint_tls_server_leaf(lint_home, leaf_csrs, tmp_path, kt):
    leaf_p = tmp_path / "leaf.pem"
    lint_home.issue(leaf_csrs.csr("tls-server", kt), "tls-server", leaf_p)
    assert_no_lint_errors(*pkilint("lint_cabf_serverauth_cert", "lint", "-t", "DV-FINAL-CERTIFICATE", "-s", "ERROR", leaf_p))
    code, out = pkilint("lint_cabf_serverauth_cert", "lint", "-d", "-o", "-s", "ERROR", leaf_p)
    assert "DV-FINAL-CERTIFICATE" in out, out
    assert_no_lint_errors(code, out)
    assert_no_lint_errors(*pkilint("lint_pkix_cert", "lint", "-s", "ERROR", leaf_p))
    int_p = lint_home.ca_pem("intermediate", tmp_path / "intermediate.pem")
    assert_no_lint_errors(*pkilint("lint_pkix_signer_signee_cert_chain", "lint", "-s", "ERROR", int_p, leaf_p))


def test_pkilint_root_and_intermediate(lint_home, tmp_path):
    root_p, int_p, _, _ = hierarchy(lint_home, tmp_path)
    assert_no_lint_errors(*pkilint("lint_cabf_serverauth_cert", "lint", "-t", "ROOT-CA", "-s", "ERROR", root_p))
    code, out = pkilint("lint_cabf_serverauth_cert", "lint", "-d", "-o", "-s", "ERROR", root_p)
    assert "ROOT-CA" in out, out
    assert_no_lint_errors(code, out)
    code, out = pkilint("lint_cabf_serverauth_cert", "lint", "-d", "-o", "-s", "ERROR", int_p)
    assert "TLS-CA" in out, out  # detected as a TLS issuing CA
    assert_no_lint_errors(code, out)
    assert_no_lint_errors(*pkilint("lint_cabf_serverauth_cert", "lint", "-t", "INTERNAL-UNCONSTRAINED-TLS-CA",
                                   "-s", "ERROR", int_p))
    assert_no_lint_errors(*pkilint("lint_pkix_cert", "lint", "-s", "ERROR", root_p))
    assert_no_lint_errors(*pkilint("lint_pkix_cert", "lint", "-s", "ERROR", int_p))
    assert_no_lint_errors(*pkilint("lint_pkix_signer_signee_cert_chain", "lint", "-s", "ERROR", root_p, int_p))


def test_pkilint_gate_is_live(tmp_path):
    """Control: the same gate fails an openssl self-signed certificate with an internal name, so a
    pass above is pkilint's verdict and not a broken invocation."""
    out = tmp_path / "bad.pem"
    openssl_ok("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", tmp_path / "bad.key", "-subj", "/CN=host.internal", "-days", "825", "-out", out)
    code, text = pkilint("lint_cabf_serverauth_cert", "lint", "-t", "DV-FINAL-CERTIFICATE", "-s", "ERROR", out)
    assert code > 0 and "(ERROR)" in text, text


def test_tls_intermediate_refuses_email_with_a_reason(ca_home, leaf_csrs, tmp_path):
    """EKU chaining: the default (TLS) intermediate cannot certify S/MIME keys; Sigil says why."""
    p = ca_home.sign(leaf_csrs.csr("email", "ec:P-256"), "--profile", "email", "--issuer", "intermediate", "--out", tmp_path / "leaf.pem")
    assert p.returncode == 1, describe(p)
    assert "may only issue serverAuth, clientAuth" in p.stderr, describe(p)
    assert not (tmp_path / "leaf.pem").exists()
