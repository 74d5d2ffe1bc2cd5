"""`sigil agent` (issue 7 item 1) against real CAs on loopback: `sigil serve` through ACME (with
External Account Binding, real http-01 through the agent's built-in responder, ARI) and through
the REST API, and Let's Encrypt's Pebble (Debian 2.4.0) unchanged.

Judges: openssl (the key matches the certificate: same public key; the chain verifies against
the CA's root), file modes from stat, a reload script that records its calls, `sigil agent
status --json`. Failures: a failing reload, a CA outage (backoff recorded and respected, recovery
after the restart), SIGKILL at every deployment step (after the restart the pair on disk matches,
old or new), a CA that refuses (the failure is reported to the server; a 404 from the report
endpoint is ignored), bad configuration (exit 2, nothing written).

Short-lived certificates come from a profile with `default_validity: 90s` (SigilCore's finer
validity). Pebble 2.4.0 has no ARI and no profiles: its renewal is forced (`sigil agent renew`).

Every subprocess has a timeout; every server started here is stopped by PID.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from interop_helpers import describe, sigil_bin
from serve_helpers import SigilServer, free_port

ACME_DIR_RE = re.compile(r"^acme directory: (?P<url>https://\S+/directory)\s*$", re.M)
CLI_TIMEOUT = 120
LIFETIME = 90          # seconds: the short profile's default_validity
STEPS = ["stage", "keep-previous", "journal", "rename-chain", "rename-key", "rename-certificate", "rename-fullchain", "commit"]


# ------------------------------------------------------------------------------------ helpers


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed (apt-get install pebble; .ci/run installs it)", pytrace=False)
    return path


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIGIL_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(argv, *, env=None, timeout=CLI_TIMEOUT) -> subprocess.CompletedProcess:
    argv = [str(a) for a in argv]
    try:
        return subprocess.run(argv, env=env or clean_env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout} s: {' '.join(argv)}\n{e.stdout}\n{e.stderr}") from None


def openssl(*args) -> subprocess.CompletedProcess:
    return run(["openssl", *args], timeout=60)


def pubkey_of_key(path: Path) -> str:
    p = openssl("pkey", "-in", path, "-pubout")
    assert p.returncode == 0, describe(p)
    return p.stdout


def pubkey_of_cert(path: Path) -> str:
    p = openssl("x509", "-in", path, "-noout", "-pubkey")
    assert p.returncode == 0, describe(p)
    return p.stdout


def pair_matches(key: Path, cert: Path) -> bool:
    return pubkey_of_key(key) == pubkey_of_cert(cert)


def chain_verifies(root: Path, chain: Path, cert: Path) -> bool:
    p = openssl("verify", "-CAfile", root, "-untrusted", chain, cert)
    return p.returncode == 0 and p.stdout.strip().endswith(": OK")


def serial_of(path: Path) -> str:
    return f"{x509.load_pem_x509_certificate(path.read_bytes()).serial_number:x}"


def same_serial(a: Optional[str], b: Optional[str]) -> bool:
    return a is not None and b is not None and int(a, 16) == int(b, 16)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


RELOAD = """#!/bin/sh
# Records each call: the certificate's name and the serial now deployed.
echo "$SIGIL_AGENT_CERTIFICATE $(openssl x509 -in "$SIGIL_AGENT_CERT" -noout -serial | cut -d= -f2)" >> {log}
"""

FAILING_RELOAD = """#!/bin/sh
echo "$SIGIL_AGENT_CERTIFICATE" >> {log}
echo "nginx: [emerg] configuration test failed" >&2
exit 1
"""


def script(path: Path, text: str, log: Path) -> Path:
    path.write_text(text.format(log=log))
    path.chmod(0o755)
    return path


class AgentRun:
    """A configuration file plus the commands that use it."""

    def __init__(self, bin_: str, work: Path, config: dict, env: Optional[dict] = None):
        self.bin = bin_
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.config = work / "agent.yaml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = clean_env(**(env or {}))

    def __call__(self, *args, timeout=CLI_TIMEOUT, env=None) -> subprocess.CompletedProcess:
        return run([self.bin, "agent", *args, "--config", self.config], env=env or self.env, timeout=timeout)

    def status(self) -> dict:
        p = self("status", "--json")
        assert p.returncode == 0, describe(p)
        return {row["name"]: row for row in json.loads(p.stdout)}

    def spawn(self, *args, env=None, name="daemon") -> tuple[subprocess.Popen, Path]:
        err = self.work / f"{name}.err"
        proc = subprocess.Popen([self.bin, "agent", *args, "--config", str(self.config)], env=env or self.env,
                                stdin=subprocess.DEVNULL, stdout=open(self.work / f"{name}.out", "wb"),
                                stderr=open(err, "wb"), start_new_session=True)
        return proc, err


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError("the agent did not stop within 20 s of SIGTERM")
    return proc.returncode


def targets(d: Path, name: str) -> dict:
    return {
        "key": {"path": str(d / f"{name}.key")},
        "certificate": {"path": str(d / f"{name}.crt"), "mode": "0644"},
        "chain": {"path": str(d / f"{name}.chain.pem")},
        "fullchain": {"path": str(d / f"{name}.fullchain.pem")},
    }


# ------------------------------------------------------------------------------------ Sigil as the CA


class LoopbackProcess:
    """A helper server run as a subprocess: up once `port` on 127.0.0.1 accepts connections,
    stopped by PID."""

    def __init__(self, argv: list, log: Path, port: int, what: str, timeout: float):
        self.log = log
        self.port = port
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(self._up, timeout, what)

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class ChallTestSrv(LoopbackProcess):
    """pebble-challtestsrv as a DNS server only (A 127.0.0.1 for every name)."""

    def __init__(self, logdir: Path):
        self.dns_port = free_port()
        self.mgmt_port = free_port()
        super().__init__(
            [_tool("pebble-challtestsrv"), "-dns01", f"127.0.0.1:{self.dns_port}", "-management", f"127.0.0.1:{self.mgmt_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            logdir / f"challtestsrv-{self.dns_port}.log", self.mgmt_port, "pebble-challtestsrv", 20)


class SigilCA:
    def __init__(self, bin_: str, work: Path):
        self.bin = bin_
        self.work = work
        self.dns = ChallTestSrv(work)
        self.home = work / "home"
        self.home.mkdir()
        self.http01 = free_port()
        self.https_port = free_port()
        (self.home / "sigil.yaml").write_text(yaml.safe_dump({
            "profiles": {"agent-short": {"base": "tls-server", "default_validity": f"{LIFETIME}s", "max_validity": "1h"}},
            "acme": {
                "http01_port": self.http01,
                "dns_resolver": f"127.0.0.1:{self.dns.dns_port}",
                "eab_required": True,
                "rate_limits": {"orders_per_account_per_hour": 1000, "orders_per_name_per_hour": 1000},
                "provisioners": [{"name": "acme", "default_profile": "short", "challenges": ["http-01"],
                                  "profiles": {"short": {"profile": "agent-short"}, "classic": {"profile": "tls-server"}}}],
            },
        }))
        self.server = SigilServer(bin_, self.home, "--listen", f"127.0.0.1:{self.https_port}", logdir=work / "logs")
        self.start()
        token = self.server.admin_token
        assert token, "no admin token" + self.server.describe()
        self.token_file = work / "token"
        self.token_file.write_text(token + "\n")
        self.token_file.chmod(0o600)

    def start(self):
        self.server.start()

    def restart(self):
        self.server = SigilServer(self.bin, self.home, "--listen", f"127.0.0.1:{self.https_port}", logdir=self.work / "logs")
        self.server.start()

    @property
    def root(self) -> Path:
        return self.home / "root.pem"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def directory(self) -> str:
        m = ACME_DIR_RE.search(self.server.stdout)
        assert m, "no 'acme directory:' line" + self.server.describe()
        return m.group("url")

    def eab(self, name: str) -> tuple[str, Path]:
        p = run([self.bin, "acme", "eab", "create", "--home", self.home, "--name", name], env=clean_env(SIGIL_HOME=self.home))
        assert p.returncode == 0, describe(p)
        kid = re.search(r"^kid: (\S+)\s*$", p.stdout, re.M).group(1)
        key = re.search(r"^hmac key: (\S+)\s*$", p.stdout, re.M).group(1)
        hmac_file = self.work / f"eab-{name}.hmac"
        hmac_file.write_text(key)
        hmac_file.chmod(0o600)
        return kid, hmac_file

    def rest_ca(self, profile: str = "agent-short") -> dict:
        return {"sigil": {"url": self.url, "token_file": str(self.token_file), "profile": profile, "ca_bundle": str(self.root)}}

    def stop(self):
        try:
            self.server.stop(timeout=20)
        finally:
            self.dns.stop()


@pytest.fixture(scope="module")
def agent_bin(tmp_path_factory) -> str:
    """A private copy of the binary (the lead may rebuild .build/debug/sigil while tests run)."""
    dst = tmp_path_factory.mktemp("agent-bin") / "sigil"
    shutil.copy2(sigil_bin(), dst)
    dst.chmod(0o755)
    return str(dst)


@pytest.fixture(scope="module")
def sigil_ca(agent_bin, tmp_path_factory):
    ca = SigilCA(agent_bin, tmp_path_factory.mktemp("agent-sigil"))
    yield ca
    ca.stop()


# ------------------------------------------------------------------------------------ tests


def test_obtain_deploy_and_renew_at_two_thirds_from_sigil(agent_bin, sigil_ca, tmp_path):
    """ACME (EAB, http-01, ARI) and REST certificates with a 90 s lifetime: obtained and deployed
    by `--once`, then renewed by the daemon inside the ARI window / at 2/3 of the lifetime with
    a new key; the reload script sees every deployment; SIGTERM stops the daemon."""
    kid, hmac_file = sigil_ca.eab("agent-acme")
    out = tmp_path / "tls"
    out.mkdir()
    calls = tmp_path / "reload.log"
    reload = script(tmp_path / "reload.sh", RELOAD, calls)
    agent = AgentRun(agent_bin, tmp_path, {
        "state_dir": str(tmp_path / "state"),
        "check_interval": "5s",
        "backoff": {"base": "2s", "max": "10s"},
        "certificates": [
            {"name": "acme-web", "names": ["agent-acme.example.test"], **targets(out, "acme-web"), "reload": [str(reload)],
             "ca": {"acme": {"directory": sigil_ca.directory, "eab": {"kid": kid, "hmac_file": str(hmac_file)},
                             "email": "ops@example.com", "ca_bundle": str(sigil_ca.root),
                             "http01_listen": f"127.0.0.1:{sigil_ca.http01}"}}},
            {"name": "rest-web", "names": ["agent-rest.example.test"], "key_type": "rsa:2048", **targets(out, "rest-web"),
             "reload": [str(reload)], "ca": sigil_ca.rest_ca()},
        ],
    })
    t0 = time.monotonic()
    p = agent("--once")
    first_pass = time.monotonic() - t0
    assert p.returncode == 0, describe(p)
    assert "acme-web: deployed serial" in p.stdout and "rest-web: deployed serial" in p.stdout, describe(p)
    first = {}
    for name in ("acme-web", "rest-web"):
        key, crt, chain, full = (out / f"{name}.key", out / f"{name}.crt", out / f"{name}.chain.pem", out / f"{name}.fullchain.pem")
        assert mode_of(key) == 0o600 and mode_of(crt) == 0o644 and mode_of(chain) == 0o644
        assert pair_matches(key, crt), f"{name}: key and certificate differ"
        assert chain_verifies(sigil_ca.root, chain, crt), f"{name}: chain does not verify against Sigil's root"
        assert full.read_text().startswith(crt.read_text())
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        lifetime = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        assert LIFETIME - 2 <= lifetime <= LIFETIME + 1, f"{name}: lifetime {lifetime} s"
        first[name] = (serial_of(crt), pubkey_of_key(key), cert)
    assert isinstance(first["rest-web"][2].public_key(), rsa.RSAPublicKey)
    assert isinstance(first["acme-web"][2].public_key(), ec.EllipticCurvePublicKey)
    assert [line.split()[0] for line in calls.read_text().splitlines()] == ["acme-web", "rest-web"]
    st = agent.status()
    for name in ("acme-web", "rest-web"):
        assert st[name]["deployed"] and same_serial(st[name]["serial"], first[name][0])
        assert st[name]["consecutive_failures"] == 0 and st[name]["last_error"] is None
        assert st[name]["renewal_reason"] == "two-thirds"
    assert mode_of(tmp_path / "state") == 0o700
    assert mode_of(tmp_path / "state" / "certificates" / "rest-web.json") == 0o600

    # The daemon renews both inside their windows.
    proc, err = agent.spawn()
    try:
        def renewed():
            return all(serial_of(out / f"{n}.crt") != first[n][0] for n in first)
        wait_for(renewed, LIFETIME + 90, "both certificates to be renewed", interval=0.5)
        renewed_at = dt.datetime.now(dt.timezone.utc)
        # Let the daemon's next pass ask ARI about the new ACME certificate.
        wait_for(lambda: agent.status()["acme-web"]["renewal_reason"] == "ari", 60, "the ARI window for the new certificate")
        st = agent.status()
    finally:
        code = stop(proc)
    assert code == 0, err.read_text()
    log = err.read_text()
    assert "agent stopped" in log
    fractions = {}
    for name, (serial, pub, cert) in first.items():
        crt, key = out / f"{name}.crt", out / f"{name}.key"
        assert pair_matches(key, crt) and chain_verifies(sigil_ca.root, out / f"{name}.chain.pem", crt)
        assert pubkey_of_key(key) != pub, f"{name}: renewal kept the old key (reuse_key defaults to false)"
        # Renewed between 2/3 and 5/6 of the old certificate's lifetime (plus scheduling slack).
        # Not before: the CA's own record, the new certificate's notBefore (backdated by a tenth
        # of the lifetime). Not after: when the agent began the renewal (its last_attempt), not
        # when the CA finished it -- an ACME issuance on a loaded machine takes seconds, and
        # one certificate's renewal may wait for the other's (one pass handles them in turn).
        life = (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()
        new_cert = x509.load_pem_x509_certificate(crt.read_bytes())
        at = (new_cert.not_valid_before_utc - cert.not_valid_before_utc).total_seconds() + (LIFETIME / 10)
        began = (dt.datetime.fromisoformat(st[name]["last_attempt"]) - cert.not_valid_before_utc).total_seconds()
        assert 0.6 * life <= at, f"{name}: renewed at {at:.0f} s of a {life:.0f} s lifetime"
        assert 0.6 * life <= began <= 0.9 * life + 5 and began <= at + 1, \
            f"{name}: renewal began at {began:.0f} s of a {life:.0f} s lifetime (issued at {at:.0f} s)"
        fractions[name] = (round(began / life, 3), round(at / life, 3))
        assert same_serial(st[name]["serial"], serial_of(crt)) and same_serial(st[name]["previous_serial"], serial)
    assert st["rest-web"]["renewal_reason"] == "two-thirds"
    assert st["acme-web"]["ari_window"] is not None
    lines = [line.split() for line in calls.read_text().splitlines()]
    assert sorted(l[0] for l in lines) == ["acme-web", "acme-web", "rest-web", "rest-web"]
    assert {l[1].lower().lstrip("0") for l in lines if l[0] == "rest-web"} == {
        first["rest-web"][0].lstrip("0"), serial_of(out / "rest-web.crt").lstrip("0")}
    print(f"MEASURED first pass (2 certificates, ACME+REST): {first_pass:.2f} s; renewal began / was issued at these fractions of the"
          f" {LIFETIME} s lifetime: {fractions} (ARI window 2/3..5/6 for ACME, 2/3 for REST); done by {renewed_at:%H:%M:%S}")

    # Rollback puts the previous pair back and reloads.
    current = serial_of(out / "rest-web.crt")
    p = agent("rollback", "rest-web")
    assert p.returncode == 0, describe(p)
    assert serial_of(out / "rest-web.crt") == first["rest-web"][0]
    assert pair_matches(out / "rest-web.key", out / "rest-web.crt")
    assert calls.read_text().splitlines()[-1].split()[0] == "rest-web"
    assert same_serial(agent.status()["rest-web"]["previous_serial"], current)


def test_reload_failure_is_reported_not_hidden(agent_bin, sigil_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    calls = tmp_path / "reload.log"
    reload = script(tmp_path / "reload.sh", FAILING_RELOAD, calls)
    files = targets(out, "web")
    # Owner, group and mode as configured (the tests run as root, so chown works).
    as_root = os.geteuid() == 0
    if as_root:
        files["key"].update({"owner": "nobody", "group": "nogroup", "mode": "0640"})
    agent = AgentRun(agent_bin, tmp_path, {
        "backoff": {"base": "1s", "max": "4s"},
        "certificates": [{"name": "web", "names": ["agent-reload.example.test"], **files,
                          "reload": {"command": [str(reload)]}, "ca": sigil_ca.rest_ca()}],
    })
    p = agent("--once")
    assert p.returncode == 1, describe(p)
    assert "web: deployed, but reload failed" in p.stdout, describe(p)
    assert "exit status 1" in p.stderr and "configuration test failed" in p.stderr, describe(p)
    # Deployed all the same, and consistent.
    assert pair_matches(out / "web.key", out / "web.crt")
    info = (out / "web.key").stat()
    import grp, pwd
    if as_root:
        assert (pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name, stat.S_IMODE(info.st_mode)) == ("nobody", "nogroup", 0o640)
    else:
        assert stat.S_IMODE(info.st_mode) == 0o600
    assert chain_verifies(sigil_ca.root, out / "web.chain.pem", out / "web.crt")
    st = agent.status()["web"]
    assert st["deployed"] and st["reload_pending"] is True and st["consecutive_failures"] == 1
    assert st["last_reload"]["status"] == "exited" and st["last_reload"]["exit_code"] == 1
    assert "configuration test failed" in st["last_reload"]["stderr"]
    assert "reload" in st["last_error"]
    # The state directory is where the agent said (next to the config by default).
    assert (tmp_path / "agent.state" / "certificates" / "web.json").exists()
    # The reload is retried after the backoff, without a new certificate.
    serial = serial_of(out / "web.crt")
    nxt = dt.datetime.fromisoformat(st["next_attempt"])
    assert 0 < (nxt - dt.datetime.fromisoformat(st["last_attempt"])).total_seconds() <= 1.5, st
    # The agent reads the same whole-second next_attempt from its state file.
    wait_for(lambda: dt.datetime.now(dt.timezone.utc) >= nxt, 30, "the backoff to pass")
    p = agent("--once")
    assert p.returncode == 1, describe(p)
    assert serial_of(out / "web.crt") == serial
    assert len(calls.read_text().splitlines()) == 2
    assert agent.status()["web"]["consecutive_failures"] == 2


class RefusingCA:
    """An HTTPS server on loopback playing a Sigil API that refuses every certificate (503) and
    has no report endpoint (404), recording what the agent sent."""

    def __init__(self, work: Path):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "refusing test CA")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
                .not_valid_after(now + dt.timedelta(hours=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                .sign(key, hashes.SHA256()))
        self.cert_path = work / "refusing-ca.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = work / "refusing-ca.key"
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.requests: list[tuple[str, str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.path, self.headers.get("Authorization", ""), json.loads(body or b"{}")))
                status, doc = (503, {"type": "about:blank", "title": "Service Unavailable", "detail": "the signer is offline"}) \
                    if self.path == "/api/v1/certificates" else (404, {"type": "about:blank", "title": "Not Found"})
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, key_path)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_refused_renewal_is_reported_to_the_server(agent_bin, tmp_path):
    ca = RefusingCA(tmp_path)
    try:
        token = tmp_path / "token"
        token.write_text("sigil_test_token\n")
        agent = AgentRun(agent_bin, tmp_path, {
            "backoff": {"base": "1s", "max": "2s"},
            "certificates": [{"name": "web", "names": ["refused.example.test"], **targets(tmp_path, "web"),
                              "ca": {"sigil": {"url": ca.url, "token_file": str(token), "ca_bundle": str(ca.cert_path)}}}],
        })
        p = agent("--once")
    finally:
        ca.stop()
    assert p.returncode == 1, describe(p)
    assert "the signer is offline" in p.stderr and "HTTP 503" in p.stderr, describe(p)
    assert "404" not in p.stderr and "report" not in p.stderr.lower(), "a 404 from the report endpoint must be quiet" + describe(p)
    paths = [r[0] for r in ca.requests]
    assert paths == ["/api/v1/certificates", "/api/v1/agent/reports"], paths
    assert all(r[1] == "Bearer sigil_test_token" for r in ca.requests)
    report = ca.requests[1][2]
    assert report["certificate"] == "web" and report["names"] == ["refused.example.test"]
    assert report["serial"] is None and report["status"] == "renewal_failed"
    assert "the signer is offline" in report["error"]
    assert not (tmp_path / "web.crt").exists() and not (tmp_path / "web.key").exists()


def test_ca_outage_backs_off_and_recovers(agent_bin, sigil_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    agent = AgentRun(agent_bin, tmp_path, {
        "state_dir": str(tmp_path / "state"),
        # A base long enough that the second run below usually starts well inside the first
        # backoff (full jitter draws it from [1 s, base]), a cap that the third failure meets.
        "backoff": {"base": "8s", "max": "10s"},
        "certificates": [{"name": "web", "names": ["agent-outage.example.test"], **targets(out, "web"), "ca": sigil_ca.rest_ca()}],
    })
    t0 = time.monotonic()
    sigil_ca.server.stop(timeout=20)
    timings = {"stop": time.monotonic() - t0}
    try:
        p = agent("--once")
        assert p.returncode == 1, describe(p)
        st = agent.status()["web"]
        assert st["consecutive_failures"] == 1 and not st["deployed"]
        assert st["last_error"] and str(sigil_ca.https_port) in st["last_error"]
        attempt, nxt = dt.datetime.fromisoformat(st["last_attempt"]), dt.datetime.fromisoformat(st["next_attempt"])
        # (Both are whole seconds, rounded down.)
        assert 0 < (nxt - attempt).total_seconds() <= 8.5, "first backoff exceeds its base"
        # Right away: the backoff holds (a restart of the agent does not hammer the CA).
        # Whether the agent held is read from what it said, not from the clock after it exited:
        # a run that started inside the backoff may finish after it (full jitter can make the
        # backoff a second). When it started well inside (more than a slow start of a debug
        # binary on a loaded machine), it must have held.
        started = dt.datetime.now(dt.timezone.utc)
        p = agent("--once")
        assert p.returncode == 1, describe(p)
        held = "waiting after earlier failures" in p.stderr
        if started < nxt - dt.timedelta(seconds=3):
            assert held, "a run inside the backoff went to the CA" + describe(p)
        assert agent.status()["web"]["consecutive_failures"] == (1 if held else 2), describe(p)
        # The agent reads the same whole-second next_attempt from its state file, so once the
        # clock has passed it here, the next run cannot hold.
        nxt = dt.datetime.fromisoformat(agent.status()["web"]["next_attempt"])
        wait_for(lambda: dt.datetime.now(dt.timezone.utc) >= nxt, 30, "the backoff to pass")
        p = agent("--once")
        assert p.returncode == 1, describe(p)
        assert "waiting after earlier failures" not in p.stderr, describe(p)
        st = agent.status()["web"]
        assert st["consecutive_failures"] == (2 if held else 3)
        gap = (dt.datetime.fromisoformat(st["next_attempt"]) - dt.datetime.fromisoformat(st["last_attempt"])).total_seconds()
        assert 0 < gap <= 10.5, f"backoff {gap} s exceeds its cap"
    finally:
        t0 = time.monotonic()
        sigil_ca.restart()
        timings["restart"] = time.monotonic() - t0
    nxt = dt.datetime.fromisoformat(agent.status()["web"]["next_attempt"])
    wait_for(lambda: dt.datetime.now(dt.timezone.utc) >= nxt, 30, "the backoff to pass")
    p = agent("--once")
    assert p.returncode == 0, describe(p)
    st = agent.status()["web"]
    assert st["deployed"] and st["consecutive_failures"] == 0 and st["last_error"] is None and st["next_attempt"] is None
    assert pair_matches(out / "web.key", out / "web.crt")
    print(f"MEASURED sigil serve stop {timings['stop']:.1f} s, restart {timings['restart']:.1f} s")


def test_sigkill_at_every_deployment_step_leaves_a_matching_pair(agent_bin, sigil_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    calls = tmp_path / "reload.log"
    reload = script(tmp_path / "reload.sh", RELOAD, calls)
    agent = AgentRun(agent_bin, tmp_path, {
        "state_dir": str(tmp_path / "state"),
        "certificates": [{"name": "web", "names": ["agent-kill.example.test"], **targets(out, "web"),
                          "reload": [str(reload)], "ca": sigil_ca.rest_ca("tls-server")}],
    })
    p = agent("--once")
    assert p.returncode == 0, describe(p)
    results = []
    for step in STEPS:
        before = serial_of(out / "web.crt")
        # The agent halts before the step for good (not for a while): however slow this test
        # is to see the line, the step has not begun when the SIGKILL arrives.
        halted = dict(agent.env, SIGIL_AGENT_TEST_HALT_BEFORE=step)
        proc, err = agent.spawn("renew", "web", env=halted, name=f"kill-{step}")
        try:
            wait_for(lambda: f"test step: web: {step} (halted)" in err.read_text(), 90, f"step {step}", interval=0.05)
            assert proc.poll() is None, err.read_text()
        finally:
            proc.kill()
            proc.wait(timeout=10)
        # Restart: recovery runs first, then the pass (nothing due).
        p = agent("--once")
        assert p.returncode == 0, f"after SIGKILL before {step}" + describe(p)
        after = serial_of(out / "web.crt")
        assert pair_matches(out / "web.key", out / "web.crt"), f"SIGKILL before {step}: key and certificate differ"
        assert chain_verifies(sigil_ca.root, out / "web.chain.pem", out / "web.crt")
        assert (out / "web.fullchain.pem").read_text().startswith((out / "web.crt").read_text())
        assert not [f for f in os.listdir(out) if "sigil-new" in f], f"temporaries left after {step}: {os.listdir(out)}"
        assert not (tmp_path / "state" / "journal" / "web.json").exists()
        changed = after != before
        results.append((step, "new" if changed else "old"))
        # Before the journal the old pair stays; from the journal on, the new one is completed.
        journaled = STEPS.index(step) > STEPS.index("journal")
        assert changed == journaled, f"SIGKILL before {step}: expected the {'new' if journaled else 'old'} pair"
        if journaled:
            assert calls.read_text().splitlines()[-1].split()[1].lower().lstrip("0") == after.lstrip("0"), \
                "the completed deployment was not reloaded"
    print("MEASURED SIGKILL before each step -> pair after restart:", results)

    # An unreadable deployed certificate is replaced at once.
    before = serial_of(out / "web.crt")
    (out / "web.crt").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    p = agent("--once")
    assert p.returncode == 0 and "web: deployed serial" in p.stdout, describe(p)
    assert serial_of(out / "web.crt") != before and pair_matches(out / "web.key", out / "web.crt")
    # Names changed in the configuration: reissued with the new names.
    config = yaml.safe_load(agent.config.read_text())
    config["certificates"][0]["names"] = ["agent-kill.example.test", "www.agent-kill.example.test"]
    agent.config.write_text(yaml.safe_dump(config))
    p = agent("--once")
    assert p.returncode == 0 and "web: deployed serial" in p.stdout, describe(p)
    cert = x509.load_pem_x509_certificate((out / "web.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["agent-kill.example.test", "www.agent-kill.example.test"]
    p = agent("--once")
    assert p.returncode == 0 and "web: up to date" in p.stdout, describe(p)


def test_bad_configuration_is_exit_2_and_writes_nothing(agent_bin, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("certificates:\n  - name: web\n    names: [www.example.com]\n    key: {path: k.pem, mode: \"0666\"}\n"
                      "    certificate: c.pem\n    ca: {sigil: {url: http://x, token_env: T}}\n")
    p = run([agent_bin, "agent", "--once", "--config", config])
    assert p.returncode == 2, describe(p)
    err = p.stderr
    assert str(config) in err and "certificates[0].key.mode" in err and "0666" in err and "ca.sigil.url" in err, describe(p)
    assert sorted(os.listdir(tmp_path)) == ["agent.yaml"], "a bad configuration wrote files"
    p = run([agent_bin, "agent", "status", "--config", tmp_path / "missing.yaml"])
    assert p.returncode == 2 and "missing.yaml" in p.stderr, describe(p)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "st"), "certificates": [
        {"name": "web", "names": ["www.example.com"], "key": str(tmp_path / "k"), "certificate": str(tmp_path / "c"),
         "ca": {"sigil": {"url": "https://127.0.0.1:1", "token_env": "NOPE"}}}]}))
    p = run([agent_bin, "agent", "rollback", "nosuch", "--config", good])
    assert p.returncode == 2 and "no certificate named 'nosuch'" in p.stderr, describe(p)
    p = run([agent_bin, "agent", "rollback", "web", "--config", good])
    assert p.returncode == 1 and "no previous version" in p.stderr, describe(p)


# ------------------------------------------------------------------------------------ Pebble


PEBBLE_TLS_CNF = """[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


@pytest.fixture(scope="module")
def pebble(tmp_path_factory):
    work = tmp_path_factory.mktemp("pebble")
    binary = _tool("pebble")
    (work / "tls.cnf").write_text(PEBBLE_TLS_CNF)
    for argv in (
        ["req", "-config", work / "tls.cnf", "-x509", "-extensions", "v3_ca", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-keyout", work / "tlsca.key", "-out", work / "tlsca.pem", "-days", "2",
         "-subj", "/CN=agent test pebble TLS CA"],
        ["req", "-config", work / "tls.cnf", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", work / "tls.key", "-out", work / "tls.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", work / "tls.csr", "-CA", work / "tlsca.pem", "-CAkey", work / "tlsca.key", "-CAcreateserial",
         "-days", "2", "-extfile", work / "tls.cnf", "-extensions", "leaf", "-out", work / "tls.pem"],
    ):
        p = openssl(*argv)
        assert p.returncode == 0, describe(p)
    dns = ChallTestSrv(work)
    port, mgmt, http01, tls = free_port(), free_port(), free_port(), free_port()
    (work / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{port}", "managementListenAddress": f"127.0.0.1:{mgmt}",
        "certificate": str(work / "tls.pem"), "privateKey": str(work / "tls.key"),
        "httpPort": http01, "tlsPort": tls, "ocspResponderURL": "", "externalAccountBindingRequired": False}}))
    log = work / "pebble.log"
    # Pebble's default 5 % of rejected nonces stays on: the agent must retry badNonce.
    proc = subprocess.Popen([binary, "-config", work / "pebble.json", "-dnsserver", f"127.0.0.1:{dns.dns_port}"],
                            env=clean_env(PEBBLE_VA_NOSLEEP=1), stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)

    context = ssl.create_default_context(cafile=str(work / "tlsca.pem"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))

    def get(url: str) -> Optional[bytes]:
        try:
            with opener.open(url, timeout=5) as r:
                return r.read()
        except OSError:
            return None

    def up():
        assert proc.poll() is None, log.read_text()
        return get(f"https://127.0.0.1:{port}/dir") is not None
    try:
        wait_for(up, 30, "pebble")
        root = get(f"https://127.0.0.1:{mgmt}/roots/0")
        assert root, "pebble's management API gave no root"
        (work / "pebble-root.pem").write_bytes(root)
        yield {"directory": f"https://127.0.0.1:{port}/dir", "tls_ca": work / "tlsca.pem", "root": work / "pebble-root.pem",
               "http01": http01, "dir": json.loads(get(f"https://127.0.0.1:{port}/dir")), "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        dns.stop()


def test_pebble_obtain_and_renew_unchanged(agent_bin, pebble, tmp_path):
    """Pebble 2.4.0 offers no renewalInfo (ARI) and no profiles, so the agent falls back to two
    thirds of the lifetime, and the renewal here is forced with `sigil agent renew`."""
    assert "renewalInfo" not in pebble["dir"], "this Pebble offers ARI: test the window instead of forcing"
    out = tmp_path / "tls"
    out.mkdir()
    calls = tmp_path / "reload.log"
    reload = script(tmp_path / "reload.sh", RELOAD, calls)
    agent = AgentRun(agent_bin, tmp_path, {
        "state_dir": str(tmp_path / "state"),
        "certificates": [{"name": "pebble-web", "names": ["agent-pebble.example.com", "www.agent-pebble.example.com"],
                          **targets(out, "pebble-web"), "reload": [str(reload)],
                          "ca": {"acme": {"directory": pebble["directory"], "ca_bundle": str(pebble["tls_ca"]),
                                          "http01_listen": f"127.0.0.1:{pebble['http01']}"}}}],
    })
    t0 = time.monotonic()
    p = agent("--once")
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, describe(p) + "\n--- pebble ---\n" + pebble["log"].read_text()[-3000:]
    crt, key, chain = out / "pebble-web.crt", out / "pebble-web.key", out / "pebble-web.chain.pem"
    assert pair_matches(key, crt) and chain_verifies(pebble["root"], chain, crt)
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["agent-pebble.example.com", "www.agent-pebble.example.com"]
    serial, pub = serial_of(crt), pubkey_of_key(key)
    st = agent.status()["pebble-web"]
    assert st["renewal_reason"] == "two-thirds" and st["ari_window"] is None
    # Not due: a second pass changes nothing.
    p = agent("--once")
    assert p.returncode == 0 and "up to date" in p.stdout and serial_of(crt) == serial, describe(p)
    p = agent("renew", "pebble-web")
    assert p.returncode == 0, describe(p)
    assert serial_of(crt) != serial and pubkey_of_key(key) != pub
    assert pair_matches(key, crt) and chain_verifies(pebble["root"], chain, crt)
    assert len(calls.read_text().splitlines()) == 2
    print(f"MEASURED pebble first certificate (account + order + http-01 + finalize): {elapsed:.2f} s")
