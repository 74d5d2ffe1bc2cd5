"""`sigil agent` in operation, against `sigil serve` on loopback.

`http01_webroot`: http-01 answered by a web server that already holds the
port (here Python's `http.server`, standing in for nginx), the agent only writing the challenge
files into its document root — against `sigil serve`'s ACME server with EAB.

Judges: the web server's own access log (the CA's validator fetched the challenge from it),
the files left in the webroot (none), openssl (key matches certificate, chain verifies against
Sigil's root), and `sigil agent status --json`. A webroot the web server does not serve fails
validation with the CA's reason, and leaves no challenge file behind.

SIGHUP: the daemon reads its configuration again between passes (a certificate added to the
file is obtained without a restart); a broken file is reported and the daemon carries on with
the configuration it had; SIGTERM still stops it cleanly.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from interop_helpers import describe
from test_agent import AgentRun, SigilCA, agent_bin, chain_verifies, pair_matches, serial_of, stop, targets, wait_for  # noqa: F401 (fixture)


class WebServer:
    """`python -m http.server` on the CA's http-01 port, serving `root`, logging requests."""

    def __init__(self, root: Path, port: int, log: Path):
        self.log = log
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
                                     stdin=subprocess.DEVNULL, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._up, 30, "the web server")

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


@pytest.fixture(scope="module")
def webroot_ca(agent_bin, tmp_path_factory):
    ca = SigilCA(agent_bin, tmp_path_factory.mktemp("agent-webroot-sigil"))
    yield ca
    ca.stop()


def acme_config(ca: SigilCA, work: Path, out: Path, webroot: Path, name: str) -> dict:
    kid, hmac_file = ca.eab(f"webroot-{name}")
    return {
        "state_dir": str(work / "state"),
        "certificates": [{"name": name, "names": [f"{name}.agent-webroot.example.test"], **targets(out, name),
                          "ca": {"acme": {"directory": ca.directory, "eab": {"kid": kid, "hmac_file": str(hmac_file)},
                                          "ca_bundle": str(ca.root), "profile": "classic", "http01_webroot": str(webroot)}}}],
    }


def test_webroot_obtains_through_the_running_web_server(agent_bin, webroot_ca, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("the site\n")
    out = tmp_path / "tls"
    out.mkdir()
    server = WebServer(www, webroot_ca.http01, tmp_path / "web.log")
    try:
        agent = AgentRun(agent_bin, tmp_path, acme_config(webroot_ca, tmp_path, out, www, "web"))
        p = agent("--once")
        assert p.returncode == 0, describe(p) + "\n--- web server ---\n" + server.log.read_text()[-2000:]
        assert "web: deployed serial" in p.stdout, describe(p)
    finally:
        server.stop()
    # The CA's validator got the key authorization from the web server, not from the agent
    # (which could not have bound the port the web server holds).
    fetched = [line for line in server.log.read_text().splitlines() if "GET /.well-known/acme-challenge/" in line]
    assert fetched and all('" 200 ' in line for line in fetched), server.log.read_text()
    challenges = www / ".well-known" / "acme-challenge"
    assert challenges.is_dir() and (challenges.stat().st_mode & 0o777) == 0o755
    assert list(challenges.iterdir()) == [], "challenge files left behind"
    assert sorted(p.name for p in www.iterdir()) == [".well-known", "index.html"]
    crt, key = out / "web.crt", out / "web.key"
    assert pair_matches(key, crt) and chain_verifies(webroot_ca.root, out / "web.chain.pem", crt)
    st = agent.status()["web"]
    assert st["deployed"] and st["consecutive_failures"] == 0 and st["last_error"] is None


def test_webroot_not_served_fails_with_the_cas_reason_and_cleans_up(agent_bin, webroot_ca, tmp_path):
    served, wrong = tmp_path / "served", tmp_path / "not-served"
    served.mkdir()
    wrong.mkdir()
    out = tmp_path / "tls"
    out.mkdir()
    server = WebServer(served, webroot_ca.http01, tmp_path / "web.log")
    try:
        agent = AgentRun(agent_bin, tmp_path, acme_config(webroot_ca, tmp_path, out, wrong, "stray"))
        p = agent("--once")
    finally:
        server.stop()
    assert p.returncode == 1, describe(p)
    assert "stray:" in p.stderr and "404" in p.stderr, describe(p)
    assert list((wrong / ".well-known" / "acme-challenge").iterdir()) == [], "the failed challenge's file was left behind"
    assert not (out / "stray.crt").exists() and not (out / "stray.key").exists()
    st = agent.status()["stray"]
    assert not st["deployed"] and st["consecutive_failures"] == 1 and "404" in st["last_error"]


def test_sighup_reloads_the_configuration_between_passes(agent_bin, webroot_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    one = {"name": "first", "names": ["first.agent-hup.example.test"], **targets(out, "first"), "ca": webroot_ca.rest_ca("tls-server")}
    two = {"name": "second", "names": ["second.agent-hup.example.test"], **targets(out, "second"), "ca": webroot_ca.rest_ca("tls-server")}
    base = {"state_dir": str(tmp_path / "state"), "check_interval": "1h"}
    agent = AgentRun(agent_bin, tmp_path, {**base, "certificates": [one]})
    proc, err = agent.spawn()
    try:
        wait_for(lambda: (out / "first.crt").exists(), 60, "the first certificate")
        wait_for(lambda: "agent started" in err.read_text() and proc.poll() is None, 30, "the daemon to settle")
        first_serial = serial_of(out / "first.crt")
        # A second certificate in the file, then SIGHUP: obtained without a restart, the first left alone.
        agent.config.write_text(yaml.safe_dump({**base, "certificates": [one, two]}, sort_keys=False))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (out / "second.crt").exists(), 60, "the certificate added to the file")
        assert "configuration reloaded: 2 certificate(s)" in err.read_text(), err.read_text()
        assert pair_matches(out / "second.key", out / "second.crt")
        assert serial_of(out / "first.crt") == first_serial, "a reload renewed a certificate that was not due"
        # A broken file: reported, and the daemon keeps running on what it had.
        agent.config.write_text("certificates: [oops\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration not reloaded" in err.read_text(), 30, "the broken file to be reported")
        # ... and the loop starts again on the old configuration: seen before SIGTERM is sent (a
        # stop that came first would rightly keep it from starting, and the count below would be 2).
        wait_for(lambda: err.read_text().split("configuration not reloaded", 1)[1].count("agent started") == 1, 30,
                 "the daemon to carry on")
        assert proc.poll() is None, err.read_text()
    finally:
        code = stop(proc)
    log = err.read_text()
    assert code == 0, log
    assert "agent stopped" in log
    assert log.count("agent started") == 3, log  # the first loop, after the good reload, after the refused one
