"""At a terminal, with neither --passphrase-file/--passphrase-env nor --no-passphrase, `sigil key new`
asks for the passphrase twice with echo off (issue 2). Driven through a real pseudo-terminal."""
from __future__ import annotations

import os
import pty
import select
import time

from interop_helpers import openssl, sigil_bin


def converse(args: list[str], answers: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Run sigil on a new pty; each time a prompt ending in ': ' appears, type the next answer."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sigil_bin(), [sigil_bin(), *args])
    transcript = b""
    pending = list(answers)
    reaped = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
            if pending and transcript.rstrip(b"\r\n").endswith(b":") or (pending and transcript.endswith(b": ")):
                os.write(fd, (pending.pop(0) + "\n").encode())
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = status  # (it may exit between the select and this: reaped once only)
                break
    else:
        os.kill(pid, 9)  # still waiting for an answer at the deadline: fail, do not hang
    status = reaped if reaped is not None else os.waitpid(pid, 0)[1]
    os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def test_prompted_twice_without_echo(tmp_path):
    key = tmp_path / "k.pem"
    secret = "terminal passphrase 42"
    code, text = converse(["key", "new", "--out", str(key)], [secret, secret])
    assert code == 0, text
    assert text.count("Passphrase for") == 1 and "Repeat the passphrase" in text, text
    assert secret not in text, "the passphrase was echoed:\n" + text
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    (tmp_path / "pass").write_text(secret + "\n")
    p = openssl("pkey", "-in", key, "-passin", f"file:{tmp_path / 'pass'}", "-noout")
    assert p.returncode == 0, p.stderr


def test_mismatched_passphrases_write_nothing(tmp_path):
    key = tmp_path / "k.pem"
    code, text = converse(["key", "new", "--out", str(key)], ["first passphrase", "second passphrase"])
    assert code == 2, text
    assert "do not match" in text, text
    assert not key.exists()
    assert os.listdir(tmp_path) == []
