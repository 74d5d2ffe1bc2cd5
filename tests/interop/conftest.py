"""Fixtures for the interop suite. Run through scripts/test.sh, which sets SIGIL_BIN."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from interop_helpers import (
    KT, OPENSSL_SAN_EXT, PASSPHRASE, SANS, SUBJECT, openssl_ok, sigil_bin, sigil_ok,
)


def pytest_report_header(config):
    b = os.environ.get("SIGIL_BIN", "(unset)")
    return [f"SIGIL_BIN={b}", f"openssl: {shutil.which('openssl')}"]


@pytest.fixture(scope="session", autouse=True)
def _tools():
    try:
        sigil_bin()
    except RuntimeError as e:
        pytest.exit(str(e), returncode=4)
    if not shutil.which("openssl"):
        pytest.exit("openssl is not on PATH", returncode=4)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared")


@pytest.fixture(scope="session")
def passfile(session_dir) -> Path:
    """The passphrase, without a trailing newline."""
    p = session_dir / "passphrase.txt"
    p.write_text(PASSPHRASE)
    return p


@pytest.fixture(scope="session")
def wrong_passfile(session_dir) -> Path:
    p = session_dir / "wrong-passphrase.txt"
    p.write_text("not the passphrase")
    return p


class SigilMade:
    """Keys and CSRs made by sigil once per session (key generation is slow in a debug build)."""

    def __init__(self, root: Path, passfile: Path):
        self.root = root
        self.passfile = passfile
        self._cache = {}

    def key(self, kt: str, kdf: str | None = None) -> Path:
        """kdf None: unencrypted; 'scrypt' / 'pbkdf2': encrypted with that --kdf;
        'default': encrypted without --kdf."""
        k = ("key", kt, kdf)
        if k not in self._cache:
            out = self.root / f"key-{kt.replace(':', '_')}-{kdf or 'plain'}.pem"
            args = ["key", "new", "--key-type", kt, "--out", out]
            if kdf is None:
                args.append("--no-passphrase")
            else:
                args += ["--passphrase-file", self.passfile]
                if kdf != "default":
                    args += ["--kdf", kdf]
            sigil_ok(*args)
            self._cache[k] = out
        return self._cache[k]

    def csr(self, kt: str) -> tuple[Path, Path]:
        """(key, csr) from `sigil csr new --key-type kt --key-out ... --subject SUBJECT --san ...`."""
        k = ("csr", kt)
        if k not in self._cache:
            base = self.root / f"csr-{kt.replace(':', '_')}"
            key, csr = Path(f"{base}.key"), Path(f"{base}.csr")
            args = ["csr", "new", "--key-type", kt, "--key-out", key, "--no-passphrase",
                    "--subject", SUBJECT, "--out", csr]
            for s in SANS:
                args += ["--san", s]
            sigil_ok(*args)
            self._cache[k] = (key, csr)
        return self._cache[k]


@pytest.fixture(scope="session")
def made(tmp_path_factory, passfile) -> SigilMade:
    return SigilMade(tmp_path_factory.mktemp("sigil-made"), passfile)


class OpensslMade:
    """Keys and CSRs made by openssl 3.0 once per session."""

    def __init__(self, root: Path, passfile: Path):
        self.root = root
        self.passfile = passfile
        self._cache = {}

    def key(self, kt: str) -> Path:
        """PKCS#8 PEM from openssl genpkey."""
        k = ("key", kt)
        if k not in self._cache:
            out = self.root / f"ossl-{kt.replace(':', '_')}.pem"
            openssl_ok("genpkey", *KT[kt].genpkey, "-out", out)
            self._cache[k] = out
        return self._cache[k]

    def csr(self, kt: str, *extra: str) -> Path:
        k = ("csr", kt, extra)
        if k not in self._cache:
            out = self.root / f"ossl-{kt.replace(':', '_')}-{len(self._cache)}.csr"
            openssl_ok("req", "-new", "-batch", "-key", self.key(kt), "-subj", SUBJECT,
                       "-addext", OPENSSL_SAN_EXT, "-addext", "keyUsage=critical,digitalSignature",
                       "-addext", "extendedKeyUsage=serverAuth", *extra, "-out", out)
            self._cache[k] = out
        return self._cache[k]


@pytest.fixture(scope="session")
def ossl(tmp_path_factory, passfile) -> OpensslMade:
    return OpensslMade(tmp_path_factory.mktemp("openssl-made"), passfile)


# ------------------------------------------------------------------------------ CA (issue 3)

from ca_helpers import PROFILE_CSR_ARGS, CAHome, copy_home  # noqa: E402


@pytest.fixture(scope="session")
def ca_template(tmp_path_factory) -> CAHome:
    """A default hierarchy (root ec:P-384, intermediate ec:P-256) with a public-looking
    http_public_url, made once; tests get their own copy through `ca_home`."""
    home = CAHome(tmp_path_factory.mktemp("ca-template") / "home")
    home.init_root()
    home.init_intermediate()
    return home


@pytest.fixture
def ca_home(ca_template, tmp_path) -> CAHome:
    """This test's own SIGIL_HOME: a copy of the session's default hierarchy."""
    return copy_home(ca_template, tmp_path / "home")


class LeafCSRs:
    """Leaf CSRs made by `sigil csr new --key KEY` for a profile, keys made once per key type."""

    def __init__(self, root: Path, made: SigilMade):
        self.root = root
        self.made = made
        self._cache = {}

    def key(self, kt: str) -> Path:
        return self.made.key(kt)

    def csr(self, profile: str, kt: str) -> Path:
        k = (profile, kt)
        if k not in self._cache:
            out = self.root / f"{profile}-{kt.replace(':', '_')}.csr"
            sigil_ok("csr", "new", "--key", self.key(kt), *PROFILE_CSR_ARGS[profile], "--out", out)
            self._cache[k] = out
        return self._cache[k]


@pytest.fixture(scope="session")
def leaf_csrs(tmp_path_factory, made) -> LeafCSRs:
    return LeafCSRs(tmp_path_factory.mktemp("leaf-csrs"), made)
