"""ACME (RFC 8555) interop with the REAL clients: certbot (standalone http-01) and lego (http-01,
tls-alpn-01, dns-01 against a local mock DNS server) obtain, renew and revoke certificates from
`sigil serve`, with ECDSA and RSA account and certificate keys, with and without External Account
Binding. Every certificate is judged by `openssl verify` against Sigil's root, by Python
`cryptography` (SANs, key type, the key the client holds), and every revocation by Sigil's CRL
(signature checked with the issuer's key) and by `openssl ocsp`.

Name resolution: Debian's `pebble-challtestsrv` as a DNS server on loopback (A = 127.0.0.1 for
every name; TXT records for dns-01 set through its management API by lego's `exec` hook).

Tools (CI installs all of them; a missing one FAILS these tests, it does not skip them):
lego (Debian 4.9.1), pebble-challtestsrv (Debian `pebble`), openssl, certbot 5.8.0 from PyPI in
the interop virtualenv (tests/interop/requirements.txt).

Known client behaviour the tests rely on:
- lego's key type (--key-type) is used for the account key AND the certificate key.
- certbot's account key is always RSA (--rsa-key-size); --key-type only picks the certificate key.
- `lego renew` sleeps up to 8 minutes at random when stdout is not a terminal unless
  --no-random-sleep is given.
- lego dns-01 needs --dns.disable-cp (challtestsrv answers SOA queries with NOTIMP) and
  EXEC_SEQUENCE_INTERVAL (default 60 s between `*.X` and `X`, which share one TXT name).

Every subprocess has a timeout; every server and DNS process started here is stopped by PID.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from interop_helpers import describe, sigil_bin
from serve_helpers import SigilServer, free_port

ACME_DIR_RE = re.compile(r"^acme directory: (?P<url>https://\S+/directory)\s*$", re.M)
EMAIL = "interop@example.com"

LEGO_TIMEOUT = 300  # bounds a hang only: lego itself waits 5 s per authorization poll
CERTBOT_TIMEOUT = 300
CLI_TIMEOUT = 120


# ------------------------------------------------------------------------------------ tools


def _tool(name: str, path: Optional[str], hint: str) -> str:
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{name} is not installed ({hint}); the ACME client interop tests need it", pytrace=False)
    return path


@pytest.fixture(scope="module")
def tools() -> dict:
    return {
        "lego": _tool("lego", shutil.which("lego"), "apt-get install lego; .ci/run installs it"),
        "challtestsrv": _tool("pebble-challtestsrv", shutil.which("pebble-challtestsrv"),
                              "apt-get install pebble; .ci/run installs it"),
        "openssl": _tool("openssl", shutil.which("openssl"), "apt-get install openssl"),
        "certbot": _tool("certbot", str(Path(sys.executable).parent / "certbot"),
                         "pip install -r tests/interop/requirements.txt into the interop virtualenv"),
    }


@pytest.fixture(scope="module")
def acme_bin(tmp_path_factory) -> str:
    """A private copy of SIGIL_BIN (the lead may rebuild .build/debug/sigil while tests run; the
    CLI and the server must be the same build)."""
    src = sigil_bin()
    dst = tmp_path_factory.mktemp("acme-bin") / "sigil"
    last = None
    for _ in range(5):
        shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        last = subprocess.run([str(dst), "--help"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        if last.returncode == 0:
            return str(dst)
        time.sleep(2)
    raise AssertionError("the copied sigil binary does not run" + describe(last))


def client_env(**extra) -> dict:
    """The environment for a client: no proxies for loopback, nothing of Sigil's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SIGIL_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_tool(argv, *, env=None, timeout, cwd=None) -> subprocess.CompletedProcess:
    argv = [str(a) for a in argv]
    try:
        return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise AssertionError(f"timed out after {timeout} s: {' '.join(argv)}\n--- stdout ---\n{out[-3000:]}"
                             f"\n--- stderr ---\n{err[-3000:]}") from None


def output(p: subprocess.CompletedProcess) -> str:
    return (p.stdout or "") + (p.stderr or "")


# ------------------------------------------------------------------------------------ mock DNS


class ChallTestSrv:
    """pebble-challtestsrv as a DNS server only (A 127.0.0.1 for every name, no AAAA)."""

    def __init__(self, binary: str, logdir: Path):
        self.binary = binary
        self.dns_port = free_port()
        self.mgmt_port = free_port()
        self.log = logdir / f"challtestsrv-{self.dns_port}.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20) -> "ChallTestSrv":
        self.proc = subprocess.Popen(
            [self.binary, "-dns01", f"127.0.0.1:{self.dns_port}", "-management", f"127.0.0.1:{self.mgmt_port}",
             "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdin=subprocess.DEVNULL, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pebble-challtestsrv exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"pebble-challtestsrv did not listen within {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def mgmt_url(self) -> str:
        return f"http://127.0.0.1:{self.mgmt_port}"


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    with _no_proxy_opener().open(url, timeout=timeout) as r:
        return r.status, r.read()


# The dns-01 hook lego runs (`--dns exec`): `present|cleanup FQDN VALUE`.
HOOK = r'''#!{python}
import json, sys, urllib.request
action, fqdn, value = sys.argv[1], sys.argv[2], sys.argv[3]
body = {{"host": fqdn}}
if action == "present":
    body["value"] = value
    path = "/set-txt"
elif action == "cleanup":
    path = "/clear-txt"
else:
    sys.exit(0)
req = urllib.request.Request("{mgmt}" + path, data=json.dumps(body).encode(), method="POST")
urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open(req, timeout=10).read()
'''


# ------------------------------------------------------------------------------------ the server


@dataclass
class Acme:
    """One `sigil serve` with its ACME configuration, the mock DNS, and the clients' ports."""
    bin: str
    home: Path
    server: SigilServer
    dns: ChallTestSrv
    http01_port: int
    tlsalpn01_port: int
    work: Path
    tools: dict
    hook: Path = field(default=None)

    @property
    def directory(self) -> str:
        m = ACME_DIR_RE.search(self.server.stdout)
        assert m, "no 'acme directory:' line on serve's stdout" + self.server.describe()
        return m.group("url")

    @property
    def root(self) -> Path:
        return self.home / "root.pem"

    # --- sigil CLI ---------------------------------------------------------------------------
    def sigil(self, *args, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
        return run_tool([self.bin, *args], env=client_env(SIGIL_HOME=self.home), timeout=timeout)

    def cert_list(self, *args) -> list[dict]:
        p = self.sigil("cert", "list", "--home", self.home, "--json", *args)
        assert p.returncode == 0, describe(p)
        return json.loads(p.stdout)

    def cert_record(self, cert: x509.Certificate) -> dict:
        serial = f"{cert.serial_number:x}"
        rows = [r for r in self.cert_list() if int(r["serial"], 16) == cert.serial_number]
        assert len(rows) == 1, f"serial {serial}: {len(rows)} inventory rows"
        return rows[0]

    def eab(self, name: str, *allow: str) -> tuple[str, str]:
        args = ["acme", "eab", "create", "--home", self.home, "--name", name]
        for a in allow:
            args += ["--allow", a]
        p = self.sigil(*args)
        assert p.returncode == 0, describe(p)
        kid = re.search(r"^kid: (\S+)\s*$", p.stdout, re.M)
        key = re.search(r"^hmac key: (\S+)\s*$", p.stdout, re.M)
        assert kid and key, "no 'kid:' / 'hmac key:' lines" + describe(p)
        return kid.group(1), key.group(1)

    # --- lego --------------------------------------------------------------------------------
    def lego(self, path: Path, domains: list[str], command: list[str], *, challenge: str = "http",
             key_type: str = "ec256", eab: Optional[tuple[str, str]] = None, http_port: Optional[int] = None,
             timeout: float = LEGO_TIMEOUT) -> subprocess.CompletedProcess:
        argv = [self.tools["lego"], "--server", self.directory, "--accept-tos", "--email", EMAIL,
                "--path", path, "--key-type", key_type]
        if eab:
            # `--flag=VALUE`: a base64url HMAC key may begin with "-" (read as an option otherwise).
            argv += ["--eab", f"--kid={eab[0]}", f"--hmac={eab[1]}"]
        env = client_env(LEGO_CA_CERTIFICATES=self.root)
        if challenge == "http":
            argv += ["--http", "--http.port", f"127.0.0.1:{http_port or self.http01_port}"]
        elif challenge == "tls":
            argv += ["--tls", "--tls.port", f"127.0.0.1:{self.tlsalpn01_port}"]
        elif challenge == "dns":
            argv += ["--dns", "exec", "--dns.disable-cp", "--dns.resolvers", f"127.0.0.1:{self.dns.dns_port}"]
            env.update(EXEC_PATH=str(self.hook), EXEC_SEQUENCE_INTERVAL="1", EXEC_PROPAGATION_TIMEOUT="20",
                       EXEC_POLLING_INTERVAL="1")
        else:
            raise ValueError(challenge)
        for d in domains:
            argv += ["-d", d]
        return run_tool([*argv, *command], env=env, timeout=timeout)

    # --- certbot -----------------------------------------------------------------------------
    def certbot(self, base: Path, *args, eab: Optional[tuple[str, str]] = None,
                timeout: float = CERTBOT_TIMEOUT) -> subprocess.CompletedProcess:
        argv = [self.tools["certbot"], *args, "--server", self.directory, "--non-interactive",
                "--config-dir", base / "config", "--work-dir", base / "work", "--logs-dir", base / "logs"]
        if eab:
            # `--flag=VALUE`: a base64url HMAC key may begin with "-" (argparse: "expected one argument").
            argv += [f"--eab-kid={eab[0]}", f"--eab-hmac-key={eab[1]}"]
        return run_tool(argv, env=client_env(REQUESTS_CA_BUNDLE=self.root), timeout=timeout)

    def certbot_certonly(self, base: Path, domains: list[str], *key_args, eab=None,
                         extra=()) -> subprocess.CompletedProcess:
        args = ["certonly", "--standalone", "--preferred-challenges", "http-01",
                "--http-01-port", self.http01_port, "--http-01-address", "127.0.0.1",
                "--agree-tos", "--register-unsafely-without-email", *key_args, *extra]
        for d in domains:
            args += ["-d", d]
        return self.certbot(base, *args, eab=eab)

    # --- revocation status -------------------------------------------------------------------
    def crl(self) -> x509.CertificateRevocationList:
        status, der = http_get(f"{self.server.http_url}/crl/intermediate.crl")
        assert status == 200
        return x509.load_der_x509_crl(der)

    def crl_entry(self, cert: x509.Certificate, issuer: x509.Certificate, timeout: float = 30):
        """The CRL entry for `cert` (the CRL's signature verified with the issuer's key); waits up
        to `timeout` s for the CRL to be rebuilt after a revocation."""
        deadline = time.monotonic() + timeout
        while True:
            crl = self.crl()
            assert crl.is_signature_valid(issuer.public_key()), "CRL signature does not verify with the issuer key"
            assert crl.issuer == issuer.subject
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None or time.monotonic() > deadline:
                return entry
            time.sleep(0.25)

    def ocsp(self, cert_pem: Path, issuer_pem: Path) -> tuple[str, str]:
        """`openssl ocsp` against Sigil's responder: (status word, full output)."""
        p = run_tool([self.tools["openssl"], "ocsp", "-issuer", issuer_pem, "-cert", cert_pem,
                      "-url", f"{self.server.http_url}/ocsp", "-CAfile", self.root, "-timeout", "30"],
                     env=client_env(), timeout=60)
        out = output(p)
        assert p.returncode == 0, describe(p)
        assert "Response verify OK" in out, "OCSP response does not verify against Sigil's root" + describe(p)
        m = re.search(rf"^{re.escape(str(cert_pem))}: (\w+)\s*$", p.stdout, re.M)
        assert m, "no status line in openssl ocsp output" + describe(p)
        return m.group(1), out


def start_acme(bin_: str, tools: dict, work: Path, *, eab_required: bool, serve_args=()) -> Acme:
    work.mkdir(parents=True, exist_ok=True)
    dns = ChallTestSrv(tools["challtestsrv"], work).start()
    home = work / "home"
    home.mkdir()
    http01, tlsalpn01 = free_port(), free_port()
    (home / "sigil.yaml").write_text(yaml.safe_dump({"acme": {
        "http01_port": http01,
        "tls_alpn01_port": tlsalpn01,
        "dns_resolver": f"127.0.0.1:{dns.dns_port}",
        "eab_required": eab_required,
        "rate_limits": {"orders_per_account_per_hour": 1000, "orders_per_name_per_hour": 1000},
    }}))
    server = SigilServer(bin_, home, *serve_args, logdir=work / "logs", name="serve")
    try:
        server.start()
    except BaseException:
        dns.stop()
        raise
    hook = work / "dns-hook.py"
    hook.write_text(HOOK.format(python=sys.executable, mgmt=dns.mgmt_url))
    hook.chmod(0o755)
    acme = Acme(bin_, home, server, dns, http01, tlsalpn01, work, tools, hook)
    assert acme.root.exists(), "no root.pem in SIGIL_HOME after start" + server.describe()
    return acme


def stop_acme(acme: Acme) -> None:
    try:
        acme.server.stop(timeout=20)
    finally:
        acme.dns.stop()
    assert not acme.server.alive() and acme.dns.proc.poll() is not None


@pytest.fixture(scope="module")
def acme(acme_bin, tools, tmp_path_factory):
    """sigil serve with eab_required: false."""
    a = start_acme(acme_bin, tools, tmp_path_factory.mktemp("acme-open"), eab_required=False)
    yield a
    stop_acme(a)


@pytest.fixture(scope="module")
def acme_eab(acme_bin, tools, tmp_path_factory):
    """sigil serve with eab_required: true."""
    a = start_acme(acme_bin, tools, tmp_path_factory.mktemp("acme-eab"), eab_required=True)
    yield a
    stop_acme(a)


# ------------------------------------------------------------------------------------ judges


def load_pem_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def dns_names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert not san.get_values_for_type(x509.IPAddress), "unexpected IP SANs"
    return sorted(san.get_values_for_type(x509.DNSName))


def check_key(pub, key_type: str) -> None:
    if key_type in ("ec256", "ecdsa-p256"):
        assert isinstance(pub, ec.EllipticCurvePublicKey) and isinstance(pub.curve, ec.SECP256R1), pub
    elif key_type in ("ec384",):
        assert isinstance(pub, ec.EllipticCurvePublicKey) and isinstance(pub.curve, ec.SECP384R1), pub
    elif key_type in ("rsa2048",):
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048, pub
    else:
        raise ValueError(key_type)


def spki(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class Issued:
    cert: x509.Certificate
    leaf_pem: Path      # the leaf alone
    issuer_pem: Path    # the intermediate


def judge_issued(acme: Acme, leaf: x509.Certificate, issuer_certs: list[x509.Certificate], key_file: Path,
                 domains: list[str], key_type: str, workdir: Path) -> Issued:
    """openssl verify (output text) against Sigil's root, the SANs exactly as asked, the key type
    as asked and the client's own key; the inventory has it."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("leaf-*.pem")))
    leaf_pem, issuer_pem = workdir / f"leaf-{n}.pem", workdir / f"issuer-{n}.pem"
    leaf_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    issuer_pem.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issuer_certs))
    p = run_tool([acme.tools["openssl"], "verify", "-CAfile", acme.root, "-untrusted", issuer_pem,
                  "-purpose", "sslserver", leaf_pem], env=client_env(), timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == f"{leaf_pem}: OK", "openssl verify" + describe(p)
    assert dns_names(leaf) == sorted(domains)
    check_key(leaf.public_key(), key_type)
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert spki(key.public_key()) == spki(leaf.public_key()), "the certificate is not for the client's key"
    rec = acme.cert_record(leaf)
    assert rec["status"] == "active", rec
    assert sorted(rec["sans"]) == sorted(f"DNS:{d}" for d in domains), rec
    return Issued(leaf, leaf_pem, issuer_pem)


REASONS = {  # lego --reason code -> (cryptography ReasonFlags, openssl ocsp text)
    0: (x509.ReasonFlags.unspecified, None),
    1: (x509.ReasonFlags.key_compromise, "keyCompromise"),
    3: (x509.ReasonFlags.affiliation_changed, "affiliationChanged"),
    4: (x509.ReasonFlags.superseded, "superseded"),
    5: (x509.ReasonFlags.cessation_of_operation, "cessationOfOperation"),
}


def judge_revoked(acme: Acme, issued: Issued, reason: int) -> None:
    flag, ocsp_text = REASONS[reason]
    issuer = load_pem_certs(issued.issuer_pem)[0]
    entry = acme.crl_entry(issued.cert, issuer)
    assert entry is not None, f"serial {issued.cert.serial_number:x} is not on the CRL after revocation"
    try:
        got = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        got = x509.ReasonFlags.unspecified  # RFC 5280 5.3.1: reasonCode absent = unspecified
    assert got == flag, f"CRL reason {got}, expected {flag}"
    status, out = acme.ocsp(issued.leaf_pem, issued.issuer_pem)
    assert status == "revoked", out
    if ocsp_text:
        assert re.search(rf"^\s*Reason: {ocsp_text}\s*$", out, re.M), out
    rec = acme.cert_record(issued.cert)
    assert rec["status"] == "revoked", rec


def judge_good(acme: Acme, issued: Issued) -> None:
    issuer = load_pem_certs(issued.issuer_pem)[0]
    assert acme.crl_entry(issued.cert, issuer, timeout=0) is None
    status, out = acme.ocsp(issued.leaf_pem, issued.issuer_pem)
    assert status == "good", out


# ------------------------------------------------------------------------------------ lego


def lego_files(path: Path, domain: str) -> tuple[Path, Path]:
    """(certificate bundle, key) lego wrote for `domain` (a wildcard's files are named _.X)."""
    name = domain.replace("*", "_")
    return path / "certificates" / f"{name}.crt", path / "certificates" / f"{name}.key"


def lego_issued(acme: Acme, path: Path, domains: list[str], key_type: str, workdir: Path) -> Issued:
    crt, key = lego_files(path, domains[0])
    certs = load_pem_certs(crt)
    assert len(certs) == 2, f"{crt}: expected leaf + intermediate, got {len(certs)} certificates"
    issuer_file = crt.with_name(crt.name.replace(".crt", ".issuer.crt"))
    assert spki(load_pem_certs(issuer_file)[0].public_key()) == spki(certs[1].public_key())
    return judge_issued(acme, certs[0], certs[1:], key, domains, key_type, workdir)


def lego_account_key(path: Path):
    keys = glob.glob(str(path / "accounts" / "**" / "keys" / "*.key"), recursive=True)
    assert len(keys) == 1, f"lego account keys under {path}: {keys}"
    return serialization.load_pem_private_key(Path(keys[0]).read_bytes(), password=None)


LEGO_CASES = [
    # id, challenge, key type, domains, revocation reason
    pytest.param("http", "ec256", ["lego-http-ec.example.test"], 1, id="http01-ec256"),
    pytest.param("http", "rsa2048", ["lego-http-rsa.example.test", "www.lego-http-rsa.example.test"], 4,
                 id="http01-rsa2048"),
    pytest.param("tls", "ec256", ["lego-tls-ec.example.test"], 5, id="tlsalpn01-ec256"),
    pytest.param("tls", "rsa2048", ["lego-tls-rsa.example.test"], 3, id="tlsalpn01-rsa2048"),
    pytest.param("dns", "ec384", ["lego-dns.example.test", "*.lego-dns.example.test"], 0, id="dns01-wildcard-ec384"),
]


@pytest.mark.parametrize("challenge,key_type,domains,reason", LEGO_CASES)
def test_lego_obtain_renew_revoke(acme, tmp_path, challenge, key_type, domains, reason):
    path = tmp_path / "lego"
    p = acme.lego(path, domains, ["run"], challenge=challenge, key_type=key_type)
    assert p.returncode == 0, "lego run" + describe(p)
    first = lego_issued(acme, path, domains, key_type, tmp_path / "first")
    check_key(lego_account_key(path).public_key(), key_type)

    p = acme.lego(path, domains, ["renew", "--days", "999", "--no-random-sleep"], challenge=challenge,
                  key_type=key_type)
    assert p.returncode == 0, "lego renew" + describe(p)
    renewed = lego_issued(acme, path, domains, key_type, tmp_path / "renewed")
    assert renewed.cert.serial_number != first.cert.serial_number, "renewal returned the same certificate"
    assert spki(renewed.cert.public_key()) != spki(first.cert.public_key()), "lego renew makes a new key"

    # lego revokes one certificate per -d (its files are named after the first domain).
    p = acme.lego(path, domains[:1], ["revoke", "--reason", str(reason)], challenge=challenge, key_type=key_type)
    assert p.returncode == 0, "lego revoke" + describe(p)
    judge_revoked(acme, renewed, reason)
    judge_good(acme, first)


# ------------------------------------------------------------------------------------ certbot


CERTBOT_KEYS = {
    "ecdsa-p256": ["--key-type", "ecdsa", "--elliptic-curve", "secp256r1"],
    "rsa2048": ["--key-type", "rsa", "--rsa-key-size", "2048"],
}


def certbot_issued(acme: Acme, base: Path, name: str, domains: list[str], key_type: str, workdir: Path) -> Issued:
    live = base / "config" / "live" / name
    leaf = load_pem_certs(live / "cert.pem")
    chain = load_pem_certs(live / "chain.pem")
    full = load_pem_certs(live / "fullchain.pem")
    assert len(leaf) == 1 and len(chain) >= 1 and full == leaf + chain, f"certbot files in {live}"
    return judge_issued(acme, leaf[0], chain, live / "privkey.pem", domains, key_type, workdir)


def certbot_account_key(base: Path) -> dict:
    keys = glob.glob(str(base / "config" / "accounts" / "**" / "private_key.json"), recursive=True)
    assert len(keys) == 1, f"certbot accounts under {base}: {keys}"
    return json.loads(Path(keys[0]).read_text())


@pytest.fixture(scope="module")
def certbot_base(tmp_path_factory) -> Path:
    """One certbot configuration (so one account) for the certbot tests on the open server."""
    return tmp_path_factory.mktemp("certbot")


@pytest.mark.parametrize("key_type", list(CERTBOT_KEYS))
def test_certbot_obtain_renew_revoke(acme, certbot_base, tmp_path, key_type):
    name = f"certbot-{key_type}.example.test"
    domains = [name, f"www.{name}"]
    p = acme.certbot_certonly(certbot_base, domains, *CERTBOT_KEYS[key_type], extra=["--cert-name", name])
    assert p.returncode == 0, "certbot certonly" + describe(p)
    first = certbot_issued(acme, certbot_base, name, domains, key_type, tmp_path / "first")
    assert certbot_account_key(certbot_base)["kty"] == "RSA", "certbot's account key"

    # Not forced: certbot asks ARI (renewalInfo) and the fresh certificate is not due.
    p = acme.certbot(certbot_base, "renew", "--cert-name", name, "--no-random-sleep-on-renew")
    assert p.returncode == 0 and "not yet due for renewal" in output(p), "certbot renew (not forced)" + describe(p)
    assert load_pem_certs(certbot_base / "config" / "live" / name / "cert.pem")[0] == first.cert

    p = acme.certbot(certbot_base, "renew", "--cert-name", name, "--force-renewal", "--no-random-sleep-on-renew")
    assert p.returncode == 0, "certbot renew" + describe(p)
    renewed = certbot_issued(acme, certbot_base, name, domains, key_type, tmp_path / "renewed")
    assert renewed.cert.serial_number != first.cert.serial_number, "renewal returned the same certificate"

    p = acme.certbot(certbot_base, "revoke", "--cert-path", certbot_base / "config" / "live" / name / "cert.pem",
                     "--reason", "keycompromise", "--no-delete-after-revoke")
    assert p.returncode == 0, "certbot revoke" + describe(p)
    judge_revoked(acme, renewed, 1)
    judge_good(acme, first)

    # Again: the server answers alreadyRevoked (certbot logs the problem type).
    p = acme.certbot(certbot_base, "revoke", "--cert-path", certbot_base / "config" / "live" / name / "cert.pem",
                     "--reason", "keycompromise", "--no-delete-after-revoke")
    assert p.returncode != 0 and "already revoked" in output(p), "certbot revoke twice" + describe(p)


def aia_urls(cert: x509.Certificate) -> dict:
    """{'ocsp': [...], 'ca_issuers': [...], 'crl': [...]} from the certificate's extensions."""
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return {
        "ocsp": [d.access_location.value for d in aia if d.access_method == x509.AuthorityInformationAccessOID.OCSP],
        "ca_issuers": [d.access_location.value for d in aia
                       if d.access_method == x509.AuthorityInformationAccessOID.CA_ISSUERS],
        "crl": [n.value for dp in cdp for n in (dp.full_name or [])],
    }


def test_certbot_sees_revocation_through_aia(acme, tmp_path):
    """certbot finds the revocation on its own through the certificate's AIA OCSP URL: `certbot
    certificates` says REVOKED. The URLs in the certificate are the HTTP listener serve printed."""
    base, name = tmp_path / "certbot", "certbot-aia.example.test"
    p = acme.certbot_certonly(base, [name], *CERTBOT_KEYS["ecdsa-p256"], extra=["--cert-name", name])
    assert p.returncode == 0, "certbot certonly" + describe(p)
    cert = load_pem_certs(base / "config" / "live" / name / "cert.pem")[0]
    http = acme.server.http_url
    assert aia_urls(cert) == {"ocsp": [f"{http}/ocsp"], "ca_issuers": [f"{http}/ca/intermediate.crt"],
                              "crl": [f"{http}/crl/intermediate.crl"]}, f"serve's HTTP listener is {http}"
    p = acme.certbot(base, "revoke", "--cert-path", base / "config" / "live" / name / "cert.pem",
                     "--reason", "keycompromise", "--no-delete-after-revoke")
    assert p.returncode == 0, "certbot revoke" + describe(p)
    p = acme.certbot(base, "certificates", "--cert-name", name)
    assert p.returncode == 0, "certbot certificates" + describe(p)
    assert "INVALID: REVOKED" in output(p), f"certbot does not see the revocation (AIA {aia_urls(cert)})" + describe(p)


# ------------------------------------------------------------------------------------ failed challenge


def test_lego_http01_nothing_listening(acme, tmp_path):
    """Sigil connects to http01_port where nothing listens (lego listens on another port): lego
    fails with a connection problem and nothing is issued."""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", acme.http01_port), timeout=2).close()
    before = {r["serial"] for r in acme.cert_list()}
    domain = "lego-unreachable.example.test"
    p = acme.lego(tmp_path / "lego", [domain], ["run"], http_port=free_port())
    assert p.returncode != 0, "lego succeeded although nothing answered on http01_port" + describe(p)
    assert "urn:ietf:params:acme:error:connection" in output(p), describe(p)
    after = acme.cert_list()
    assert {r["serial"] for r in after} == before, "a certificate was recorded for a failed challenge"
    assert not [r for r in after if f"DNS:{domain}" in r["sans"]]
    assert not lego_files(tmp_path / "lego", domain)[0].exists()


# ------------------------------------------------------------------------------------ EAB


def directory_meta(acme: Acme) -> dict:
    ctx = ssl.create_default_context(cafile=str(acme.root))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    with opener.open(acme.directory, timeout=30) as r:
        return json.loads(r.read()).get("meta", {})


def test_directory_advertises_eab(acme, acme_eab):
    """Both clients decide from the directory's meta.externalAccountRequired whether to send EAB
    (and refuse on their own without it): the flag must follow the configuration."""
    assert directory_meta(acme_eab).get("externalAccountRequired") is True, directory_meta(acme_eab)
    assert directory_meta(acme).get("externalAccountRequired", False) is False, directory_meta(acme)


def test_lego_without_eab_refused(acme_eab, tmp_path):
    """lego 4.9.1 reads meta.externalAccountRequired and stops before newAccount, with its own
    message (the server's externalAccountRequired problem is never reached by this client)."""
    p = acme_eab.lego(tmp_path / "lego", ["eab-none.example.test"], ["run"])
    assert p.returncode != 0, "lego registered without EAB on an eab_required server" + describe(p)
    assert "Server requires External Account Binding" in output(p), describe(p)
    assert not acme_eab.cert_list("--name", "eab-none.example.test")


def test_lego_with_eab_and_key_reuse(acme_eab, tmp_path):
    key = acme_eab.eab("lego-eab")
    first = tmp_path / "first"
    p = acme_eab.lego(first, ["eab-lego.example.test"], ["run"], eab=key, key_type="rsa2048")
    assert p.returncode == 0, "lego with a fresh EAB key" + describe(p)
    lego_issued(acme_eab, first, ["eab-lego.example.test"], "rsa2048", tmp_path / "issued")

    # The same EAB key for a second account (a new account key): refused.
    p = acme_eab.lego(tmp_path / "second", ["eab-lego2.example.test"], ["run"], eab=key)
    assert p.returncode != 0, "an EAB key bound a second account" + describe(p)
    assert "urn:ietf:params:acme:error:unauthorized" in output(p), describe(p)
    assert not acme_eab.cert_list("--name", "eab-lego2.example.test")


def test_certbot_with_eab(acme_eab, tmp_path):
    key = acme_eab.eab("certbot-eab")
    domains = ["eab-certbot.example.test"]
    p = acme_eab.certbot_certonly(tmp_path / "certbot", domains, *CERTBOT_KEYS["ecdsa-p256"], eab=key,
                                  extra=["--cert-name", domains[0]])
    assert p.returncode == 0, "certbot with EAB" + describe(p)
    certbot_issued(acme_eab, tmp_path / "certbot", domains[0], domains, "ecdsa-p256", tmp_path / "issued")


def test_certbot_without_eab_refused(acme_eab, tmp_path):
    p = acme_eab.certbot_certonly(tmp_path / "certbot", ["eab-certbot-none.example.test"],
                                  *CERTBOT_KEYS["ecdsa-p256"])
    assert p.returncode != 0, "certbot registered without EAB on an eab_required server" + describe(p)
    assert "Server requires external account binding" in output(p), describe(p)
    assert not acme_eab.cert_list("--name", "eab-certbot-none.example.test")


def test_eab_allowed_names(acme_eab, tmp_path):
    key = acme_eab.eab("corp-only", "*.corp.example.test")
    path = tmp_path / "lego"
    p = acme_eab.lego(path, ["x.corp.example.test"], ["run"], eab=key)
    assert p.returncode == 0, "an allowed name" + describe(p)
    lego_issued(acme_eab, path, ["x.corp.example.test"], "ec256", tmp_path / "issued")

    # Same account (lego reuses the registration in --path), a name outside the EAB key's patterns.
    p = acme_eab.lego(path, ["y.other.example.test"], ["run"], eab=key)
    assert p.returncode != 0, "ordered a name outside the EAB key's --allow" + describe(p)
    assert "urn:ietf:params:acme:error:rejectedIdentifier" in output(p), describe(p)
    assert not acme_eab.cert_list("--name", "y.other.example.test")


# ------------------------------------------------------------------------------------ audit


@pytest.mark.parametrize("which", ["acme", "acme_eab"])
def test_audit_chain_intact(request, which):
    """Last in the module: the audit chain is intact after everything above (serve still running;
    SQLite WAL allows the reader)."""
    a: Acme = request.getfixturevalue(which)
    p = a.sigil("audit", "verify", "--home", a.home)
    assert p.returncode == 0 and "intact" in p.stdout, describe(p)
