"""Machines authenticate to `sigil serve` with a client certificate from Sigil's own tls-client
profile (mTLS): such a caller is a requester limited to its certificate's own names, and a
revoked or foreign certificate authenticates nothing."""
from __future__ import annotations

import json
import subprocess

import requests

from serve_helpers import API, SigilServer, openssl_csr
from test_serve import cli_ok, home, served_template, serve_bin, servers  # noqa: F401  (fixtures)


def client_cert(serve_bin: str, home_path, tmp_path, name: str) -> tuple[str, str]:
    key = tmp_path / f"{name}.key"
    csr = tmp_path / f"{name}.csr"
    crt = tmp_path / f"{name}.pem"
    cli_ok(serve_bin, home_path, "csr", "new", "--key-out", key, "--no-passphrase", "--cn", name, "--out", csr)
    cli_ok(serve_bin, home_path, "ca", "sign", csr, "--profile", "tls-client", "--passphrase-file",
           home_path / "ca-passphrase", "--out", crt)
    return str(crt), str(key)


def test_client_certificate_authenticates_as_a_requester_for_its_own_names(servers, home, serve_bin, tmp_path):
    server: SigilServer = servers(home.path)
    crt, key = client_cert(serve_bin, home.path, tmp_path, "device-7.example.com")
    machine = API(server.url, server.root_pem)
    machine.cert = (crt, key)

    r = machine.get("/api/v1/profiles")
    assert r.status_code == 200, r.text

    _, own = openssl_csr(tmp_path / "own", "own", "device-7.example.com", ["DNS:device-7.example.com"])
    r = machine.post("/api/v1/certificates", json={"csr": own, "profile": "tls-server"})
    assert r.status_code == 201, r.text

    _, other = openssl_csr(tmp_path / "other", "other", "someone-else.example.com", ["DNS:someone-else.example.com"])
    r = machine.post("/api/v1/certificates", json={"csr": other, "profile": "tls-server"})
    assert r.status_code == 422, r.text
    assert any("requester may request" in e for e in r.json().get("errors", [])), r.text

    # A requester may not revoke or manage tokens.
    assert machine.get("/api/v1/tokens").status_code == 403

    # Without the certificate: no identity at all.
    anonymous = API(server.url, server.root_pem)
    assert anonymous.get("/api/v1/profiles").status_code == 401


def test_revoked_or_foreign_client_certificates_are_refused(servers, home, serve_bin, tmp_path):
    server: SigilServer = servers(home.path)
    crt, key = client_cert(serve_bin, home.path, tmp_path, "device-8.example.com")
    serial = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-serial"], capture_output=True, text=True,
                            check=True).stdout.strip().split("=")[1]
    admin = server.session(home.admin_token)
    r = admin.post(f"/api/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    machine = API(server.url, server.root_pem)
    machine.cert = (crt, key)
    assert machine.get("/api/v1/profiles").status_code == 401

    # A certificate from another CA: the TLS handshake (or authentication) fails.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", tmp_path / "self.key", "-out", tmp_path / "self.pem", "-subj", "/CN=intruder",
                    "-days", "1"], check=True, capture_output=True)
    intruder = API(server.url, server.root_pem)
    intruder.cert = (str(tmp_path / "self.pem"), str(tmp_path / "self.key"))
    try:
        status = intruder.get("/api/v1/profiles").status_code
    except requests.exceptions.SSLError:
        status = "handshake refused"
    assert status in (401, "handshake refused"), status
