"""`sigil agent` in operation, against `sigil serve` on loopback.

`dns01_hook`: a wildcard certificate through dns-01, the TXT records published by the
operator's hook (here a script driving pebble-challtestsrv, the DNS server Sigil's validator
asks); a failing hook is reported with its own words and nothing is deployed.

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
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from interop_helpers import describe
from test_agent import AgentRun, LoopbackProcess, SigilCA, agent_bin, chain_verifies, pair_matches, serial_of, stop, targets, wait_for  # noqa: F401 (fixture)


class WebServer(LoopbackProcess):
    """`python -m http.server` on the CA's http-01 port, serving `root`, logging requests."""

    def __init__(self, root: Path, port: int, log: Path):
        super().__init__([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)],
                         log, port, "the web server", 30)


@pytest.fixture(scope="module")
def webroot_ca(agent_bin, tmp_path_factory):
    ca = SigilCA(agent_bin, tmp_path_factory.mktemp("agent-ops-sigil"))
    try:
        # The ACME provisioner also validates dns-01 (through pebble-challtestsrv's DNS).
        ca.server.stop(timeout=20)
        config = yaml.safe_load((ca.home / "sigil.yaml").read_text())
        config["acme"]["provisioners"][0]["challenges"] = ["http-01", "dns-01"]
        (ca.home / "sigil.yaml").write_text(yaml.safe_dump(config))
        ca.restart()
        yield ca
    finally:
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


DNS_HOOK = """#!/usr/bin/env python3
import json, os, sys, urllib.request
action, record, value = os.environ["SIGIL_DNS01_ACTION"], os.environ["SIGIL_DNS01_RECORD"], os.environ["SIGIL_DNS01_VALUE"]
with open({log!r}, "a") as f:
    f.write(f"{{action}} {{os.environ['SIGIL_DNS01_DOMAIN']}} {{record}} {{value}} {{os.environ['SIGIL_AGENT_CERTIFICATE']}}\\n")
if {fail!r}:
    print("provider API: 403 zone is locked", file=sys.stderr)
    sys.exit(3)
body = {{"host": record, "value": value}} if action == "present" else {{"host": record}}
path = "set-txt" if action == "present" else "clear-txt"
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:{port}/" + path, data=json.dumps(body).encode(), method="POST"), timeout=10)
"""


def dns_agent(agent_bin: str, ca: SigilCA, work: Path, out: Path, name: str, names: list, fail: bool) -> tuple[AgentRun, Path]:
    log = work / "hook.log"
    hook = work / "dns-hook.py"
    hook.write_text(DNS_HOOK.format(log=str(log), fail=fail, port=ca.dns.mgmt_port))
    hook.chmod(0o755)
    kid, hmac_file = ca.eab(f"dns-{name}")
    agent = AgentRun(agent_bin, work, {
        "state_dir": str(work / "state"),
        "certificates": [{"name": name, "names": names, **targets(out, name),
                          "ca": {"acme": {"directory": ca.directory, "eab": {"kid": kid, "hmac_file": str(hmac_file)},
                                          "ca_bundle": str(ca.root), "profile": "classic", "challenge": "dns-01",
                                          "dns01_hook": [str(hook)]}}}],
    })
    return agent, log


def test_dns01_hook_obtains_a_wildcard(agent_bin, webroot_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    agent, log = dns_agent(agent_bin, webroot_ca, tmp_path, out, "wild", ["hook.agent-dns.example.test", "*.hook.agent-dns.example.test"], fail=False)
    p = agent("--once")
    assert p.returncode == 0, describe(p) + "\n--- hook ---\n" + (log.read_text() if log.exists() else "(never ran)")
    crt, key = out / "wild.crt", out / "wild.key"
    assert pair_matches(key, crt) and chain_verifies(webroot_ca.root, out / "wild.chain.pem", crt)
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["*.hook.agent-dns.example.test", "hook.agent-dns.example.test"]
    calls = [line.split() for line in log.read_text().splitlines()]
    # One authorization at a time: present, cleanup, present, cleanup — both at the base domain's record.
    assert [c[0] for c in calls] == ["present", "cleanup", "present", "cleanup"], calls
    assert {c[2] for c in calls} == {"_acme-challenge.hook.agent-dns.example.test."}
    assert all(c[4] == "wild" for c in calls)
    values = [c[3] for c in calls if c[0] == "present"]
    assert len(set(values)) == 2 and all(len(v) == 43 and set(v) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for v in values)
    assert [c[3] for c in calls if c[0] == "cleanup"] == values, "cleanup names the value it removes"


def test_dns01_hook_failure_is_reported_in_its_own_words(agent_bin, webroot_ca, tmp_path):
    out = tmp_path / "tls"
    out.mkdir()
    agent, log = dns_agent(agent_bin, webroot_ca, tmp_path, out, "locked", ["locked.agent-dns.example.test"], fail=True)
    p = agent("--once")
    assert p.returncode == 1, describe(p)
    assert "dns-01 hook could not present _acme-challenge.locked.agent-dns.example.test." in p.stderr, describe(p)
    assert "403 zone is locked" in p.stderr, describe(p)
    assert not (out / "locked.crt").exists() and not (out / "locked.key").exists()
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["present"]
    st = agent.status()["locked"]
    assert st["consecutive_failures"] == 1 and "403 zone is locked" in st["last_error"]
