"""Notifications (issue 7 item 2) with real parts on loopback: `sigil serve` sends webhooks to a
Python http.server that checks every HMAC signature (and fails its first attempts on one path, to
prove retries), and mail through an aiosmtpd server that requires STARTTLS and AUTH (its certificate
from a test CA that Sigil is told to trust). Certificates with 1 to 20 days left each get their
expiry notice once, also after a restart; issued, revoked, approval_pending and renewal_failed
(POST /api/v1/agent/reports) arrive where routing by owner, tag and event sends them, and only there.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from interop_helpers import describe, run, sigil_bin
from serve_helpers import SigilServer, expect, expect_json, expect_problem, free_port, openssl_csr

SECRET_A = "webhook-secret-one"
SECRET_B = "webhook-secret-two"
SMTP_USER, SMTP_PASSWORD = "sigil", "smtp-password-123"
WAIT = 40  # seconds; the notifier runs every second


# ------------------------------------------------------------------------------------ receivers


class Receiver:
    """Webhook receiver: verifies `Sigil-Signature: t=UNIX,v1=HEX` = HMAC-SHA256(secret, "UNIX." + body)
    for each path's secret, records every request, and answers 503 to the first `fail_first[path]` ones."""

    def __init__(self, secrets: dict[str, str], fail_first: dict[str, int], tls: ssl.SSLContext | None = None):
        self.secrets = secrets
        self.fail_first = dict(fail_first)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path
                signature = self.headers.get("Sigil-Signature", "")
                parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
                t = parts.get("t", "0")
                expected = hmac.new(receiver.secrets[path].encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(parts.get("v1", ""), expected) and abs(time.time() - int(t)) < 300
                with receiver.lock:
                    failing = receiver.fail_first.get(path, 0) > 0
                    if failing:
                        receiver.fail_first[path] -= 1
                    receiver.requests.append({
                        "path": path, "verified": verified, "event": self.headers.get("Sigil-Event"),
                        "delivery": self.headers.get("Sigil-Delivery"), "answered": 503 if failing else 200,
                        "body": json.loads(body) if verified else None,
                    })
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, path: str, answered: int | None = 200) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path and (answered is None or r["answered"] == answered)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "content": envelope.content.decode("utf-8", errors="replace"),
                                  "tls": session.ssl is not None, "auth": session.authenticated})
        return "250 OK"

    def with_header(self, text: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if text in m["content"]]


def authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode())


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA (Python cryptography) and a certificate for localhost: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mail Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "mail-ca.pem", directory / "mail-cert.pem", directory / "mail-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def wait_for(what: str, check, timeout: float = WAIT, describe_on_fail=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{describe_on_fail()}")
        time.sleep(0.25)


# ------------------------------------------------------------------------------------ the setup


class Setup:
    def __init__(self, root: Path, binary: str):
        self.root = root
        self.binary = binary
        self.receiver = Receiver({"/all": SECRET_A, "/team-a": SECRET_B, "/prod": SECRET_A, "/flaky": SECRET_A},
                                 fail_first={"/flaky": 2})
        ca, cert, key = make_test_ca(root)
        self.mail_ca = ca
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        # An https receiver whose certificate comes from the test CA: trusted only through ca_file.
        self.https_receiver = Receiver({"/secure": SECRET_A}, fail_first={}, tls=context)
        self.mailbox = Mailbox()
        # ready_timeout: aiosmtpd's default of 5 s for its thread to come up is short on a loaded machine.
        self.smtp = Controller(self.mailbox, hostname="127.0.0.1", port=free_port(), ready_timeout=60, tls_context=context, require_starttls=True,
                               authenticator=authenticator, auth_required=True, auth_require_tls=True)
        self.smtp.start()
        # A mail server that offers no STARTTLS: Sigil must refuse to send to it in the clear.
        self.plain_mailbox = Mailbox()
        self.plain_smtp = Controller(self.plain_mailbox, hostname="127.0.0.1", port=free_port(), ready_timeout=60)
        self.plain_smtp.start()
        self.home = root / "home"
        self.home.mkdir(mode=0o700)
        secret_file = root / "hook-secret"
        secret_file.write_text(SECRET_A + "\n")
        secret_file.chmod(0o600)
        hook = f"http://127.0.0.1:{self.receiver.port}"
        # A profile that needs a person's approval and that the zero-config intermediate can issue.
        self.config = {"profiles": {"tls-approved": {"base": "tls-server", "require_approval": True}}, "notifications": {
            "interval": "1s",
            "retry": {"max_attempts": 4, "initial_delay": "1s", "max_delay": "2s"},
            # Freshly issued test certificates are as close to expiry as their whole lifetime.
            "skip_thresholds_beyond_lifetime": False,
            "channels": [
                {"name": "all", "type": "webhook", "url": f"{hook}/all", "secret_file": str(secret_file)},
                {"name": "team-a", "type": "webhook", "url": f"{hook}/team-a", "secret_env": "TEAM_A_HOOK_SECRET", "owners": ["team-a"]},
                {"name": "prod", "type": "webhook", "url": f"{hook}/prod", "secret_file": str(secret_file), "tags": ["prod"],
                 "events": ["issued", "revoked"]},
                {"name": "flaky", "type": "webhook", "url": f"{hook}/flaky", "secret_file": str(secret_file), "events": ["revoked"]},
                {"name": "mail", "type": "email", "smtp": f"localhost:{self.smtp.port}", "ca_file": str(ca), "from": "sigil@example.com",
                 "to": ["pki-team@example.com", "oncall@example.com"], "username": SMTP_USER, "password_env": "SMTP_PASSWORD",
                 "events": ["expiring", "approval_pending", "renewal_failed"]},
                {"name": "secure", "type": "webhook", "url": f"https://localhost:{self.https_receiver.port}/secure", "secret_file": str(secret_file),
                 "ca_file": str(ca), "events": ["revoked"]},
                {"name": "untrusted", "type": "webhook", "url": f"https://localhost:{self.https_receiver.port}/secure", "secret_file": str(secret_file),
                 "events": ["approval_pending"]},
                {"name": "cleartext", "type": "email", "smtp": f"127.0.0.1:{self.plain_smtp.port}", "from": "sigil@example.com",
                 "to": ["pki-team@example.com"], "events": ["revoked"]},
            ],
        }}
        (self.home / "sigil.yaml").write_text(yaml.safe_dump(self.config))
        self.env = {"TEAM_A_HOOK_SECRET": SECRET_B, "SMTP_PASSWORD": SMTP_PASSWORD}
        self.servers: list[SigilServer] = []
        self.server = self.start()
        self.admin = self.server.admin_token
        assert self.admin, self.server.describe()
        api = self.server.session(self.admin)
        self.tokens = {}
        for role in ("requester", "auditor"):
            self.tokens[role] = expect_json(api.post("/api/v1/tokens", json={"name": f"n-{role}", "role": role}), 201)["token"]

    def start(self) -> SigilServer:
        server = SigilServer(self.binary, self.home, env=self.env, logdir=self.root / "logs").start()
        self.servers.append(server)
        return server

    def restart(self):
        assert self.server.stop(timeout=20) == 0, self.server.describe()
        self.server = self.start()

    def api(self, role: str = "admin"):
        return self.server.session(self.admin if role == "admin" else self.tokens[role])

    def issue(self, name: str, days: int, owner: str | None = None, tags: list[str] | None = None) -> dict:
        _, csr = openssl_csr(self.root / "csr", name, name, [f"DNS:{name}"])
        body = {"csr": csr, "profile": "tls-server", "days": days}
        if owner:
            body["owner"] = owner
        if tags:
            body["tags"] = tags
        return expect_json(self.api().post("/api/v1/certificates", json=body), 201)

    def sigil(self, *args, env=None):
        full = {"SIGIL_HOME": str(self.home), **self.env, **(env or {})}
        return run([self.binary, *args], env=full, timeout=120)

    def close(self):
        for s in self.servers:
            s.stop(timeout=10)
        self.receiver.stop()
        self.https_receiver.stop()
        self.smtp.stop()
        self.plain_smtp.stop()

    def events(self, path: str, type_: str, fingerprint: str | None = None) -> list[dict]:
        found = [r["body"] for r in self.receiver.got(path) if r["body"] and r["body"]["type"] == type_]
        if fingerprint:
            found = [b for b in found if (b.get("certificate") or {}).get("fingerprint") == fingerprint]
        return found

    def describe(self) -> str:
        return f"\nreceived: {json.dumps(self.receiver.requests, indent=1)[:6000]}" + self.server.describe()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    s = Setup(tmp_path_factory.mktemp("notify"), sigil_bin())
    yield s
    s.close()


# ------------------------------------------------------------------------------------ tests


def test_issued_and_revoked_are_routed_by_owner_tag_and_event_and_retried(setup):
    a = setup.issue("a.notify.example.com", 90, owner="team-a", tags=["prod", "web"])
    b = setup.issue("b.notify.example.com", 90, owner="team-b", tags=["dev"])
    wait_for("issued events on /all", lambda: len(setup.events("/all", "issued", a["fingerprint"])) == 1
             and len(setup.events("/all", "issued", b["fingerprint"])) == 1, describe_on_fail=setup.describe)
    wait_for("issued on /team-a and /prod", lambda: setup.events("/team-a", "issued", a["fingerprint"]) and setup.events("/prod", "issued", a["fingerprint"]),
             describe_on_fail=setup.describe)
    expect_json(setup.api().post(f"/api/v1/certificates/{b['serial']}/revoke", json={"reason": "keyCompromise"}), 200)
    revoked = wait_for("revoked on /all", lambda: setup.events("/all", "revoked", b["fingerprint"]), describe_on_fail=setup.describe)
    assert revoked[0]["reason"] == "keyCompromise" and revoked[0]["certificate"]["owner"] == "team-b"
    assert revoked[0]["certificate"]["serial"] == b["serial"] and revoked[0]["certificate"]["tags"] == ["dev"]
    # The flaky receiver answers 503 twice: the third attempt delivers, with the same delivery id each time.
    wait_for("revoked delivered to /flaky after two failures", lambda: setup.receiver.got("/flaky"), describe_on_fail=setup.describe)
    flaky = setup.receiver.got("/flaky", answered=None)
    assert [r["answered"] for r in flaky] == [503, 503, 200], flaky
    assert len({r["delivery"] for r in flaky}) == 1 and all(r["event"] == "revoked" for r in flaky), flaky
    # https with the CA bundle from ca_file.
    [secure] = wait_for("revoked over https", lambda: [r for r in setup.https_receiver.got("/secure") if r["event"] == "revoked"],
                        describe_on_fail=setup.describe)
    assert secure["verified"] and secure["body"]["certificate"]["fingerprint"] == b["fingerprint"]
    # The cleartext mail server offers no STARTTLS: nothing is sent to it, and the log says why.
    wait_for("the cleartext channel to give up", lambda: [d for d in expect_json(setup.api().get(
        "/api/v1/notifications/deliveries", params={"channel": "cleartext"}), 200)["items"] if d["status"] == "failed"],
        describe_on_fail=setup.describe)
    assert not setup.plain_mailbox.messages
    time.sleep(2)  # a few more notifier rounds: nothing more may arrive
    assert len(setup.events("/all", "issued", a["fingerprint"])) == 1 and len(setup.events("/all", "revoked", b["fingerprint"])) == 1
    # Routing: team-a hears about its own certificate only; prod about the prod-tagged one only.
    assert not setup.events("/team-a", "issued", b["fingerprint"]) and not setup.events("/team-a", "revoked", b["fingerprint"])
    assert not setup.events("/prod", "issued", b["fingerprint"]) and not setup.events("/prod", "revoked", b["fingerprint"])
    assert not [r for r in setup.receiver.got("/flaky", answered=None) if r["event"] != "revoked"]
    assert all(r["verified"] for r in setup.receiver.requests), "every webhook carries a valid signature"
    assert not setup.mailbox.with_header(a["serial"]), "the mail channel wants neither issued nor revoked"


def test_each_expiry_threshold_once_also_after_a_restart(setup):
    expected = {1: 1, 5: 7, 10: 14, 20: 30}  # days of lifetime left -> the threshold noticed
    certs = {days: setup.issue(f"exp{days}.notify.example.com", days) for days in expected}

    def noticed(days):
        return setup.events("/all", "expiring", certs[days]["fingerprint"])

    wait_for("an expiry notice for every certificate", lambda: all(noticed(d) for d in expected), describe_on_fail=setup.describe)
    for days, threshold in expected.items():
        [event] = noticed(days)
        assert event["threshold_days"] == threshold, event
        assert event["days_left"] == days - 1, event
        assert event["certificate"]["not_after"] and event["certificate"]["names"] == [f"DNS:exp{days}.notify.example.com"]
        assert event["id"] == f"expiring-{certs[days]['fingerprint']}-{threshold}d"
    mails = wait_for("four expiry mails", lambda: len([m for d in expected for m in setup.mailbox.with_header(certs[d]["serial"])]) == 4 and True,
                     describe_on_fail=setup.describe)
    assert mails
    for days in expected:
        [mail] = setup.mailbox.with_header(certs[days]["serial"])
        assert mail["tls"] and mail["auth"], "sent inside STARTTLS, after AUTH"
        assert mail["from"] == "sigil@example.com" and sorted(mail["to"]) == ["oncall@example.com", "pki-team@example.com"]
        assert f"Subject: [Sigil] Certificate for exp{days}.notify.example.com" in mail["content"]
        assert "What to do:" in mail["content"] and "renew" in mail["content"].lower()
    setup.restart()
    # The new server makes its own TLS certificate (a new issued event); wait for that very
    # certificate to be announced (the one it presents: not any earlier server's, which would not
    # show the restarted notifier at work), then a few rounds more: no expiry notice may come again.
    presented = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", setup.server.https_port), timeout=60).encode())
    own = presented.fingerprint(hashes.SHA256()).hex()
    wait_for("the restarted notifier at work", lambda: [e for e in setup.events("/all", "issued")
                                                          if e["certificate"]["fingerprint"].replace(":", "").lower() == own],
             describe_on_fail=setup.describe)
    time.sleep(3)
    for days in expected:
        assert len(noticed(days)) == 1, noticed(days)
        assert len(setup.mailbox.with_header(certs[days]["serial"])) == 1


def test_approval_pending_and_agent_renewal_failure(setup, tmp_path):
    _, csr = openssl_csr(tmp_path, "approve", "approve.notify.example.com", ["DNS:approve.notify.example.com"])
    pending = expect_json(setup.api().post("/api/v1/certificates", json={"csr": csr, "profile": "tls-approved", "owner": "team-a"}), 202)
    [event] = wait_for("approval_pending on /all", lambda: [e for e in setup.events("/all", "approval_pending")
                                                            if e["request"]["id"] == pending["request_id"]], describe_on_fail=setup.describe)
    assert event["request"]["profile"] == "tls-approved" and event["request"]["owner"] == "team-a"
    wait_for("approval_pending on /team-a (routed by the owner asked for)", lambda: setup.events("/team-a", "approval_pending"),
             describe_on_fail=setup.describe)
    wait_for("the approval mail", lambda: setup.mailbox.with_header(pending["request_id"]), describe_on_fail=setup.describe)
    assert f"sigil request approve {pending['request_id']}" in setup.mailbox.with_header(pending["request_id"])[0]["content"]

    web = setup.issue("web.notify.example.com", 90, owner="team-a")
    report = {"certificate": "web", "names": ["web.notify.example.com"], "serial": web["serial"], "status": "renewal_failed",
              "error": "ACME order failed: connection refused"}
    requester = setup.api("requester")
    answer = expect_json(requester.post("/api/v1/agent/reports", json=report), 202)
    assert answer["status"] == "recorded"
    [failed] = wait_for("renewal_failed on /all", lambda: [e for e in setup.events("/all", "renewal_failed") if e["agent_certificate"] == "web"],
                        describe_on_fail=setup.describe)
    assert failed["error"] == report["error"] and failed["certificate"]["serial"] == web["serial"]
    assert failed["certificate"]["owner"] == "team-a"
    wait_for("renewal_failed on /team-a", lambda: setup.events("/team-a", "renewal_failed"), describe_on_fail=setup.describe)
    wait_for("the renewal mail", lambda: [m for m in setup.mailbox.with_header("connection refused")], describe_on_fail=setup.describe)

    # Bad reports: a clear 4xx, and nothing recorded.
    audit_before = expect_json(setup.api().get("/api/v1/audit", params={"action": "renewal.failed", "limit": 1000}), 200)["items"]
    raw = requester.post("/api/v1/agent/reports", data=b"{not json", headers={"Content-Type": "application/json"})
    expect_problem(raw, 400, "malformed-request")
    expect_problem(requester.post("/api/v1/agent/reports", json={**report, "status": "fine"}), 400, "malformed-request")
    expect_problem(requester.post("/api/v1/agent/reports", json={**report, "error": ""}), 400, "malformed-request")
    expect_problem(requester.post("/api/v1/agent/reports", json={**report, "serial": "xyz"}), 400, "malformed-request")
    expect_problem(requester.post("/api/v1/agent/reports", json={**report, "extra": 1}), 400, "malformed-request")
    expect_problem(setup.api("auditor").post("/api/v1/agent/reports", json=report), 403, "forbidden")
    expect_problem(setup.server.session(None).post("/api/v1/agent/reports", json=report), 401, "unauthorized")
    audit_after = expect_json(setup.api().get("/api/v1/audit", params={"action": "renewal.failed", "limit": 1000}), 200)["items"]
    assert len(audit_after) == len(audit_before)


def test_delivery_log_api_cli_and_test_messages(setup):
    items = expect_json(setup.api().get("/api/v1/notifications/deliveries", params={"limit": 1000}), 200)["items"]
    assert items and {"id", "event_id", "event", "channel", "target", "status", "attempts", "last_error", "created_at", "delivered_at"} <= set(items[0])
    flaky = [d for d in items if d["channel"] == "flaky"]
    assert flaky and flaky[0]["status"] == "delivered" and flaky[0]["attempts"] == 3
    [cleartext] = [d for d in items if d["channel"] == "cleartext"]
    assert cleartext["status"] == "failed" and cleartext["attempts"] == 4 and "STARTTLS" in cleartext["last_error"]
    expect_json(setup.api("auditor").get("/api/v1/notifications/deliveries"), 200)
    expect_problem(setup.api("requester").get("/api/v1/notifications/deliveries"), 403, "forbidden")
    expect_problem(setup.api().get("/api/v1/notifications/deliveries", params={"status": "lost"}), 400, "malformed-request")
    page = expect_json(setup.api().get("/api/v1/notifications/deliveries", params={"limit": 2}), 200)
    more = expect_json(setup.api().get("/api/v1/notifications/deliveries", params={"limit": 2, "before": page["next_before"]}), 200)
    assert not {d["id"] for d in page["items"]} & {d["id"] for d in more["items"]}

    p = setup.sigil("notify", "log", "--json", "--limit", "1000")
    assert p.returncode == 0, describe(p)
    assert {d["id"] for d in json.loads(p.stdout)} >= {d["id"] for d in items}
    p = setup.sigil("notify", "log", "--status", "failed")
    assert p.returncode == 0 and "cleartext" in p.stdout and "STARTTLS" in p.stdout, describe(p)
    p = setup.sigil("notify", "log", "--status", "lost")
    assert p.returncode == 2, describe(p)

    before = len(setup.receiver.got("/team-a"))
    p = setup.sigil("notify", "test", "--channel", "team-a")
    assert p.returncode == 0, describe(p)
    tests = [r for r in setup.receiver.got("/team-a")[before:] if r["event"] == "test"]
    assert tests and tests[0]["verified"] and tests[0]["body"]["type"] == "test"
    p = setup.sigil("notify", "test", "--channel", "mail")
    assert p.returncode == 0, describe(p)
    assert setup.mailbox.with_header("Test message for notification channel mail")
    p = setup.sigil("notify", "test", "--channel", "cleartext")
    assert p.returncode == 1 and "STARTTLS" in p.stderr, describe(p)
    p = setup.sigil("notify", "test", "--channel", "untrusted")
    assert p.returncode == 1 and "POST https://localhost" in p.stderr, describe(p)
    assert any(word in p.stderr.lower() for word in ("certificate", "handshake", "ssl")), describe(p)
    assert not [r for r in setup.https_receiver.got("/secure", answered=None) if r["event"] != "revoked"], "no request got through untrusted TLS"
    p = setup.sigil("notify", "test", "--channel", "nope")
    assert p.returncode == 2 and "team-a" in p.stderr, describe(p)
    p = setup.sigil("notify", "test", "--channel", "team-a", env={"TEAM_A_HOOK_SECRET": ""})
    assert p.returncode == 2 and "TEAM_A_HOOK_SECRET" in p.stderr, describe(p)
    log = json.loads(setup.sigil("notify", "log", "--json", "--event", "test").stdout)
    assert {(d["channel"], d["status"]) for d in log} >= {("team-a", "delivered"), ("mail", "delivered"), ("cleartext", "failed")}


def test_a_bad_notifications_section_stops_serve_before_it_starts(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "sigil.yaml").write_text(yaml.safe_dump({"notifications": {"thresholds": [0], "channels": [
        {"name": "hook", "type": "webhook", "url": "ftp://x"},
        {"name": "mail", "type": "email", "smtp": "mail.example.com", "from": "x", "to": []},
        {"name": "other", "type": "pager"},
    ]}}))
    server = SigilServer(sigil_bin(), home, logdir=tmp_path / "logs").spawn()
    try:
        server.proc.wait(timeout=60)
    finally:
        server.stop(timeout=5)
    assert server.proc.returncode == 2, server.describe()
    for text in ("thresholds", "'hook': url", "'mail': smtp", "'other': type"):
        assert text in server.stderr, text + server.describe()
    assert "admin token" not in server.stdout
