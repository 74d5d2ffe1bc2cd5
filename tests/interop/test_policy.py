"""Policy rejections and the approval workflow (issue 3): `sigil ca sign` exit 1 / exit 3,
`sigil request list|show|approve|reject`, and what lands in the inventory and the audit trail."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_helpers import ANY_PURPOSE, CAHome, ext, fingerprint, load_cert, now_utc, openssl_verify, same_serial
from interop_helpers import CRASH_MARKERS, describe, sigil_ok
from cryptography import x509

DENY = """profiles:
  tls-server:
    denied_names: ["*.evil.example.com"]
  web-short:
    base: tls-server
    max_days: 30
    default_days: 30
  tls-client:
    allowed_names: [".corp.example.com"]
    allowed_key_types: ["ec:P-256", "ed25519"]
"""


def rule_lines(stderr: str) -> list[str]:
    return [l[4:] for l in stderr.splitlines() if l.startswith("  - ")]


def leaf_serials(home: CAHome) -> set:
    cas = {c["fingerprint"] for c in home.json("ca", "list") if c.get("fingerprint")}
    return {c["serial"] for c in home.cert_list() if c["fingerprint"] not in cas}


def br_max_days(now: dt.datetime) -> int:
    for start, days in ((dt.datetime(2029, 3, 15, tzinfo=dt.timezone.utc), 47),
                        (dt.datetime(2027, 3, 15, tzinfo=dt.timezone.utc), 100),
                        (dt.datetime(2026, 3, 15, tzinfo=dt.timezone.utc), 200)):
        if now >= start:
            return days
    return 398


@pytest.fixture
def policy_home(ca_home) -> CAHome:
    ca_home.write_config(profiles=DENY)
    return ca_home


def csr(tmp_path, made, kt, *args, name="req.csr"):
    out = tmp_path / name
    sigil_ok("csr", "new", "--key", made.key(kt), *args, "--out", out)
    return out


# ------------------------------------------------------------------------ rejections

def test_rejection_lists_every_broken_rule(policy_home, made, tmp_path):
    c = csr(tmp_path, made, "ed25519", "--cn", "www.example.com", "--san", "DNS:www.example.com",
            "--san", "DNS:bad.evil.example.com")
    before = leaf_serials(policy_home)
    audit_before = len(policy_home.json("audit", "list"))
    out = tmp_path / "leaf.pem"
    p = policy_home.sign(c, "--profile", "tls-server", "--days", "400", "--out", out)
    assert p.returncode == 1, describe(p)
    for m in CRASH_MARKERS:
        assert m not in p.stderr
    rules = rule_lines(p.stderr)
    assert len(rules) >= 3, "expected one '  - reason' line per broken rule" + describe(p)
    assert any("ed25519" in r for r in rules), describe(p)
    assert any("400" in r for r in rules), describe(p)
    assert any("bad.evil.example.com" in r for r in rules), describe(p)
    assert not out.exists(), "a certificate file was written for a rejected request"
    assert leaf_serials(policy_home) == before, "a rejected request reached the inventory"
    entries = policy_home.json("audit", "list")
    new = entries[audit_before:]
    rej = [e for e in new if e["action"] == "request.rejected"]
    assert len(rej) == 1, new
    blob = json.dumps(rej[0]["details"])
    for word in ("ed25519", "400", "bad.evil.example.com"):
        assert word in blob, rej[0]
    assert not [e for e in new if e["action"] == "certificate.issued"], new
    rc, v, vp = policy_home.audit_verify()
    assert rc == 0 and v["ok"], describe(vp)


def test_rejection_cn_not_a_san_and_wrong_san_type(ca_home, made, tmp_path):
    c = csr(tmp_path, made, "ec:P-256", "--cn", "www.example.com", "--no-cn-san",
            "--san", "DNS:api.example.com", "--san", "email:webmaster@example.com")
    p = ca_home.sign(c, "--profile", "tls-server", "--out", tmp_path / "leaf.pem")
    assert p.returncode == 1, describe(p)
    rules = rule_lines(p.stderr)
    assert len(rules) >= 2, describe(p)
    assert any("www.example.com" in r for r in rules), describe(p)          # CN must be a SAN
    assert any("email" in r.lower() for r in rules), describe(p)            # email SAN not allowed
    assert not (tmp_path / "leaf.pem").exists()


def test_tls_server_requires_a_san(ca_home, made, tmp_path):
    c = csr(tmp_path, made, "ec:P-256", "--cn", "Example Web Server")
    p = ca_home.sign(c, "--profile", "tls-server", "--out", tmp_path / "leaf.pem")
    assert p.returncode == 1, describe(p)
    assert rule_lines(p.stderr), describe(p)
    assert not (tmp_path / "leaf.pem").exists()


def test_br_validity_cap_boundary(ca_home, made, tmp_path):
    cap = br_max_days(now_utc())
    c = csr(tmp_path, made, "ec:P-256", "--cn", "www.example.com")
    p = ca_home.sign(c, "--profile", "tls-server", "--days", str(cap + 1), "--out", tmp_path / "over.pem")
    assert p.returncode == 1 and str(cap) in p.stderr, describe(p)
    p = ca_home.sign(c, "--profile", "tls-server", "--days", str(cap), "--out", tmp_path / "at.pem")
    assert p.returncode == 0, describe(p)
    cert = load_cert(tmp_path / "at.pem")
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400
    assert days <= cap, f"validity {days} days exceeds the BR maximum {cap}"


def test_profile_overrides_names_and_key_types(policy_home, made, tmp_path):
    # tls-client limited to .corp.example.com and ec:P-256 / ed25519
    bad = csr(tmp_path, made, "rsa:2048", "--cn", "device-01.example.com", name="bad.csr")
    p = policy_home.sign(bad, "--profile", "tls-client", "--out", tmp_path / "bad.pem")
    assert p.returncode == 1, describe(p)
    rules = rule_lines(p.stderr)
    assert any("rsa:2048" in r for r in rules) and any("device-01.example.com" in r for r in rules), describe(p)
    good = csr(tmp_path, made, "ed25519", "--cn", "device-01.corp.example.com", name="good.csr")
    p = policy_home.sign(good, "--profile", "tls-client", "--out", tmp_path / "good.pem")
    assert p.returncode == 0, describe(p)


def test_custom_profile_from_config(policy_home, made, tmp_path):
    c = csr(tmp_path, made, "ec:P-256", "--cn", "www.example.com")
    p = policy_home.sign(c, "--profile", "web-short", "--days", "31", "--out", tmp_path / "x.pem")
    assert p.returncode == 1 and "30" in p.stderr, describe(p)
    p = policy_home.sign(c, "--profile", "web-short", "--out", tmp_path / "ok.pem", "--json")
    assert p.returncode == 0, describe(p)
    cert = load_cert(tmp_path / "ok.pem")
    assert 29 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 30
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]  # from the base
    listed = policy_home.cert_list("--profile", "web-short")
    assert [fingerprint(cert)] == [c["fingerprint"].replace(":", "").lower() for c in listed]


def test_unknown_profile_is_refused(ca_home, made, tmp_path):
    c = csr(tmp_path, made, "ec:P-256", "--cn", "www.example.com")
    p = ca_home.sign(c, "--profile", "no-such-profile", "--out", tmp_path / "x.pem")
    assert p.returncode in (1, 2), describe(p)
    assert "no-such-profile" in p.stderr, describe(p)
    assert not (tmp_path / "x.pem").exists()


# ------------------------------------------------------------------------ approvals

def code_signing_csr(tmp_path, made, name, kt="rsa:3072"):
    return csr(tmp_path, made, kt, "--subject", f"/C=US/O=Example Corp/CN={name}", name=f"{name}.csr")


def test_approval_reject_and_approve(ca_home, made, tmp_path):
    c1 = code_signing_csr(tmp_path, made, "Signer One")
    c2 = code_signing_csr(tmp_path, made, "Signer Two", kt="ec:P-256")
    before = leaf_serials(ca_home)

    p = ca_home.sign(c1, "--profile", "code-signing", "--out", tmp_path / "one.pem", "--json")
    assert p.returncode == 3, describe(p)
    r1 = json.loads(p.stdout)
    assert r1["status"] == "pending" and r1["request_id"], r1
    assert not (tmp_path / "one.pem").exists()

    p = ca_home.sign(c2, "--profile", "code-signing", "--out", tmp_path / "two.pem")
    assert p.returncode == 3, describe(p)
    pending = ca_home.json("request", "list")
    ids = [r["id"] for r in pending]
    assert r1["request_id"] in ids and len(ids) == 2, pending
    id2 = next(i for i in ids if i != r1["request_id"])
    assert id2 in p.stdout, "the request id should be printed" + describe(p)
    assert not (tmp_path / "two.pem").exists()
    assert leaf_serials(ca_home) == before, "a pending request reached the inventory"
    shown = ca_home.json("request", "show", r1["request_id"])
    assert shown["status"] == "pending" and shown["profile"] == "code-signing", shown

    # reject the first
    p = ca_home.run("request", "reject", r1["request_id"], "--reason", "not our team")
    assert p.returncode == 0, describe(p)
    assert r1["request_id"] not in [r["id"] for r in ca_home.json("request", "list")]
    rejected = ca_home.json("request", "list", "--status", "rejected")
    rj = [r for r in rejected if r["id"] == r1["request_id"]]
    assert rj and "not our team" in json.dumps(rj[0]), rejected
    p = ca_home.approve(r1["request_id"], "--out", tmp_path / "one.pem")
    assert p.returncode != 0, "a rejected request was approved" + describe(p)
    assert not (tmp_path / "one.pem").exists()

    # approve the second
    out = tmp_path / "two.pem"
    p = ca_home.approve(id2, "--out", out)
    assert p.returncode == 0, describe(p)
    root_p = ca_home.ca_pem("root", tmp_path / "root.pem")
    # Code signing comes from the intermediate without EKU restrictions (see CAHome.sign).
    int_p = ca_home.ca_pem(ANY_PURPOSE, tmp_path / "int.pem")
    good, text = openssl_verify(root_p, out, int_p)
    assert good, text
    cert = load_cert(out)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CODE_SIGNING]
    org = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    assert org and org[0].value == "Example Corp", cert.subject

    listed = [c for c in ca_home.cert_list() if c["fingerprint"].replace(":", "").lower() == fingerprint(cert)]
    assert len(listed) == 1, "approved certificate not in the inventory"
    assert listed[0]["request_id"] == id2 and listed[0]["profile"] == "code-signing", listed[0]
    issued = [r for r in ca_home.json("request", "list", "--status", "issued") if r["id"] == id2]
    assert issued and same_serial(issued[0]["certificate_serial"], format(cert.serial_number, "x")), issued
    assert ca_home.json("request", "list") == [], "requests still pending"

    # approving twice issues nothing new
    n = len(ca_home.cert_list())
    p = ca_home.approve(id2, "--out", tmp_path / "again.pem")
    assert p.returncode != 0, describe(p)
    assert len(ca_home.cert_list()) == n

    actions = [(e["action"], e["object"]) for e in ca_home.json("audit", "list")]
    assert ("request.rejected", f"request:{r1['request_id']}") in actions, actions
    assert ("request.approved", f"request:{id2}") in actions, actions
    assert any(a == "certificate.issued" and same_serial(o.split(":", 1)[1], format(cert.serial_number, "x"))
               for a, o in actions if o.startswith("certificate:")), actions
    rc, v, vp = ca_home.audit_verify()
    assert rc == 0 and v["ok"], describe(vp)


def test_approval_profile_still_checks_policy_first(ca_home, made, tmp_path):
    """A code-signing request that breaks rules (rsa:2048, no O) is rejected at once (exit 1), not
    queued for a person to approve something that cannot be issued."""
    c = csr(tmp_path, made, "rsa:2048", "--cn", "Signer", name="weak.csr")
    p = ca_home.sign(c, "--profile", "code-signing", "--out", tmp_path / "x.pem")
    assert p.returncode == 1, describe(p)
    rules = rule_lines(p.stderr)
    assert any("rsa:2048" in r for r in rules) and any(" O" in r or "'O'" in r for r in rules), describe(p)
    assert ca_home.json("request", "list") == []
