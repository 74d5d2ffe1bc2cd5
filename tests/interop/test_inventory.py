"""The certificate inventory (issue 3): `sigil cert list` filters and `sigil cert show`, checked
against the certificate files themselves (read by cryptography)."""
from __future__ import annotations

import datetime as dt
import shutil

import pytest

from ca_helpers import CAHome, fingerprint, load_cert, now_utc, same_serial, serial_hex
from interop_helpers import describe, openssl_ok, sigil_ok


def fp_norm(s: str) -> str:
    return s.replace(":", "").lower()


def fps(entries) -> set:
    return {fp_norm(e["fingerprint"]) for e in entries}


class Issued:
    def __init__(self, home: CAHome, tmp_path, made):
        self.home, self.tmp, self.made = home, tmp_path, made
        self.certs = {}

    def issue(self, label, profile, kt, names, *extra):
        c = self.tmp / f"{label}.csr"
        sigil_ok("csr", "new", "--key", self.made.key(kt), *names, "--out", c)
        out = self.tmp / f"{label}.pem"
        p = self.home.sign(c, "--profile", profile, "--out", out, *extra)
        assert p.returncode == 0, describe(p)
        self.certs[label] = load_cert(out)
        return self.certs[label]

    def fp(self, *labels) -> set:
        return {fingerprint(self.certs[l]) for l in labels}


@pytest.fixture
def inventory(ca_home, tmp_path, made):
    inv = Issued(ca_home, tmp_path, made)
    inv.issue("www", "tls-server", "ec:P-256", ["--cn", "www.example.com"], "--owner", "team-a", "--tag", "web",
              "--tag", "prod")
    inv.issue("api", "tls-server", "ec:P-256", ["--cn", "api.example.com"], "--owner", "team-b", "--days", "10")
    inv.issue("dev", "tls-client", "ec:P-256", ["--cn", "device-01.example.com"], "--owner", "team-a")
    inv.issue("alice", "email", "ec:P-256", ["--cn", "Alice Example", "--san", "email:alice@example.com"])
    cas = {c["name"]: c for c in ca_home.json("ca", "list")}
    inv.ca_fps = {fp_norm(c["fingerprint"]) for c in cas.values()}
    return inv


def test_list_all_and_fields(inventory):
    home = inventory.home
    entries = home.cert_list()
    assert fps(entries) == inventory.fp("www", "api", "dev", "alice") | inventory.ca_fps
    by_fp = {fp_norm(e["fingerprint"]): e for e in entries}
    for label, cert in inventory.certs.items():
        e = by_fp[fingerprint(cert)]
        assert same_serial(e["serial"], format(cert.serial_number, "x")), e
        expected_issuer = "any-purpose" if label == "alice" else "intermediate"
        assert e["status"] == "active" and e["source"] == "issued" and e["issuer"] == expected_issuer, e
        na = dt.datetime.fromisoformat(e["not_after"].replace("Z", "+00:00"))
        assert abs((na - cert.not_valid_after_utc).total_seconds()) < 1, (e["not_after"], cert.not_valid_after_utc)
    www = by_fp[fingerprint(inventory.certs["www"])]
    assert www["owner"] == "team-a" and sorted(www["tags"]) == ["prod", "web"], www
    assert www["common_name"] == "www.example.com" and www["profile"] == "tls-server", www
    assert "DNS:www.example.com" in www["sans"], www
    assert www["key_type"] == "ec:P-256" and www["signature_algorithm"] == "ecdsa-with-SHA256", www


def test_filter_status(inventory):
    home = inventory.home
    assert fps(home.cert_list("--status", "active")) == inventory.fp("www", "api", "dev", "alice") | inventory.ca_fps
    assert home.cert_list("--status", "revoked") == []
    assert home.cert_list("--status", "expired") == []


def test_filter_expiring(inventory):
    home = inventory.home
    assert fps(home.cert_list("--expiring", "30d")) == inventory.fp("api")
    assert fps(home.cert_list("--expiring", "120d")) == inventory.fp("www", "api", "dev")
    assert fps(home.cert_list("--expiring", "400d")) == inventory.fp("www", "api", "dev", "alice")


def test_filter_name(inventory):
    home = inventory.home
    assert fps(home.cert_list("--name", "www.example.com")) == inventory.fp("www")
    assert fps(home.cert_list("--name", "*.example.com")) == inventory.fp("www", "api", "dev")
    assert fps(home.cert_list("--name", "api*")) == inventory.fp("api")
    assert fps(home.cert_list("--name", "*alice*")) == inventory.fp("alice")
    assert home.cert_list("--name", "nothing-like-this.example.org") == []
    serial = serial_hex(inventory.certs["dev"])
    assert fps(home.cert_list("--name", serial)) == inventory.fp("dev")


def test_filter_owner_profile_issuer(inventory):
    home = inventory.home
    assert fps(home.cert_list("--owner", "team-a")) == inventory.fp("www", "dev")
    assert fps(home.cert_list("--owner", "team-b")) == inventory.fp("api")
    assert fps(home.cert_list("--profile", "tls-server")) == inventory.fp("www", "api")
    assert fps(home.cert_list("--profile", "email")) == inventory.fp("alice")
    assert fps(home.cert_list("--profile", "tls-server", "--owner", "team-a")) == inventory.fp("www")
    # S/MIME comes from the any-purpose intermediate (the default one is a TLS CA).
    assert fps(home.cert_list("--issuer", "intermediate")) == inventory.fp("www", "api", "dev")
    assert fps(home.cert_list("--issuer", "any-purpose")) == inventory.fp("alice")


@pytest.mark.parametrize("form", ["serial", "serial-upper", "serial-openssl", "fp", "fp-colons", "fp-colons-lower"])
def test_cert_show(inventory, form):
    home = inventory.home
    cert = inventory.certs["www"]
    f = fingerprint(cert)
    key = {
        "serial": serial_hex(cert),
        "serial-upper": serial_hex(cert, upper=True),
        "serial-openssl": openssl_ok("x509", "-in", inventory.tmp / "www.pem", "-noout", "-serial").stdout.strip().split("=", 1)[1],
        "fp": f,
        "fp-colons": ":".join(f[i:i + 2] for i in range(0, 64, 2)).upper(),
        "fp-colons-lower": ":".join(f[i:i + 2] for i in range(0, 64, 2)),
    }[form]
    e = home.json("cert", "show", key)
    assert fp_norm(e["fingerprint"]) == f, e
    for field in ("serial", "issuer", "subject", "common_name", "sans", "not_before", "not_after", "days_left",
                  "status", "source", "profile", "owner", "tags", "key_type", "key_algorithm", "key_size",
                  "signature_algorithm", "fingerprint", "revoked_at", "revocation_reason", "request_id"):
        assert field in e, f"cert show --json lacks {field}: {sorted(e)}"
    assert 88 <= e["days_left"] <= 90, e
    pem = home.ok("cert", "show", key, "--pem").stdout
    from cryptography import x509
    assert fingerprint(x509.load_pem_x509_certificate(pem.encode())) == f


def test_cert_show_unknown(inventory):
    p = inventory.home.run("cert", "show", "0123456789abcdef0123")
    assert p.returncode != 0 and p.stderr.strip(), describe(p)


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime not installed (apt-get install faketime)")
def test_status_expired(tmp_path, made):
    """A hierarchy and a 7-day certificate made 40 days ago (libfaketime): listed as expired."""
    home = CAHome(tmp_path / "home")
    past = ("faketime", "-f", "-40d")
    home.init_root(prefix=past)
    home.init_intermediate(prefix=past)
    c = tmp_path / "old.csr"
    sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--cn", "old.example.com", "--out", c)
    p = home.sign(c, "--profile", "tls-client", "--days", "7", "--out", tmp_path / "old.pem", prefix=past)
    assert p.returncode == 0, describe(p)
    old = load_cert(tmp_path / "old.pem")
    assert old.not_valid_after_utc < now_utc(), "faketime had no effect"
    c2 = tmp_path / "new.csr"
    sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--cn", "new.example.com", "--out", c2)
    p = home.sign(c2, "--profile", "tls-client", "--out", tmp_path / "new.pem")
    assert p.returncode == 0, describe(p)
    new = load_cert(tmp_path / "new.pem")
    assert fps(home.cert_list("--status", "expired")) == {fingerprint(old)}
    active = fps(home.cert_list("--status", "active"))
    assert fingerprint(new) in active and fingerprint(old) not in active
    e = home.json("cert", "show", serial_hex(old))
    assert e["status"] == "expired" and e["days_left"] <= 0, e
    rc, v, vp = home.audit_verify()
    assert rc == 0, describe(vp)
