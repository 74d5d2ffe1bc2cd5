"""Helpers for the `sigil serve` interop tests (issue 4): run the real server on 127.0.0.1 with
port 0, read the ports it prints, talk to it with `requests` / curl / openssl, stop it by PID.

Every server started here is stopped by `SigilServer.stop()` (SIGTERM, bounded wait, then SIGKILL);
the `servers` fixture in test_serve.py stops whatever a test left running.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import requests
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from interop_helpers import openssl_ok, pem_blocks, run

LISTENING_RE = re.compile(
    r"^listening: https://(?P<host>\S+):(?P<https>\d+) \(API\) and http://(?P<http_host>\S+):(?P<http>\d+)"
    r" \([^)]*\); root certificate: (?P<root>\S+)\s*$", re.M)
ADMIN_RE = re.compile(r"^admin token: (?P<token>\S+)\s*$", re.M)
TOKEN_RE = re.compile(r"^sigil_[0-9a-f]+_[A-Za-z0-9_-]+$")
PROBLEM_TYPE = "urn:sigil:problem:"


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return low if low > 12000 else 32768


_FREE_PORT_LOW = 10000
_handed_out: set = set()
_port_rng = random.Random()


def free_port() -> int:
    """A loopback port that nothing uses now, for a server (or a client's listener) that a test
    starts later with this number. Taken below the kernel's ephemeral range: the kernel never
    gives such a port to an outgoing connection or to a bind to port 0, so it stays free between
    this pick and the bind, however long that is (an agent's http-01 responder binds it only
    while it renews; a restarted server binds it again). Checked free for TCP and UDP (a DNS
    server binds both), on every address, and never handed out twice in one session."""
    high = _ephemeral_low()
    for _ in range(500):
        port = _port_rng.randrange(_FREE_PORT_LOW, high)
        if port in _handed_out:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("0.0.0.0", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in [{_FREE_PORT_LOW}, {high})")


def proc_cpu_ms(pid: int) -> float:
    """user+system CPU time the process has used so far, in ms (from /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


class SigilServer:
    """One `sigil serve` process. Its stdout/stderr go to files in `logdir` (never a pipe that
    could fill up and block the server)."""

    def __init__(self, binary: str, home: Path, *args, env: Optional[dict] = None, logdir: Optional[Path] = None,
                 default_listen: bool = True, name: str = "serve"):
        self.binary = binary
        self.home = Path(home)
        self.args = [str(a) for a in args]
        if default_listen:
            if not any(a == "--listen" or a.startswith("--listen=") for a in self.args):
                self.args = ["--listen", "127.0.0.1:0", *self.args]
            if not any(a == "--http-listen" or a.startswith("--http-listen=") for a in self.args):
                self.args = ["--http-listen", "127.0.0.1:0", *self.args]
        self.env = dict(env or {})
        logdir = Path(logdir or self.home.parent)
        logdir.mkdir(parents=True, exist_ok=True)
        n = 0
        while (logdir / f"{name}-{n}.out").exists():
            n += 1
        self.out_path = logdir / f"{name}-{n}.out"
        self.err_path = logdir / f"{name}-{n}.err"
        self.proc: Optional[subprocess.Popen] = None
        self.sessions: list = []
        self.match: Optional[re.Match] = None
        self.returncode: Optional[int] = None

    # --- process ----------------------------------------------------------------------------
    @property
    def argv(self) -> list:
        return [self.binary, "serve", *self.args]

    def full_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        env["SIGIL_HOME"] = str(self.home)
        env.update(self.env)
        return env

    def spawn(self) -> "SigilServer":
        self.proc = subprocess.Popen(self.argv, env=self.full_env(), stdin=subprocess.DEVNULL,
                                     stdout=open(self.out_path, "wb"), stderr=open(self.err_path, "wb"),
                                     start_new_session=True)
        return self

    def start(self, timeout: float = 120) -> "SigilServer":
        """Spawn and wait for the `listening:` line (or the process's end: AssertionError)."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = LISTENING_RE.search(self.stdout)
            if m:
                self.match = m
                return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise AssertionError(f"sigil serve exited {self.proc.returncode} before listening" + self.describe())
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"sigil serve printed no 'listening:' line within {timeout} s" + self.describe())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20, sig=signal.SIGTERM) -> Optional[int]:
        """SIGTERM (or `sig`), wait up to `timeout` s, then SIGKILL. Returns the exit status
        (negative: killed by that signal). Records `self.stopped_in` (seconds) and `self.killed`."""
        self.killed = False
        self.stopped_in = 0.0
        # Close this test's idle keep-alive connections first: the server waits up to 5 s for a
        # TLS close_notify from each idle client (NIOSSL's shutdownTimeout), which would only
        # slow the tests down. test_sigterm_with_idle_keepalive_client measures that wait.
        for api in self.sessions:
            api.close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            t0 = time.monotonic()
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.stopped_in = time.monotonic() - t0
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    # --- output -----------------------------------------------------------------------------
    @property
    def stdout(self) -> str:
        return self.out_path.read_bytes().decode("utf-8", errors="replace") if self.out_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self.err_path.read_bytes().decode("utf-8", errors="replace") if self.err_path.exists() else ""

    def describe(self) -> str:
        return (f"\n$ SIGIL_HOME={self.home} {' '.join(self.argv)}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-4000:]}")

    @property
    def admin_token(self) -> Optional[str]:
        m = ADMIN_RE.search(self.stdout)
        return m.group("token") if m else None

    # --- addresses --------------------------------------------------------------------------
    @property
    def https_port(self) -> int:
        return int(self.match.group("https"))

    @property
    def http_port(self) -> int:
        return int(self.match.group("http"))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def root_pem(self) -> Path:
        return Path(self.match.group("root"))

    def session(self, token: Optional[str] = None, track: bool = True, keepalive: bool = False) -> "API":
        api = API(self.url, self.root_pem, token, keepalive=keepalive)
        if track:
            self.sessions.append(api)
        return api


class API(requests.Session):
    """A requests session that verifies the server against Sigil's root (and only that: the
    machine's REQUESTS_CA_BUNDLE would override `verify` unless trust_env is off)."""

    def __init__(self, base: str, root_pem: Path, token: Optional[str] = None, keepalive: bool = False):
        super().__init__()
        self.trust_env = False
        self.verify = str(root_pem)
        self.base = base
        self.keepalive = keepalive
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, url, *args, **kw):
        kw.setdefault("timeout", 60)
        if url.startswith("/"):
            url = self.base + url
        r = super().request(method, url, *args, **kw)
        if not self.keepalive and not kw.get("stream"):
            # One connection per request, closed by us: an idle TLS connection (pooled, or kept
            # open by a response object the test still holds) delays the server's exit by 5 s.
            # (Not `Connection: close`: the server does not echo it, so urllib3 would reuse a
            # connection the server is closing.)
            _ = r.content
            r.close()
            self.drop_connections()
        return r

    def drop_connections(self) -> None:
        """Close every pooled connection now (Session.close() leaves them to the GC here)."""
        for adapter in self.adapters.values():
            pm = getattr(adapter, "poolmanager", None)
            if pm is None:
                continue
            for key in list(pm.pools.keys()):
                pool = pm.pools.get(key)
                if pool is not None:
                    pool.close()
            pm.clear()

    def close(self) -> None:
        self.drop_connections()
        super().close()


def show(r: requests.Response) -> str:
    body = r.content[:3000].decode("utf-8", errors="replace")
    req = r.request
    sent = req.body if isinstance(req.body, (str, type(None))) else req.body[:500].decode("utf-8", errors="replace")
    if sent and len(sent) > 800:
        sent = sent[:800] + f"... ({len(sent)} chars)"
    return (f"\n{req.method} {req.url}\nrequest content-type: {req.headers.get('Content-Type')}\nrequest body: {sent}\n"
            f"-> {r.status_code} {r.headers.get('Content-Type')}\n{body}")


def expect(r: requests.Response, status: int) -> requests.Response:
    assert r.status_code == status, f"expected {status}" + show(r)
    return r


def expect_json(r: requests.Response, status: int):
    expect(r, status)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", f"Content-Type {ctype!r}" + show(r)
    return r.json()


def expect_problem(r: requests.Response, status: int, code: Optional[str] = None) -> dict:
    """An RFC 9457 problem document with this status (and `urn:sigil:problem:<code>`)."""
    expect(r, status)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/problem+json", f"Content-Type {ctype!r}" + show(r)
    doc = r.json()
    assert doc.get("status") == status, show(r)
    assert isinstance(doc.get("type"), str) and doc["type"].startswith(PROBLEM_TYPE), show(r)
    assert isinstance(doc.get("title"), str) and doc["title"], show(r)
    if code is not None:
        assert doc["type"] == PROBLEM_TYPE + code, f"expected {PROBLEM_TYPE + code}" + show(r)
    return doc


# ------------------------------------------------------------------------------------ CSRs


def openssl_csr(workdir: Path, name: str, cn: Optional[str], sans: list[str] = (), subject: Optional[str] = None,
                curve: str = "P-256") -> tuple[Path, str]:
    """(key path, CSR PEM) made by openssl req: a fresh EC key, CN and DNS/IP SANs."""
    workdir.mkdir(parents=True, exist_ok=True)
    key, csr = workdir / f"{name}.key", workdir / f"{name}.csr"
    subj = subject or (f"/CN={cn}" if cn else "/")
    args = ["req", "-new", "-batch", "-newkey", "ec", "-pkeyopt", f"ec_paramgen_curve:{curve}", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subj]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(sans)]
    openssl_ok(*args)
    return key, csr.read_text()


# ------------------------------------------------------------------------------------ certificates


def certs_in(pem: str) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for label, der in pem_blocks(pem) if label == "CERTIFICATE"]


def cert_of(pem: str) -> x509.Certificate:
    certs = certs_in(pem)
    assert len(certs) == 1, f"expected one CERTIFICATE, got {len(certs)}"
    return certs[0]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def same_serial(hex_text: str, cert: x509.Certificate) -> bool:
    return int(hex_text.replace(":", ""), 16) == cert.serial_number


def dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [f"DNS:{n}" for n in ext.value.get_values_for_type(x509.DNSName)] + \
           [f"IP:{n}" for n in ext.value.get_values_for_type(x509.IPAddress)]


def openssl_verify_chain(root: Path, leaf_pem: str, chain_pems: list[str], workdir: Path,
                         purpose: Optional[str] = None) -> tuple[bool, str]:
    """`openssl verify -CAfile root -untrusted chain leaf`: (ok, output)."""
    workdir.mkdir(parents=True, exist_ok=True)
    leaf = workdir / "leaf.pem"
    chain = workdir / "chain.pem"
    leaf.write_text(leaf_pem)
    chain.write_text("".join(chain_pems))
    args = ["openssl", "verify", "-CAfile", root, "-untrusted", chain]
    if purpose:
        args += ["-purpose", purpose]
    p = run([*args, leaf])
    out = (p.stdout + p.stderr).strip()
    return p.returncode == 0 and out.endswith(f"{leaf}: OK"), out


def copy_home(src: Path, dst: Path) -> Path:
    """A copy of a stopped server's SIGIL_HOME (database, CA passphrase, root.pem)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("serve.lock"))
    return dst


urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
