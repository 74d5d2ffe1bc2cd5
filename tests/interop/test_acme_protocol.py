"""ACME (RFC 8555) protocol interop: the real `sigil serve` over HTTPS against a hand-made JWS client
(acme_client.py) that plays a careful or a hostile client.

One server per module does the real work: challenges are really validated against this module's own
http-01 responder (a threaded HTTP server on loopback) and its mock DNS (Debian's
`pebble-challtestsrv`: every A record is 127.0.0.1, TXT records set through its management API).
Its sigil.yaml has several provisioners (several directories):
  acme        no EAB; all challenge types
  eab         EAB required (the default)
  restricted  no EAB; allowed_names .allowed.example.com; http-01 only
A second server runs in test mode (insecure_skip_validation) with orders_per_account_per_hour: 2,
for the rate limit, the per-request warning, and the restart (nonces do not survive it).

Every response of every client is checked for Replay-Nonce and Link: <directory>;rel="index"
(RFC 8555 §6.5, §7.1); every error for application/problem+json and its exact ACME error type.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID
from requests.utils import parse_header_links

from acme_client import (
    ACME_ERROR, ALGORITHMS, JOSE, AccountKey, ACMEClient, ari_cert_id, b64u, b64u_decode, describe, dns01_txt,
    eab_binding, flattened_jws, flip_bit, key_authorization, make_csr,
)
from interop_helpers import run, sigil_bin
from serve_helpers import SigilServer, free_port

PROBLEM = "application/problem+json"


# ------------------------------------------------------------------------------------ assertions


def ctype(r: requests.Response) -> str:
    return r.headers.get("Content-Type", "").split(";")[0].strip().lower()


def problem(r: requests.Response, status: int, kind: str) -> dict:
    """An RFC 8555 §6.7 problem: this status, application/problem+json, type urn:ietf:params:acme:error:KIND."""
    assert r.status_code == status, f"expected {status} {kind}" + describe(r)
    assert ctype(r) == PROBLEM, f"Content-Type {r.headers.get('Content-Type')!r}" + describe(r)
    doc = r.json()
    assert doc.get("type") == ACME_ERROR + kind, f"expected type {ACME_ERROR + kind}" + describe(r)
    assert doc.get("status", status) == status, describe(r)
    assert isinstance(doc.get("detail"), str) and doc["detail"], describe(r)
    return doc


def ok(r: requests.Response, status: int = 200, content_type: Optional[str] = "application/json") -> requests.Response:
    assert r.status_code == status, f"expected {status}" + describe(r)
    if content_type:
        assert ctype(r) == content_type, f"Content-Type {r.headers.get('Content-Type')!r}" + describe(r)
    return r


def header_check(directory_url: str):
    """on_response hook: EVERY response carries a Replay-Nonce and Link: <directory>;rel="index"."""
    def check(r: requests.Response) -> None:
        assert r.headers.get("Replay-Nonce"), "no Replay-Nonce (RFC 8555 §6.5)" + describe(r)
        links = parse_header_links(r.headers.get("Link", "")) if r.headers.get("Link") else []
        assert any(link.get("rel") == "index" and link.get("url") == directory_url for link in links), \
            f'no Link: <{directory_url}>;rel="index" (RFC 8555 §7.1)' + describe(r)
    return check


def links(r: requests.Response, rel: str) -> list[str]:
    return [link["url"] for link in parse_header_links(r.headers.get("Link", "")) if link.get("rel") == rel]


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ------------------------------------------------------------------------------------ peers


class Responder:
    """http-01 responder: GET /.well-known/acme-challenge/TOKEN -> the key authorization."""

    def __init__(self):
        self.tokens: dict[str, str] = {}
        self.hits: list[tuple[str, str]] = []
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                responder.hits.append((self.path, self.headers.get("Host", "")))
                prefix = "/.well-known/acme-challenge/"
                token = self.path[len(prefix):] if self.path.startswith(prefix) else None
                body = responder.tokens.get(token) if token else None
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a validator may open several connections at once
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class MockDNS:
    """pebble-challtestsrv as a DNS server only: A -> 127.0.0.1 for every name; TXT by API."""

    def __init__(self, logdir: Path):
        exe = shutil.which("pebble-challtestsrv")
        if not exe:
            pytest.skip("pebble-challtestsrv is not installed (apt-get install pebble)")
        self.dns_port, self.mgmt_port = free_port(), free_port()
        self.log = open(logdir / "challtestsrv.log", "wb")
        self.proc = subprocess.Popen(
            [exe, "-dns01", f"127.0.0.1:{self.dns_port}", "-management", f"127.0.0.1:{self.mgmt_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.http = requests.Session()
        self.http.trust_env = False
        deadline = time.monotonic() + 20
        while True:
            try:
                self.http.post(self.api("clear-txt"), json={"host": "_probe.example."}, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("pebble-challtestsrv did not start")
                time.sleep(0.1)

    def api(self, what: str) -> str:
        return f"http://127.0.0.1:{self.mgmt_port}/{what}"

    def set_txt(self, name: str, value: str) -> None:
        r = self.http.post(self.api("set-txt"), json={"host": f"_acme-challenge.{name}.", "value": value}, timeout=10)
        assert r.status_code == 200, r.text

    def stop(self):
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


# ------------------------------------------------------------------------------------ servers


@dataclass
class Env:
    server: SigilServer
    home: Path
    binary: str
    workdir: Path
    responder: Optional[Responder] = None
    dns: Optional[MockDNS] = None
    clients: list = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.home / "root.pem"

    def directory(self, provisioner: str = "acme") -> str:
        return f"{self.server.url}/acme/{provisioner}/directory"

    def client(self, provisioner: str = "acme", alg: str = "ES256", key: Optional[AccountKey] = None,
               check: bool = True) -> ACMEClient:
        d = self.directory(provisioner)
        c = ACMEClient(d, str(self.root), key or AccountKey(alg), on_response=header_check(d) if check else None)
        self.clients.append(c)
        return c

    def account(self, provisioner: str = "acme", alg: str = "ES256", contact=None) -> ACMEClient:
        c = self.client(provisioner, alg)
        ok(c.new_account(contact), 201)
        return c

    def eab_key(self, name: Optional[str] = None, allow: tuple = ()) -> tuple[str, str]:
        name = name or f"k-{secrets.token_hex(6)}"
        args = [self.binary, "acme", "eab", "create", "--home", str(self.home), "--name", name]
        for pattern in allow:
            args += ["--allow", pattern]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env["SIGIL_HOME"] = str(self.home)
        p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stdout + p.stderr
        values = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
        return values["kid"].strip(), values["hmac key"].strip()

    def close(self):
        for c in self.clients:
            c.close()


@pytest.fixture(scope="module")
def acme_bin(tmp_path_factory) -> str:
    """A private copy of SIGIL_BIN (the lead rebuilds .build/debug/sigil while tests run)."""
    dst = tmp_path_factory.mktemp("acme-bin") / "sigil"
    for _ in range(5):
        shutil.copy2(sigil_bin(), dst)
        os.chmod(dst, 0o755)
        if run([dst, "--help"], timeout=60).returncode == 0:
            return str(dst)
        time.sleep(2)
    raise AssertionError("the copied sigil binary does not run")


def write_config(home: Path, acme: dict) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "sigil.yaml").write_text(yaml.safe_dump({"acme": acme}, sort_keys=False))


@pytest.fixture(scope="module")
def env(acme_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("acme-proto")
    dns = MockDNS(work)
    responder = Responder()
    home = work / "home"
    write_config(home, {
        "http01_port": responder.port,
        "tls_alpn01_port": free_port(),  # nothing listens there
        "dns_resolver": f"127.0.0.1:{dns.dns_port}",
        # No test here waits for a validation to time out (closed ports refuse at once); the
        # validator's fetches from Python responders may be slow on a loaded machine.
        "validation_timeout_seconds": 30,
        "provisioners": [
            {"name": "acme", "eab_required": False},
            {"name": "eab"},
            {"name": "restricted", "eab_required": False, "allowed_names": [".allowed.example.com"],
             "challenges": ["http-01"]},
        ],
    })
    # A fixed HTTP port and http_public_url: the CRL and OCSP URLs in certificates must be reachable.
    http_port = free_port()
    server = SigilServer(acme_bin, home, "--http-listen", f"127.0.0.1:{http_port}", "--http-public-url",
                         f"http://127.0.0.1:{http_port}", logdir=work / "logs", name="acme")
    e = Env(server, home, acme_bin, work, responder, dns)
    try:
        server.start(timeout=180)
        yield e
    finally:
        e.close()
        server.stop(timeout=20)
        responder.stop()
        dns.stop()


@pytest.fixture(scope="module")
def skip_env(acme_bin, tmp_path_factory):
    """Test mode: challenges are not validated; two orders per account per hour."""
    work = tmp_path_factory.mktemp("acme-skip")
    home = work / "home"
    write_config(home, {"insecure_skip_validation": True, "eab_required": False,
                        "rate_limits": {"orders_per_account_per_hour": 2}})
    # Fixed ports below the ephemeral range: the last test restarts the server on the same ports,
    # and a port the kernel picked (port 0) could go to another socket while it is down.
    server = SigilServer(acme_bin, home, "--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{free_port()}",
                         logdir=work / "logs", name="skip")
    e = Env(server, home, acme_bin, work)
    try:
        server.start(timeout=180)
        yield e
    finally:
        e.close()
        e.server.stop(timeout=20)


# ------------------------------------------------------------------------------------ flows


@dataclass
class Issued:
    client: ACMEClient
    order: dict
    order_url: str
    pem: str
    cert: x509.Certificate
    chain: list
    key: object


def validate(env: Env, c: ACMEClient, authz_url: str) -> dict:
    """Answers the authorization's challenge (http-01, or dns-01 for a wildcard) and waits."""
    authz = ok(c.post_as_get(authz_url)).json()
    if authz["status"] != "pending":
        return authz
    kind = "dns-01" if authz.get("wildcard") else "http-01"
    ch = next(x for x in authz["challenges"] if x["type"] == kind)
    if kind == "dns-01":
        env.dns.set_txt(authz["identifier"]["value"], dns01_txt(ch["token"], c.key))
    else:
        env.responder.tokens[ch["token"]] = key_authorization(ch["token"], c.key)
    r = ok(c.post(ch["url"], {}))
    assert r.json()["status"] in ("valid", "processing"), describe(r)
    if r.json()["status"] == "processing":
        assert r.headers.get("Retry-After"), "a processing challenge without Retry-After" + describe(r)
    return c.poll(authz_url, lambda b: b["status"] != "pending")


def split_names(names):
    dns, ips = [], []
    for n in names:
        try:
            ipaddress.ip_address(n)
            ips.append(n)
        except ValueError:
            dns.append(n)
    return dns, ips


def issue(env: Env, c: ACMEClient, names, profile: Optional[str] = None, replaces: Optional[str] = None) -> Issued:
    r = ok(c.new_order(names, profile=profile, replaces=replaces), 201)
    order, order_url = r.json(), r.headers["Location"]
    for a in order["authorizations"]:
        assert validate(env, c, a)["status"] == "valid"
    order = c.poll(order_url, lambda b: b["status"] != "pending")
    assert order["status"] == "ready", order
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = split_names(names)
    order = ok(c.finalize(order, make_csr(key, dns=dns, ips=ips))).json()
    order = c.poll(order_url, lambda b: b["status"] not in ("processing", "ready"))
    assert order["status"] == "valid", order
    r = ok(c.post_as_get(order["certificate"]), 200, "application/pem-certificate-chain")
    certs = x509.load_pem_x509_certificates(r.content)
    return Issued(c, order, order_url, r.text, certs[0], certs[1:], key)


# ====================================================================================== directory


def test_directory_and_nonces(env):
    c = env.client()
    d = ok(c.get(env.directory())).json()
    base = f"{env.server.url}/acme/acme/"
    for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"):
        assert isinstance(d.get(name), str) and d[name].startswith(base), (name, d)
    assert len({d[n] for n in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo")}) == 6
    assert d["meta"]["externalAccountRequired"] is False, d
    assert {"classic", "shortlived"} <= set(d["meta"]["profiles"]), d
    assert all(isinstance(v, str) and v for v in d["meta"]["profiles"].values()), d

    # Other provisioners: their own directory, their own policy.
    e = ok(env.client("eab").get(env.directory("eab"))).json()
    assert e["meta"]["externalAccountRequired"] is True, e
    assert e["newAccount"].startswith(f"{env.server.url}/acme/eab/"), e
    assert ok(env.client("restricted").get(env.directory("restricted"))).json()["meta"]["externalAccountRequired"] is False

    # RFC 8555 §7.2: HEAD 200, GET 204, both Cache-Control: no-store, each nonce fresh.
    h = c.head(d["newNonce"])
    assert h.status_code == 200, describe(h)
    g = c.get(d["newNonce"])
    assert g.status_code == 204 and not g.content, describe(g)
    for r in (h, g):
        assert "no-store" in r.headers.get("Cache-Control", ""), describe(r)
    nonces = {h.headers["Replay-Nonce"], g.headers["Replay-Nonce"], c.new_nonce(), c.new_nonce()}
    assert len(nonces) == 4


# ====================================================================================== accounts


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_new_account_key_types(env, alg):
    c = env.client(alg=alg)
    r = ok(c.new_account(["mailto:ops@example.com"]), 201)
    location = r.headers.get("Location")
    assert location and location.startswith(f"{env.server.url}/acme/acme/acct/"), describe(r)
    body = r.json()
    assert body["status"] == "valid" and body["contact"] == ["mailto:ops@example.com"], body
    # The same key again: the same account, 200 (RFC 8555 §7.3.1).
    r2 = ok(c.new_account(), 200)
    assert r2.headers.get("Location") == location, describe(r2)
    r3 = ok(c.new_account(only_return_existing=True), 200)
    assert r3.headers.get("Location") == location, describe(r3)
    # The kid works with this algorithm too.
    assert ok(c.post_as_get(location)).json()["status"] == "valid"


def test_only_return_existing_unknown_key(env):
    c = env.client()
    problem(c.new_account(only_return_existing=True), 400, "accountDoesNotExist")
    assert c.kid is None


def test_contacts(env):
    problem(env.client().new_account(["tel:+15555550100"]), 400, "unsupportedContact")
    problem(env.client().new_account(["mailto:not-an-address"]), 400, "invalidContact")


def test_account_update_and_deactivate(env):
    c = env.account(contact=["mailto:a@example.com"])
    r = ok(c.post(c.kid, {"contact": ["mailto:b@example.com", "mailto:c@example.com"]}))
    assert r.json()["contact"] == ["mailto:b@example.com", "mailto:c@example.com"], describe(r)
    assert ok(c.post_as_get(c.kid)).json()["contact"] == ["mailto:b@example.com", "mailto:c@example.com"]
    problem(c.post(c.kid, {"contact": ["tel:+15555550100"]}), 400, "unsupportedContact")

    order = ok(c.new_order(["deact.example.com"]), 201).json()
    r = ok(c.post(c.kid, {"status": "deactivated"}))
    assert r.json()["status"] == "deactivated", describe(r)
    # RFC 8555 §7.3.6: "If the server receives a POST or POST-as-GET from a deactivated account, it
    # MUST return an error response with status code 401 (Unauthorized) and type unauthorized."
    problem(c.post_as_get(c.kid), 401, "unauthorized")
    problem(c.new_order(["deact.example.com"]), 401, "unauthorized")
    problem(c.post_as_get(order["authorizations"][0]), 401, "unauthorized")


def test_deactivated_key_cannot_use_new_account(env):
    """RFC 8555 §7.3.6: once deactivated, "the server MUST NOT accept further requests authorized by
    that account's key" and answers 401 unauthorized; a newAccount signed by that key is one."""
    c = env.account()
    ok(c.post(c.kid, {"status": "deactivated"}))
    again = env.client(key=c.key)
    problem(again.new_account(), 401, "unauthorized")
    problem(again.new_account(only_return_existing=True), 401, "unauthorized")


def test_account_orders_and_authz_deactivation(env):
    c = env.account()
    r = ok(c.new_order(["list1.example.com"]), 201)
    order_url, order = r.headers["Location"], r.json()
    acct = ok(c.post_as_get(c.kid)).json()
    listed = ok(c.post_as_get(acct["orders"])).json()["orders"]
    assert order_url in listed, listed
    problem(env.account().post_as_get(acct["orders"]), 403, "unauthorized")
    # RFC 8555 §7.5.2: the client deactivates a pending authorization; the order is then invalid.
    problem(c.post(order["authorizations"][0], {"status": "valid"}), 400, "malformed")
    r = ok(c.post(order["authorizations"][0], {"status": "deactivated"}))
    assert r.json()["status"] == "deactivated", describe(r)
    assert ok(c.post_as_get(order_url)).json()["status"] == "invalid"


def test_weak_and_private_account_keys(env):
    from cryptography.hazmat.primitives.asymmetric import rsa
    weak = env.client(key=AccountKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    problem(weak.new_account(), 400, "badPublicKey")


def test_concurrent_replay(env):
    """The same signed request sent 12 times at once: exactly one is accepted (RFC 8555 §6.5)."""
    import concurrent.futures as cf
    c = env.account()
    body = json.dumps(c.sign(c.kid, None))

    def send(_):
        s = requests.Session()
        s.trust_env = False
        s.verify = str(env.root)
        try:
            return s.post(c.kid, data=body, headers={"Content-Type": JOSE}, timeout=60)
        finally:
            s.close()

    with cf.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(send, range(12)))
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(400) == 11, codes
    for r in results:
        if r.status_code == 400:
            problem(r, 400, "badNonce")


def test_oversized_body(env):
    """A body above the server's limit is refused as a problem document, and (RFC 8555 §6.5, §7.1)
    the response still carries a fresh Replay-Nonce and the directory link."""
    c = env.account()
    r = c.post_raw(c.url("newOrder"), b"{" + b" " * (300 * 1024) + b"}")
    assert r.status_code == 413, describe(r)
    assert ctype(r) == PROBLEM and r.json()["type"] == ACME_ERROR + "malformed", describe(r)


def test_key_change(env):
    c = env.account()
    old_key, kid = c.key, c.kid
    new_key = AccountKey("ES256")
    # The inner JWS must be for the same URL, by the new key, naming this account and its old key.
    problem(c.key_change(new_key, inner_url=c.url("newOrder")), 400, "malformed")
    problem(c.key_change(new_key, old_jwk=AccountKey("ES256").jwk()), 400, "malformed")
    problem(c.key_change(new_key, account=kid + "x"), 400, "malformed")
    forged = flattened_jws(AccountKey("ES256"), {"alg": "ES256", "jwk": new_key.jwk(), "url": c.url("keyChange")},
                           {"account": kid, "oldKey": old_key.jwk()})
    problem(c.post(c.url("keyChange"), forged), 400, "malformed")
    assert c.key is old_key

    r = ok(c.key_change(new_key))
    assert r.json()["status"] == "valid", describe(r)
    assert c.key is new_key
    # The new key works with the same kid; the old key does not.
    ok(c.post_as_get(kid))
    ok(c.new_order(["rollover.example.com"]), 201)
    problem(c.post_as_get(kid, key=old_key), 400, "malformed")
    old = env.client(key=old_key)
    problem(old.new_account(only_return_existing=True), 400, "accountDoesNotExist")
    again = env.client(key=new_key)
    assert ok(again.new_account(only_return_existing=True)).headers["Location"] == kid
    # Once more, onto another key type (ES256 -> EdDSA): the ES256 key no longer fits the account.
    ed = AccountKey("EdDSA")
    ok(c.key_change(ed))
    ok(c.post_as_get(kid))
    problem(c.post_as_get(kid, key=new_key), 400, "badSignatureAlgorithm")
    new_key = ed

    # RFC 8555 §7.3.5: a key another account holds -> 409 Conflict with that account's URL.
    other = env.account(alg="ES384")
    r = c.key_change(other.key)
    assert r.status_code == 409, describe(r)
    assert ctype(r) == PROBLEM and r.json()["type"].startswith(ACME_ERROR), describe(r)
    assert r.headers.get("Location") == other.kid, describe(r)
    assert c.key is new_key


# ====================================================================================== JWS forgeries


def test_replayed_nonce(env):
    c = env.account()
    body = c.sign(c.kid, None)
    ok(c.post_raw(c.kid, body))
    r = c.post_raw(c.kid, body)
    problem(r, 400, "badNonce")
    # A careful client retries with the Replay-Nonce of the error.
    ok(c.post_as_get(c.kid, nonce=r.headers["Replay-Nonce"]))


def test_forged_and_missing_nonces(env):
    c = env.account()
    problem(c.post_as_get(c.kid, nonce=b64u(secrets.token_bytes(40))), 400, "badNonce")
    problem(c.post_as_get(c.kid, nonce="not-a-nonce"), 400, "badNonce")
    problem(c.post_as_get(c.kid, nonce=""), 400, "badNonce")
    # A real nonce with its expiry moved (bytes 16..24 of Sigil's format; any change must fail).
    real = b64u_decode(c.new_nonce())
    for i in (16, 23, len(real) - 1, 0):
        moved = bytearray(real)
        moved[i] ^= 0x01
        problem(c.post_as_get(c.kid, nonce=b64u(bytes(moved))), 400, "badNonce")
    problem(c.post_as_get(c.kid, nonce=None), 400, "badNonce")
    # newAccount too (jwk-signed requests use nonces the same way).
    problem(env.client().new_account(nonce=None), 400, "badNonce")


@pytest.mark.parametrize("alg", ["ES256", "ES512", "RS256", "EdDSA"])
def test_flipped_signature_bit(env, alg):
    c = env.account(alg=alg)
    for index in (0, None, -1):
        tamper = (lambda s, i=index: flip_bit(s, len(s) - 1 if i == -1 else i))
        problem(c.post_as_get(c.kid, tamper=tamper), 400, "malformed")
    problem(env.client(alg=alg).new_account(tamper=flip_bit), 400, "malformed")
    # The signature of another message does not verify either.
    body = c.sign(c.kid, {"contact": ["mailto:x@example.com"]})
    body["payload"] = b64u(b'{"contact":["mailto:evil@example.com"]}')
    problem(c.post_raw(c.kid, body), 400, "malformed")
    assert ok(c.post_as_get(c.kid)).json()["contact"] == []


def test_alg_none_and_mac(env):
    c = env.account()
    nonce = c.new_nonce()
    header = {"alg": "none", "nonce": nonce, "url": c.kid, "kid": c.kid}
    protected = b64u(json.dumps(header).encode())
    # RFC 7515 §A.5: an unsecured JWS has an empty signature; RFC 8555 §6.2: badSignatureAlgorithm.
    unsecured = {"protected": protected, "payload": "", "signature": ""}
    # First with some signature bytes (what a sloppy attacker sends), then the real unsecured form.
    for body in ({**unsecured, "signature": b64u(b"\x00" * 64)}, unsecured):
        doc = problem(c.post_raw(c.kid, body), 400, "badSignatureAlgorithm")
        assert "ES256" in doc.get("algorithms", []) and "none" not in doc["algorithms"], doc
        header["nonce"] = c.new_nonce()
        protected = b64u(json.dumps(header).encode())
        unsecured = {"protected": protected, "payload": "", "signature": ""}
    import hashlib
    import hmac
    header = {"alg": "HS256", "nonce": c.new_nonce(), "url": c.kid, "kid": c.kid}
    protected = b64u(json.dumps(header).encode())
    mac = hmac.new(json.dumps(c.key.jwk()).encode(), f"{protected}.".encode(), hashlib.sha256).digest()
    doc = problem(c.post_raw(c.kid, {"protected": protected, "payload": "", "signature": b64u(mac)}), 400,
                  "badSignatureAlgorithm")
    assert set(doc.get("algorithms", [])) >= {"ES256"} and "HS256" not in doc["algorithms"], doc


def test_alg_not_matching_key(env):
    c = env.account()
    problem(c.post_as_get(c.kid, alg="RS256"), 400, "badSignatureAlgorithm")
    problem(c.post_as_get(c.kid, alg="ES384", sign_alg="ES384"), 400, "badSignatureAlgorithm")
    problem(c.post_as_get(c.kid, alg="EdDSA"), 400, "badSignatureAlgorithm")
    rsa = env.account(alg="RS256")
    problem(rsa.post_as_get(rsa.kid, alg="ES256"), 400, "badSignatureAlgorithm")
    problem(env.client().new_account(alg="RS256"), 400, "badSignatureAlgorithm")


def test_url_header_mismatch(env):
    c = env.account()
    problem(c.post_raw(c.kid, c.sign(c.url("newOrder"), None)), 403, "unauthorized")
    problem(c.post_raw(c.kid, c.sign(c.kid.replace("127.0.0.1", "localhost"), None)), 403, "unauthorized")
    problem(c.post_raw(c.kid, c.sign(c.kid + "/", None)), 403, "unauthorized")
    problem(c.post_raw(c.kid, c.sign(c.kid, None, drop=("url",))), 400, "malformed")
    # A newAccount signed for the newOrder URL.
    n = env.client()
    problem(n.post_raw(n.url("newAccount"), n.sign(n.url("newOrder"), {"termsOfServiceAgreed": True}, use_jwk=True)),
            403, "unauthorized")


def test_jwk_and_kid_rules(env):
    c = env.account()
    # Both jwk and kid.
    problem(c.post_as_get(c.kid, header={"jwk": c.key.jwk()}), 400, "malformed")
    # Neither.
    problem(c.post_as_get(c.kid, drop=("kid",)), 400, "malformed")
    # jwk where the account's kid is required (newOrder, account URL).
    problem(c.new_order(["jwk.example.com"], use_jwk=True), 400, "malformed")
    problem(c.post_as_get(c.kid, use_jwk=True), 400, "malformed")
    # kid on newAccount.
    problem(c.post(c.url("newAccount"), {"termsOfServiceAgreed": True}, use_jwk=False), 400, "malformed")
    # kid of an account that does not exist (here and in another directory).
    problem(c.post_as_get(c.kid, kid=f"{env.server.url}/acme/acme/acct/doesnotexist"), 400, "accountDoesNotExist")
    ghost = env.client()
    ghost.kid = f"{env.server.url}/acme/acme/acct/doesnotexist"
    problem(ghost.new_order(["ghost.example.com"]), 400, "accountDoesNotExist")
    r = env.client("restricted").new_account()
    ok(r, 201)
    problem(c.post_as_get(c.url("newOrder"), kid=r.headers["Location"]), 400, "accountDoesNotExist")
    # A private key in the JWK is refused.
    n = env.client()
    priv = n.key.key.private_numbers().private_value.to_bytes(32, "big")
    problem(n.post(n.url("newAccount"), {}, header={"jwk": {**n.key.jwk(), "d": b64u(priv)}}, use_jwk=True),
            400, "badPublicKey")


def test_content_type_and_serialization(env):
    c = env.account()
    r = c.post_as_get(c.kid, content_type="application/json")
    problem(r, 415, "malformed")
    problem(c.post_as_get(c.kid, content_type="text/plain"), 415, "malformed")
    # The general JWS serialization (RFC 7515 §7.2.1) is not allowed (RFC 8555 §6.2).
    flat = c.sign(c.kid, None)
    general = {"payload": flat["payload"], "signatures": [{"protected": flat["protected"], "signature": flat["signature"]}]}
    problem(c.post_raw(c.kid, general), 400, "malformed")
    # Unprotected header members, compact serialization, not JSON at all.
    flat = c.sign(c.kid, None)
    problem(c.post_raw(c.kid, {**flat, "header": {"kid": c.kid}}), 400, "malformed")
    flat = c.sign(c.kid, None)
    problem(c.post_raw(c.kid, f"{flat['protected']}.{flat['payload']}.{flat['signature']}"), 400, "malformed")
    problem(c.post_raw(c.kid, b"\x00\xff not json"), 400, "malformed")


def test_other_accounts_resources_and_get(env):
    alice, mallory = env.account(), env.account()
    r = ok(alice.new_order(["alice.example.com"]), 201)
    order_url, order = r.headers["Location"], r.json()
    problem(mallory.post_as_get(order_url), 403, "unauthorized")
    problem(mallory.post_as_get(order["authorizations"][0]), 403, "unauthorized")
    authz = ok(alice.post_as_get(order["authorizations"][0])).json()
    problem(mallory.post(authz["challenges"][0]["url"], {}), 403, "unauthorized")
    problem(mallory.post_as_get(alice.kid), 403, "unauthorized")
    problem(mallory.post(order["finalize"], {"csr": b64u(b"x")}), 403, "unauthorized")
    # RFC 8555 §6.3: resources are read with POST-as-GET; GET -> 405.
    r = alice.get(order_url)
    problem(r, 405, "malformed")
    assert ok(alice.post_as_get(order_url)).json()["status"] == "pending"


def test_405_has_allow_header(env):
    """RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405 response"."""
    c = env.account()
    r = c.get(c.kid)
    assert r.status_code == 405, describe(r)
    assert "POST" in r.headers.get("Allow", ""), "405 without Allow: POST (RFC 9110 §15.5.6)" + describe(r)


# ====================================================================================== EAB


def test_eab(env):
    kid, hmac_key = env.eab_key()
    c = env.client("eab")
    url = c.url("newAccount")
    problem(c.new_account(), 403, "externalAccountRequired")
    # Wrong MAC key, unknown kid, a binding of another key, a binding for another URL.
    problem(c.new_account(eab=(kid, b64u(secrets.token_bytes(32)))), 403, "unauthorized")
    problem(c.new_account(eab=("kid-doesnotexist", hmac_key)), 403, "unauthorized")
    problem(c.new_account(eab=(kid, hmac_key), eab_jwk=AccountKey("ES256").jwk()), 403, "unauthorized")
    wrong_url = eab_binding(c.key.jwk(), kid, hmac_key, url.replace("new-account", "new-order"))
    problem(c.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": wrong_url}, use_jwk=True),
            403, "unauthorized")
    # A MAC bit flipped.
    binding = eab_binding(c.key.jwk(), kid, hmac_key, url)
    binding["signature"] = b64u(flip_bit(b64u_decode(binding["signature"])))
    problem(c.post(url, {"termsOfServiceAgreed": True, "externalAccountBinding": binding}, use_jwk=True),
            403, "unauthorized")
    # None of those bound the key.
    r = ok(c.new_account(eab=(kid, hmac_key)), 201)
    assert r.headers["Location"].startswith(f"{env.server.url}/acme/eab/acct/")
    # The EAB key binds one account only.
    d = env.client("eab", alg="EdDSA")
    problem(d.new_account(eab=(kid, hmac_key)), 403, "unauthorized")
    # The bound account works; the same key again finds it (no new binding needed).
    ok(c.new_order(["eab.example.com"]), 201)
    assert ok(env.client("eab", key=c.key).new_account(), 200).headers["Location"] == c.kid


def test_eab_allowed_names(env):
    kid, hmac_key = env.eab_key(allow=("*.team.example.com",))
    c = env.client("eab")
    ok(c.new_account(eab=(kid, hmac_key)), 201)
    ok(c.new_order(["www.team.example.com"]), 201)
    doc = problem(c.new_order(["www.other.example.com"]), 400, "rejectedIdentifier")
    assert any(s.get("identifier") == {"type": "dns", "value": "www.other.example.com"} for s in doc.get("subproblems", [])), doc


# ====================================================================================== orders


def test_new_order_dns_ip_wildcard(env):
    c = env.account()
    r = ok(c.new_order(["www.mixed.example.com", "127.0.0.1", "*.mixed.example.com"]), 201)
    order = r.json()
    assert r.headers["Location"].startswith(f"{env.server.url}/acme/acme/order/"), describe(r)
    assert order["status"] == "pending" and order["profile"] == "classic", order
    assert order["identifiers"] == [{"type": "dns", "value": "www.mixed.example.com"}, {"type": "ip", "value": "127.0.0.1"},
                                    {"type": "dns", "value": "*.mixed.example.com"}], order
    assert len(order["authorizations"]) == 3 and order["finalize"].startswith(r.headers["Location"])
    authzs = [ok(c.post_as_get(a)).json() for a in order["authorizations"]]
    by_value = {(a["identifier"]["type"], a["identifier"]["value"], a.get("wildcard", False)): a for a in authzs}
    www = by_value[("dns", "www.mixed.example.com", False)]
    assert {x["type"] for x in www["challenges"]} == {"http-01", "dns-01", "tls-alpn-01"}, www
    ip = by_value[("ip", "127.0.0.1", False)]
    assert "dns-01" not in {x["type"] for x in ip["challenges"]} and "http-01" in {x["type"] for x in ip["challenges"]}, ip
    # RFC 8555 §7.1.4: the wildcard's authorization names the base domain, wildcard: true, dns-01 only.
    wild = by_value[("dns", "mixed.example.com", True)]
    assert [x["type"] for x in wild["challenges"]] == ["dns-01"], wild
    for a in authzs:
        assert a["status"] == "pending"
        for x in a["challenges"]:
            assert x["status"] == "pending" and len(b64u_decode(x["token"])) >= 16 and "=" not in x["token"], x
    # IPv6 in its canonical form (RFC 8738 §3 / RFC 5952).
    r = ok(c.new_order([{"type": "ip", "value": "::1"}]), 201)
    assert r.json()["identifiers"] == [{"type": "ip", "value": "::1"}]


def test_order_identifier_problems(env):
    c = env.account()
    doc = problem(c.new_order([{"type": "email", "value": "a@example.com"}]), 400, "unsupportedIdentifier")
    doc = problem(c.new_order(["bad_name!.example.com"]), 400, "rejectedIdentifier")
    assert doc.get("subproblems"), doc
    assert doc["subproblems"][0]["identifier"] == {"type": "dns", "value": "bad_name!.example.com"}, doc
    assert doc["subproblems"][0]["type"] == ACME_ERROR + "rejectedIdentifier", doc
    # Several bad names: one problem, a subproblem per identifier (RFC 8555 §6.7.1).
    doc = problem(c.new_order(["ok.example.com", "-bad.example.com", "also..bad.example.com"]), 400, "rejectedIdentifier")
    assert {s["identifier"]["value"] for s in doc["subproblems"]} == {"-bad.example.com", "also..bad.example.com"}, doc
    problem(c.new_order([]), 400, "malformed")
    problem(c.new_order(["x.example.com"], profile="no-such-profile"), 400, "invalidProfile")


def test_restricted_provisioner(env):
    c = env.account("restricted")
    ok(c.new_order(["www.allowed.example.com"]), 201)
    doc = problem(c.new_order(["www.elsewhere.example.com"]), 400, "rejectedIdentifier")
    assert doc["subproblems"][0]["identifier"] == {"type": "dns", "value": "www.elsewhere.example.com"}, doc
    doc = problem(c.new_order(["www.allowed.example.com", "evil.example.net"]), 400, "rejectedIdentifier")
    assert [s["identifier"]["value"] for s in doc["subproblems"]] == ["evil.example.net"], doc
    # No dns-01 in this directory: no wildcards.
    problem(c.new_order(["*.allowed.example.com"]), 400, "rejectedIdentifier")
    # Only http-01 is offered.
    order = ok(c.new_order(["api.allowed.example.com"]), 201).json()
    authz = ok(c.post_as_get(order["authorizations"][0])).json()
    assert [x["type"] for x in authz["challenges"]] == ["http-01"], authz


def test_full_flow_http01(env, tmp_path):
    c = env.account()
    names = ["flow.example.com", "127.0.0.1"]
    r = ok(c.new_order(names), 201)
    order, order_url = r.json(), r.headers["Location"]
    # Finalize before the authorizations are done.
    key = ec.generate_private_key(ec.SECP256R1())
    problem(c.finalize(order, make_csr(key, dns=["flow.example.com"], ips=["127.0.0.1"])), 403, "orderNotReady")

    hits_before = len(env.responder.hits)
    for a in order["authorizations"]:
        authz = ok(c.post_as_get(a)).json()
        ch = next(x for x in authz["challenges"] if x["type"] == "http-01")
        env.responder.tokens[ch["token"]] = key_authorization(ch["token"], c.key)
        r = ok(c.post(ch["url"], {}))
        assert r.json()["status"] in ("valid", "processing"), describe(r)
        if r.json()["status"] == "processing":
            assert r.headers.get("Retry-After"), describe(r)
        assert a in links(r, "up"), describe(r)
        authz = c.poll(a, lambda b: b["status"] != "pending")
        assert authz["status"] == "valid", authz
        http = next(x for x in authz["challenges"] if x["type"] == "http-01")
        assert http["status"] == "valid" and "validated" in http, authz
    # The server really fetched both tokens from the responder.
    fetched = {path for path, _ in env.responder.hits[hits_before:]}
    assert len([p for p in fetched if p.startswith("/.well-known/acme-challenge/")]) >= 2, env.responder.hits

    order = ok(c.post_as_get(order_url)).json()
    assert order["status"] == "ready", order
    # CSRs the order cannot take: an extra name, a missing name, the account key.
    problem(c.finalize(order, make_csr(key, dns=["flow.example.com", "extra.example.com"], ips=["127.0.0.1"])), 400, "badCSR")
    problem(c.finalize(order, make_csr(key, dns=["flow.example.com"])), 400, "badCSR")
    problem(c.finalize(order, make_csr(key, dns=["flow.example.com"], ips=["127.0.0.1"], cn="other.example.com")), 400, "badCSR")
    problem(c.finalize(order, make_csr(c.key.key, dns=["flow.example.com"], ips=["127.0.0.1"])), 400, "badCSR")
    # A CSR whose signature does not verify (a bit flipped inside the signature BIT STRING).
    from interop_helpers import flip_signature_bit
    problem(c.finalize(order, flip_signature_bit(make_csr(key, dns=["flow.example.com"], ips=["127.0.0.1"]))), 400, "badCSR")
    problem(c.post(order["finalize"], {"csr": "not base64!"}), 400, "malformed")
    assert ok(c.post_as_get(order_url)).json()["status"] == "ready"

    r = ok(c.finalize(order, make_csr(key, dns=["flow.example.com"], ips=["127.0.0.1"])))
    order = r.json()
    if order["status"] == "processing":
        order = c.poll(order_url, lambda b: b["status"] != "processing")
    assert order["status"] == "valid" and order["certificate"].startswith(f"{env.server.url}/acme/acme/cert/"), order
    # A valid order cannot be finalized again.
    problem(c.finalize(order, make_csr(key, dns=["flow.example.com"], ips=["127.0.0.1"])), 403, "orderNotReady")

    # Download: POST-as-GET only, PEM chain, verifies against root.pem.
    r = ok(c.post_as_get(order["certificate"]), 200, "application/pem-certificate-chain")
    certs = x509.load_pem_x509_certificates(r.content)
    leaf = certs[0]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"flow.example.com"}
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(b"".join(x.public_bytes(serialization.Encoding.PEM) for x in certs[1:]))
    p = run(["openssl", "verify", "-CAfile", env.root, "-untrusted", tmp_path / "chain.pem", "-purpose", "sslserver",
             tmp_path / "leaf.pem"])
    assert p.returncode == 0 and p.stdout.strip().endswith(": OK"), p.stdout + p.stderr
    problem(c.post(order["certificate"], {}), 400, "malformed")
    other = env.account()
    problem(other.post_as_get(order["certificate"]), 403, "unauthorized")

    # RFC 8555 §7.4.2: an alternate chain, here the one that includes the root.
    alternates = links(r, "alternate")
    assert alternates, "no Link rel=alternate" + describe(r)
    a = ok(c.post_as_get(alternates[0]), 200, "application/pem-certificate-chain")
    alt = x509.load_pem_x509_certificates(a.content)
    root = x509.load_pem_x509_certificate(env.root.read_bytes())
    assert alt[0] == leaf and alt[-1] == root, [x.subject.rfc4514_string() for x in alt]

    # A second order for the same names reuses the valid authorizations: ready at once.
    r = ok(c.new_order(names), 201)
    assert r.json()["status"] == "ready", describe(r)
    assert sorted(r.json()["authorizations"]) == sorted(order["authorizations"]), describe(r)
    # ... and the shortlived profile lasts 6 days.
    issued = issue(env, c, names, profile="shortlived")
    assert issued.order["profile"] == "shortlived"
    lifetime = issued.cert.not_valid_after_utc - issued.cert.not_valid_before_utc
    assert abs(lifetime - dt.timedelta(days=6)) <= dt.timedelta(hours=1), lifetime
    classic = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert classic >= dt.timedelta(days=30), classic


def test_wildcard_dns01_issuance(env):
    c = env.account()
    issued = issue(env, c, ["*.wild.example.com", "wild.example.com"])
    san = issued.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"*.wild.example.com", "wild.example.com"}


def test_failed_challenges(env):
    c = env.account()
    # The responder serves a wrong key authorization -> incorrectResponse.
    r = ok(c.new_order(["wrong.example.com"]), 201)
    order_url, order = r.headers["Location"], r.json()
    authz = ok(c.post_as_get(order["authorizations"][0])).json()
    ch = next(x for x in authz["challenges"] if x["type"] == "http-01")
    env.responder.tokens[ch["token"]] = key_authorization(ch["token"], AccountKey("ES256"))
    ok(c.post(ch["url"], {}))
    authz = c.poll(order["authorizations"][0], lambda b: b["status"] != "pending")
    assert authz["status"] == "invalid", authz
    failed = next(x for x in authz["challenges"] if x["type"] == "http-01")
    assert failed["status"] == "invalid" and failed["error"]["type"] == ACME_ERROR + "incorrectResponse", failed
    order = ok(c.post_as_get(order_url)).json()
    assert order["status"] == "invalid" and order.get("error", {}).get("type", "").startswith(ACME_ERROR), order
    problem(c.finalize(order, make_csr(ec.generate_private_key(ec.SECP256R1()), dns=["wrong.example.com"])), 403, "orderNotReady")
    # Another challenge of an invalid authorization cannot revive it.
    other = next(x for x in authz["challenges"] if x["type"] == "dns-01")
    r = c.post(other["url"], {})
    assert c.post_as_get(order["authorizations"][0]).json()["status"] == "invalid", describe(r)

    # Nothing listens (127.0.0.2: the responder binds 127.0.0.1 only) -> connection.
    r = ok(c.new_order(["127.0.0.2"]), 201)
    order_url, order = r.headers["Location"], r.json()
    authz = ok(c.post_as_get(order["authorizations"][0])).json()
    ch = next(x for x in authz["challenges"] if x["type"] == "http-01")
    env.responder.tokens[ch["token"]] = key_authorization(ch["token"], c.key)
    ok(c.post(ch["url"], {}))
    authz = c.poll(order["authorizations"][0], lambda b: b["status"] != "pending")
    assert authz["status"] == "invalid", authz
    failed = next(x for x in authz["challenges"] if x["type"] == "http-01")
    assert failed["error"]["type"] == ACME_ERROR + "connection", failed
    assert ok(c.post_as_get(order_url)).json()["status"] == "invalid"

    # No token served at all (404) -> the challenge fails too (unauthorized, as Boulder answers).
    r = ok(c.new_order(["missing.example.com"]), 201)
    authz_url = r.json()["authorizations"][0]
    ch = next(x for x in ok(c.post_as_get(authz_url)).json()["challenges"] if x["type"] == "http-01")
    # POST-as-GET reads the challenge; only {} starts validation (RFC 8555 §7.5.1).
    assert ok(c.post_as_get(ch["url"])).json()["status"] == "pending"
    assert ok(c.post_as_get(authz_url)).json()["status"] == "pending"
    ok(c.post(ch["url"], {}))
    authz = c.poll(authz_url, lambda b: b["status"] != "pending")
    assert authz["status"] == "invalid", authz
    assert next(x for x in authz["challenges"] if x["type"] == "http-01")["error"]["type"].startswith(ACME_ERROR)


# ====================================================================================== revocation


def ocsp_status(cert: x509.Certificate, issuer: x509.Certificate):
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    url = next(d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    s = requests.Session()
    s.trust_env = False
    r = s.post(url, data=req.public_bytes(serialization.Encoding.DER),
               headers={"Content-Type": "application/ocsp-request"}, timeout=30)
    assert r.status_code == 200, r.text
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return resp


def crl_entry(cert: x509.Certificate):
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = cdp[0].full_name[0].value
    s = requests.Session()
    s.trust_env = False
    r = s.get(url, timeout=30)
    assert r.status_code == 200, url
    return x509.load_der_x509_crl(r.content).get_revoked_certificate_by_serial_number(cert.serial_number)


def test_revoke_by_account(env):
    c = env.account()
    issued = issue(env, c, ["revoke1.example.com"])
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    issuer = issued.chain[0]
    assert ocsp_status(issued.cert, issuer).certificate_status == ocsp.OCSPCertStatus.GOOD
    # Reasons a subscriber may not give (RFC 8555 §7.6 / RFC 5280): cACompromise, unused 7, ...
    for reason in (2, 7, 6, 8, 10, 11, -1):
        problem(c.revoke(der, reason), 400, "badRevocationReason")
    # An unrelated account; a garbage certificate.
    problem(env.account().revoke(der, 4), 403, "unauthorized")
    problem(c.revoke(b"\x30\x03\x02\x01\x01", 4), 400, "malformed")

    r = c.revoke(der, 4)
    assert r.status_code == 200, describe(r)
    resp = ocsp_status(issued.cert, issuer)
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED, resp.certificate_status
    assert resp.revocation_reason == x509.ReasonFlags.superseded
    deadline = time.monotonic() + 10
    while (entry := crl_entry(issued.cert)) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert entry is not None, "the CRL does not list the revoked certificate"
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.superseded
    problem(c.revoke(der, 4), 400, "alreadyRevoked")
    problem(c.revoke(der), 400, "alreadyRevoked")


def test_revoke_by_certificate_key(env):
    c = env.account()
    issued = issue(env, c, ["revoke2.example.com"])
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    cert_key = AccountKey("ES256", issued.key)
    k = env.client(key=cert_key)
    # Signed by another key with a jwk: unauthorized.
    problem(env.client().revoke(der, 1, use_jwk=True), 403, "unauthorized")
    r = k.revoke(der, 1, use_jwk=True)
    assert r.status_code == 200, describe(r)
    assert ocsp_status(issued.cert, issued.chain[0]).certificate_status == ocsp.OCSPCertStatus.REVOKED
    problem(k.revoke(der, 1, use_jwk=True), 400, "alreadyRevoked")


def test_revoke_reason_type(env):
    """A reason that is not an integer is malformed, not silently 'unspecified' (RFC 8555 §7.6:
    reason is an int)."""
    c = env.account()
    issued = issue(env, c, ["revoke3.example.com"])
    der = issued.cert.public_bytes(serialization.Encoding.DER)
    problem(c.post(c.url("revokeCert"), {"certificate": b64u(der), "reason": "keyCompromise"}), 400, "malformed")
    assert ocsp_status(issued.cert, issued.chain[0]).certificate_status == ocsp.OCSPCertStatus.GOOD


# ====================================================================================== ARI


def test_renewal_info(env):
    c = env.account()
    issued = issue(env, c, ["ari.example.com"])
    cert_id = ari_cert_id(issued.cert)
    r = ok(c.renewal_info(cert_id))
    window = r.json()["suggestedWindow"]
    start, end = parse_time(window["start"]), parse_time(window["end"])
    assert issued.cert.not_valid_before_utc < start < end < issued.cert.not_valid_after_utc, window
    assert int(r.headers["Retry-After"]) > 0, describe(r)

    # RFC 9773 §5: `replaces` once; a second order replacing the same certificate -> alreadyReplaced.
    r = ok(c.new_order(["ari.example.com"], replaces=cert_id), 201)
    assert r.json().get("replaces") == cert_id, describe(r)
    problem(c.new_order(["ari.example.com"], replaces=cert_id), 409, "alreadyReplaced")
    # Another account cannot claim to replace it.
    other = env.account()
    r = other.new_order(["ari.example.com"], replaces=ari_cert_id(issue(env, c, ["ari2.example.com"]).cert))
    assert r.status_code in (400, 403) and ctype(r) == PROBLEM, describe(r)

    # After revocation the window is in the past: renew now.
    ok(c.revoke(issued.cert.public_bytes(serialization.Encoding.DER), 1), 200, None)
    window = ok(c.renewal_info(cert_id)).json()["suggestedWindow"]
    now = dt.datetime.now(dt.timezone.utc)
    assert parse_time(window["start"]) < parse_time(window["end"]) <= now + dt.timedelta(seconds=5), window

    # Malformed ids -> 400; a well-formed id of no certificate -> 404.
    for bad in ("garbage", "a.b.c", "!!!.???", f"{cert_id.split('.')[0]}.", f".{cert_id.split('.')[1]}"):
        problem(c.renewal_info(bad), 400, "malformed")
    serial = b"\x01" + secrets.token_bytes(15)
    unknown = f"{cert_id.split('.')[0]}.{b64u(serial)}"
    r = c.renewal_info(unknown)
    assert r.status_code == 404 and ctype(r) == PROBLEM, describe(r)
    problem(c.new_order(["ari.example.com"], replaces="garbage"), 400, "malformed")


def test_replaces_after_the_replacing_order_failed(env):
    """RFC 9773 §5: the server refuses `replaces` only when the certificate "has already been marked as
    replaced by a different Order that is not 'invalid'". An order whose authorization was
    deactivated (RFC 8555 §7.1.6: then the order is invalid) no longer blocks a new replacement."""
    c = env.account()
    issued = issue(env, c, ["ari3.example.com"])
    cert_id = ari_cert_id(issued.cert)
    r = ok(c.new_order(["ari3.example.com"], replaces=cert_id), 201)
    first_url, first = r.headers["Location"], r.json()
    ok(c.post(first["authorizations"][0], {"status": "deactivated"}))
    assert ok(c.post_as_get(first_url)).json()["status"] == "invalid"
    r = ok(c.new_order(["ari3.example.com"], replaces=cert_id), 201)
    assert r.json().get("replaces") == cert_id, describe(r)


# ====================================================================================== test mode server


def test_skip_validation_warns_on_every_request(skip_env):
    s = skip_env.server
    assert "insecure_skip_validation" in s.stdout + s.stderr
    c = skip_env.client()
    warning = "ACME challenge validation is OFF"

    def count() -> int:
        return s.stderr.count(warning)

    before = count()
    ok(c.new_account(), 201)                # HEAD newNonce + directory GET + POST
    order = ok(c.new_order(["skip.example.com"]), 201).json()
    authz = ok(c.post_as_get(order["authorizations"][0])).json()
    ok(c.post(authz["challenges"][0]["url"], {}))
    problem(c.post_as_get(c.kid, nonce="bogus"), 400, "badNonce")
    sent = len(c.history)
    deadline = time.monotonic() + 30
    while count() - before < sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count() - before == sent, f"{count() - before} warnings for {sent} requests\n{s.stderr[-3000:]}"
    # ... and the challenge passed without any check.
    assert c.poll(order["authorizations"][0], lambda b: b["status"] != "pending")["status"] == "valid"


def test_skip_validation_off_by_default(env):
    c = env.client()
    c.get(env.directory())
    assert "validation is OFF" not in env.server.stderr


def test_rate_limit(skip_env):
    c = skip_env.account()
    ok(c.new_order(["rl1.example.com"]), 201)
    ok(c.new_order(["rl2.example.com"]), 201)
    r = c.new_order(["rl3.example.com"])
    problem(r, 429, "rateLimited")
    assert r.headers.get("Retry-After", "").isdigit() and int(r.headers["Retry-After"]) > 0, describe(r)
    # The limit is per account.
    ok(skip_env.account().new_order(["rl3.example.com"]), 201)


def test_nonces_do_not_survive_a_restart(skip_env):
    """Last in this file: it restarts the test-mode server (same ports, same home)."""
    c = skip_env.account()
    old = [c.new_nonce() for _ in range(2)]
    s = skip_env.server
    https, http = s.https_port, s.http_port
    assert s.stop(timeout=20) == 0, s.describe()
    restarted = SigilServer(s.binary, skip_env.home, "--listen", f"127.0.0.1:{https}", "--http-listen", f"127.0.0.1:{http}",
                            logdir=skip_env.workdir / "logs", name="skip-restarted")
    skip_env.server = restarted
    restarted.start(timeout=180)
    r = c.post_as_get(c.kid, nonce=old[0])
    problem(r, 400, "badNonce")
    # A careful client retries with the Replay-Nonce of the error, and succeeds.
    assert ok(c.post_as_get(c.kid, nonce=r.headers["Replay-Nonce"])).json()["status"] == "valid"
    c.nonce = old[1]
    assert ok(c.post_retry_nonce(c.kid, None)).json()["status"] == "valid"
