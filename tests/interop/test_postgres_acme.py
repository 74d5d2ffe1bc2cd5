"""ACME on several `sigil serve` nodes sharing one PostgreSQL database (issue 9): "an ACME order
started on one node and finished on the other", and "ACME nonces in the database (a nonce issued by
one node is accepted once by another, never twice)".

Two nodes (A and B), each with its own SIGIL_HOME and sigil.yaml, one database, one CA passphrase,
and the SAME public URL: https://127.0.0.1:<proxy>, a TCP pass-through proxy run by this module that
forwards to node A or node B as a test chooses. The hand-made JWS client (acme_client.py) signs every
request for the public URL (the `url` header) but sends it to the real address of the node the test
picks, so each step of a flow can be put on either node. lego goes through the proxy.

Each node's http-01 validator connects to its OWN responder (sigil.yaml `http01_port`): a token put
only into node B's responder can be validated by node B and by nothing else, so a valid challenge
shows which node validated it. Names resolve through pebble-challtestsrv (every A record 127.0.0.1).

Needs SIGIL_TEST_POSTGRES_URL (scripts/test.sh starts a throwaway PostgreSQL and sets it); skipped
without it. The lego test also needs lego (skipped without it).
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acme_client import ACME_ERROR, AccountKey, ACMEClient, describe, key_authorization, make_csr
from interop_helpers import run, sigil_bin
from serve_helpers import SigilServer
from test_acme_protocol import MockDNS, header_check, ok, problem, write_config
from test_postgres import PASSPHRASE, PG_URL, psql, with_database

pytestmark = pytest.mark.skipif(not PG_URL, reason="SIGIL_TEST_POSTGRES_URL is not set: PostgreSQL tests SKIPPED")

PROVISIONER = "acme"


# ------------------------------------------------------------------------------------ peers


class Responder:
    """http-01 responder for one node: tokens set by the test, else files under a shared webroot
    (where lego --http.webroot writes them). Records every path asked for."""

    def __init__(self, webroot: Path):
        self.tokens: dict[str, str] = {}
        self.hits: list[str] = []
        self.webroot = webroot
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                responder.hits.append(self.path)
                prefix = "/.well-known/acme-challenge/"
                token = self.path[len(prefix):] if self.path.startswith(prefix) else ""
                body = responder.tokens.get(token)
                if body is None and token and "/" not in token and token not in (".", ".."):
                    f = responder.webroot / ".well-known" / "acme-challenge" / token
                    body = f.read_text() if f.is_file() else None
                data = (body or "").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def challenge_hits(self) -> list[str]:
        return [h for h in self.hits if h.startswith("/.well-known/acme-challenge/")]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """A TCP pass-through on 127.0.0.1:<port> to 127.0.0.1:<target> (TLS goes through untouched, so
    the client talks TLS with the node itself). `target` may change between connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target: Optional[int] = None
        self.connections: list[int] = []  # the target of every connection forwarded
        self.open: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            target = self.target
            if target is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", target), timeout=10)
            except OSError:
                client.close()
                continue
            self.connections.append(target)
            self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket):
        src.settimeout(120)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()
        for s in self.open:
            try:
                s.close()
            except OSError:
                pass


# ------------------------------------------------------------------------------------ the cluster


@dataclass
class Node:
    name: str
    server: SigilServer
    home: Path
    responder: Responder

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.https_port


@dataclass
class Cluster:
    public: str
    database: str
    a: Node
    b: Node
    proxy: Proxy
    dns: MockDNS
    binary: str
    workdir: Path
    webroot: Path

    @property
    def root(self) -> Path:
        return self.a.home / "root.pem"

    @property
    def directory(self) -> str:
        return f"{self.public}/acme/{PROVISIONER}/directory"

    def client(self, node: Node) -> "NodeClient":
        return NodeClient(self, node)

    def sigil(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env["SIGIL_HOME"] = str(self.a.home)
        env["SIGIL_DATABASE"] = self.database  # the CLI reads the database from SIGIL_DATABASE
        return subprocess.run([self.binary, *map(str, args)], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def describe(self) -> str:
        return self.a.server.describe() + self.b.server.describe()


class NodeClient(ACMEClient):
    """An ACME client whose JWS `url` is always the shared public URL, but whose HTTP requests go to
    the node set in `self.node` (switch it between steps)."""

    def __init__(self, cluster: Cluster, node: Node, key: Optional[AccountKey] = None):
        super().__init__(cluster.directory, str(cluster.root), key or AccountKey("ES256"),
                         on_response=header_check(cluster.directory), timeout=30)
        self.cluster = cluster
        self.node = node
        self.sent_to: list[tuple[str, str]] = []  # (node name, public URL)

    def real(self, url: str) -> str:
        assert url.startswith(self.cluster.public + "/"), f"not under the public URL {self.cluster.public}: {url}"
        self.sent_to.append((self.node.name, url))
        return self.node.url + url[len(self.cluster.public):]

    def get(self, url: str, **kw) -> requests.Response:
        return self._record("GET", url, None, self.http.get(self.real(url), timeout=self.timeout, **kw))

    def head(self, url: str, **kw) -> requests.Response:
        return self._record("HEAD", url, None, self.http.head(self.real(url), timeout=self.timeout, **kw))

    def post_raw(self, url: str, body, content_type: str = "application/jose+json") -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        r = self.http.post(self.real(url), data=data, headers={"Content-Type": content_type}, timeout=self.timeout)
        return self._record("POST", url, body if isinstance(body, dict) else None, r)

    def on(self, node: Node) -> "NodeClient":
        self.node = node
        return self


@pytest.fixture(scope="module")
def pg_acme_bin(tmp_path_factory) -> str:
    """A private copy of SIGIL_BIN (the lead rebuilds .build/debug/sigil while tests run)."""
    dst = tmp_path_factory.mktemp("pg-acme-bin") / "sigil"
    for _ in range(5):
        shutil.copy2(sigil_bin(), dst)
        os.chmod(dst, 0o755)
        if run([dst, "--help"], timeout=60).returncode == 0:
            return str(dst)
        time.sleep(2)
    raise AssertionError("the copied sigil binary does not run")


@pytest.fixture(scope="module")
def cluster(pg_acme_bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("pg-acme")
    name = "sigil_acme_" + secrets.token_hex(6)
    psql(PG_URL, f"CREATE DATABASE {name}")
    database = with_database(PG_URL, name)
    passfile = work / "ca-passphrase"
    passfile.write_text(PASSPHRASE)
    passfile.chmod(0o600)
    webroot = work / "webroot"
    webroot.mkdir()
    started: list = []
    try:
        dns = MockDNS(work)
        started.append(dns)
        proxy = Proxy()
        started.append(proxy)
        public = f"https://127.0.0.1:{proxy.port}"
        nodes = []
        for label in ("A", "B"):
            responder = Responder(webroot)
            started.append(responder)
            home = work / f"node{label}"
            write_config(home, {
                "http01_port": responder.port,
                "dns_resolver": f"127.0.0.1:{dns.dns_port}",
                "validation_timeout_seconds": 30,  # no test waits for one to time out
                "provisioners": [{"name": PROVISIONER, "eab_required": False}],
            })
            server = SigilServer(pg_acme_bin, home, "--database", database, "--passphrase-file", passfile,
                                 "--public-url", public, logdir=work / "logs", name=f"node{label}")
            started.append(server)
            # Node A first: it creates the CA; node B finds it in the database.
            server.start(timeout=120)
            nodes.append(Node(label, server, home, responder))
        a, b = nodes
        assert a.server.admin_token and not b.server.admin_token, a.server.describe() + b.server.describe()
        assert (a.home / "root.pem").read_text() == (b.home / "root.pem").read_text(), "one CA for both nodes"
        proxy.target = a.port
        yield Cluster(public, database, a, b, proxy, dns, pg_acme_bin, work, webroot)
    finally:
        for thing in reversed(started):
            if isinstance(thing, SigilServer):
                thing.stop(timeout=10)
            else:
                thing.stop()
        for _ in range(3):
            try:
                psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                break
            except AssertionError:
                time.sleep(2)


def audit_verifies(cluster: Cluster) -> dict:
    p = cluster.sigil("audit", "verify", "--json")
    assert p.returncode == 0, f"sigil audit verify exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    result = json.loads(p.stdout)
    assert result["ok"] is True, result
    return result


def openssl_verify(cluster: Cluster, certs: list[x509.Certificate], workdir: Path) -> str:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "leaf.pem").write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    (workdir / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs[1:]))
    p = run(["openssl", "verify", "-CAfile", cluster.root, "-untrusted", workdir / "chain.pem",
             "-purpose", "sslserver", workdir / "leaf.pem"])
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 0 and out.endswith(f"{workdir / 'leaf.pem'}: OK"), out
    return out


# ====================================================================================== 1. one order, two nodes


def test_order_started_on_one_node_finished_on_the_other(cluster, tmp_path):
    A, B = cluster.a, cluster.b
    names = [f"pg-{secrets.token_hex(4)}.example.test", "127.0.0.1"]

    # Account and order on A.
    c = cluster.client(A)
    ok(c.new_account(["mailto:ops@example.test"]), 201)
    assert c.kid.startswith(f"{cluster.public}/acme/{PROVISIONER}/"), c.kid
    r = ok(c.new_order(names), 201)
    order, order_url = r.json(), r.headers["Location"]
    assert order["status"] == "pending" and len(order["authorizations"]) == 2, order

    # The authorizations on B (B reads what A wrote), their challenges answered on B. The key
    # authorizations are served only by B's responder: only B's validator can succeed.
    hits_a, hits_b = len(A.responder.challenge_hits()), len(B.responder.challenge_hits())
    c.on(B)
    for authz_url in order["authorizations"]:
        authz = ok(c.post_as_get(authz_url)).json()
        assert authz["status"] == "pending", authz
        assert authz["identifier"] in ({"type": "dns", "value": names[0]}, {"type": "ip", "value": "127.0.0.1"}), authz
        ch = next(x for x in authz["challenges"] if x["type"] == "http-01")
        assert ch["url"].startswith(cluster.public + "/"), ch
        B.responder.tokens[ch["token"]] = key_authorization(ch["token"], c.key)
        r = ok(c.post(ch["url"], {}))
        assert r.json()["status"] in ("processing", "valid"), describe(r)
        authz = c.poll(authz_url, lambda body: body["status"] != "pending", timeout=90)
        assert authz["status"] == "valid", f"authorization validated by node B: {authz}" + cluster.describe()
    assert len(B.responder.challenge_hits()) - hits_b >= 2, B.responder.hits
    assert len(A.responder.challenge_hits()) == hits_a, f"node A validated nothing: {A.responder.hits}"

    # The order, polled on A, is ready (A sees B's validations).
    c.on(A)
    order = ok(c.post_as_get(order_url)).json()
    assert order["status"] == "ready", f"order polled on node A after node B validated: {order}" + cluster.describe()

    # Finalize on B.
    c.on(B)
    key = ec.generate_private_key(ec.SECP256R1())
    r = ok(c.finalize(order, make_csr(key, dns=[names[0]], ips=["127.0.0.1"])))
    assert r.json()["status"] in ("processing", "valid"), describe(r)
    order = c.poll(order_url, lambda body: body["status"] not in ("ready", "processing"), timeout=90)
    assert order["status"] == "valid" and order["certificate"].startswith(cluster.public + "/"), order

    # Download on A; the chain verifies against the one root.
    c.on(A)
    r = ok(c.post_as_get(order["certificate"]), 200, "application/pem-certificate-chain")
    certs = x509.load_pem_x509_certificates(r.content)
    leaf = certs[0]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [names[0]]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    openssl_verify(cluster, certs, tmp_path / "verify")

    # Both nodes were really used, each step where the test put it.
    used = {n for n, _ in c.sent_to}
    assert used == {"A", "B"}, c.sent_to

    # The same certificate, read on B, and recorded in the shared database.
    c.on(B)
    again = ok(c.post_as_get(order["certificate"]), 200, "application/pem-certificate-chain")
    assert x509.load_pem_x509_certificates(again.content)[0] == leaf
    p = cluster.sigil("cert", "list", "--json", "--limit", "100000")
    assert p.returncode == 0, p.stdout + p.stderr
    assert leaf.serial_number in {int(s["serial"].replace(":", ""), 16) for s in json.loads(p.stdout)}, \
        "the ACME certificate is recorded in the shared database"
    audit_verifies(cluster)


# ====================================================================================== 2. nonces


def test_nonce_from_one_node_is_accepted_once_by_the_other(cluster):
    A, B = cluster.a, cluster.b
    c = cluster.client(A)
    ok(c.new_account(), 201)

    # A nonce issued by A (newNonce), used on B: accepted.
    nonce = c.on(A).new_nonce()
    body = c.sign(c.kid, None, nonce=nonce)
    ok(c.on(B).post_raw(c.kid, body))
    # The same JWS (same nonce) again, on A and on B: badNonce both times.
    problem(c.on(A).post_raw(c.kid, body), 400, "badNonce")
    problem(c.on(B).post_raw(c.kid, body), 400, "badNonce")
    # The nonce in a new JWS (another request, same nonce): still badNonce on both nodes.
    problem(c.on(A).post_as_get(c.kid, nonce=nonce), 400, "badNonce")
    problem(c.on(B).post(c.url("newOrder"), {"identifiers": [{"type": "dns", "value": "x.example.test"}]},
                         nonce=nonce), 400, "badNonce")

    # The other way: a nonce from B's Replay-Nonce header (on a response), used on A, then on B.
    r = ok(c.on(B).post_as_get(c.kid))
    nonce = r.headers["Replay-Nonce"]
    body = c.sign(c.kid, None, nonce=nonce)
    ok(c.on(A).post_raw(c.kid, body))
    problem(c.on(B).post_raw(c.kid, body), 400, "badNonce")
    problem(c.on(A).post_raw(c.kid, body), 400, "badNonce")

    # The badNonce answer's own Replay-Nonce works on the other node (a careful client's retry).
    r = c.on(A).post_raw(c.kid, body)
    problem(r, 400, "badNonce")
    ok(c.on(B).post_as_get(c.kid, nonce=r.headers["Replay-Nonce"]))


def test_nonce_raced_on_both_nodes_is_accepted_exactly_once(cluster):
    """The same JWS sent to A and to B at the same moment: one 200, one badNonce, for every nonce
    (nonces issued by either node; the test above shows a nonce is accepted on the other node)."""
    A, B = cluster.a, cluster.b
    c = cluster.client(A)
    ok(c.new_account(), 201)
    bodies = [c.sign(c.kid, None, nonce=c.on(A if i % 2 else B).new_nonce()) for i in range(16)]

    def send(job):
        i, node = job
        s = requests.Session()
        s.trust_env = False
        s.verify = str(cluster.root)
        try:
            r = s.post(node.url + c.kid[len(cluster.public):], data=json.dumps(bodies[i]),
                       headers={"Content-Type": "application/jose+json"}, timeout=120)
            return i, node.name, r.status_code, r.headers.get("Content-Type", ""), r.text
        finally:
            s.close()

    jobs = [(i, n) for i in range(len(bodies)) for n in (A, B)]
    with cf.ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    by_nonce: dict[int, list] = {}
    for i, node, status, ctype, text in results:
        by_nonce.setdefault(i, []).append((node, status, ctype, text))
    for i, answers in sorted(by_nonce.items()):
        statuses = sorted(s for _, s, _, _ in answers)
        assert statuses == [200, 400], f"nonce {i}: expected exactly one 200 and one 400, got {answers}"
        bad = next(a for a in answers if a[1] == 400)
        assert json.loads(bad[3]).get("type") == ACME_ERROR + "badNonce", bad


# ====================================================================================== 3. lego on A, then B


def lego_env(cluster: Cluster) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIGIL_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["LEGO_CA_CERTIFICATES"] = str(cluster.root)
    return env


def lego(cluster: Cluster, path: Path, domain: str, *command: str) -> subprocess.CompletedProcess:
    argv = ["lego", "--server", cluster.directory, "--accept-tos", "--email", "ops@example.test", "--path", str(path),
            "--key-type", "ec256", "--http", "--http.webroot", str(cluster.webroot), "-d", domain, *command]
    try:
        return subprocess.run(argv, env=lego_env(cluster), capture_output=True, text=True, timeout=240,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"lego timed out: {' '.join(argv)}\n{e.stdout}\n{e.stderr}") from None


@pytest.mark.skipif(not shutil.which("lego"), reason="lego is not installed")
def test_lego_run_on_one_node_renew_on_the_other(cluster, tmp_path):
    A, B = cluster.a, cluster.b
    path = tmp_path / "lego"
    domain = f"lego-{secrets.token_hex(4)}.example.test"
    crt = path / "certificates" / f"{domain}.crt"

    cluster.proxy.target = A.port
    before_a = len(cluster.proxy.connections)
    hits_a, hits_b = len(A.responder.challenge_hits()), len(B.responder.challenge_hits())
    p = lego(cluster, path, domain, "run")
    assert p.returncode == 0, f"lego run (through node A)\n{p.stdout}\n{p.stderr}" + cluster.describe()
    assert set(cluster.proxy.connections[before_a:]) == {A.port}, "lego talked to node A only"
    assert len(A.responder.challenge_hits()) > hits_a and len(B.responder.challenge_hits()) == hits_b, \
        (A.responder.hits, B.responder.hits)
    first = x509.load_pem_x509_certificates(crt.read_bytes())
    openssl_verify(cluster, first, tmp_path / "first")
    accounts = list(path.glob("accounts/**/account.json"))
    assert len(accounts) == 1, accounts
    account_uri = json.loads(accounts[0].read_text())["registration"]["uri"]
    assert account_uri.startswith(cluster.public + "/"), account_uri

    # Renew through node B: same --path, so the same account (found in the database by B).
    cluster.proxy.target = B.port
    before_b = len(cluster.proxy.connections)
    p = lego(cluster, path, domain, "renew", "--days", "999", "--no-random-sleep")
    assert p.returncode == 0, f"lego renew (through node B)\n{p.stdout}\n{p.stderr}" + cluster.describe()
    assert set(cluster.proxy.connections[before_b:]) == {B.port}, "lego talked to node B only"
    assert json.loads(accounts[0].read_text())["registration"]["uri"] == account_uri, "the same account"
    assert len(list(path.glob("accounts/**/account.json"))) == 1, "no second account"
    renewed = x509.load_pem_x509_certificates(crt.read_bytes())
    assert renewed[0].serial_number != first[0].serial_number, "a new certificate"
    assert renewed[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.DNSName) == [domain]
    openssl_verify(cluster, renewed, tmp_path / "renewed")

    # The renewal belongs to the account lego created on A: B lists it among that account's orders.
    c = cluster.client(B)
    c.kid = account_uri
    key_files = list(path.glob("accounts/**/keys/*.key"))
    assert len(key_files) == 1, key_files
    c.key = AccountKey("ES256", serialization.load_pem_private_key(key_files[0].read_bytes(), password=None))
    account = ok(c.post_as_get(account_uri)).json()
    assert account["status"] == "valid", account
    orders = ok(c.post_as_get(account["orders"])).json()["orders"]
    assert len(orders) >= 2, f"both lego orders (one per node) under one account: {orders}"
    audit_verifies(cluster)
