"""The tamper-evident audit trail (issue 3): `sigil audit verify|list|export`, with the SQLite
database edited behind sigil's back by Python's sqlite3."""
from __future__ import annotations

import csv
import io
import json

import pytest

from ca_helpers import CAHome, copy_home
from interop_helpers import describe, sigil_ok

COLUMNS = ("time_ms", "actor", "action", "object", "details", "prev_hash", "hash")


@pytest.fixture
def busy_home(ca_home, tmp_path, made) -> CAHome:
    """A home with a few kinds of entries: CA creation, issuance, a policy rejection, an approval
    request, a rejection and an approval."""
    h = ca_home
    for i, kt in enumerate(("ec:P-256", "rsa:2048")):
        c = tmp_path / f"leaf{i}.csr"
        sigil_ok("csr", "new", "--key", made.key(kt), "--cn", f"host{i}.example.com", "--out", c)
        assert h.sign(c, "--out", tmp_path / f"leaf{i}.pem").returncode == 0
    c = tmp_path / "bad.csr"
    sigil_ok("csr", "new", "--key", made.key("ed25519"), "--cn", "bad.example.com", "--out", c)
    assert h.sign(c, "--out", tmp_path / "bad.pem").returncode == 1
    ids = []
    for name in ("One", "Two"):
        c = tmp_path / f"cs{name}.csr"
        sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--subject", f"/O=Example Corp/CN=Signer {name}", "--out", c)
        p = h.sign(c, "--profile", "code-signing", "--json")
        assert p.returncode == 3, describe(p)
        ids.append(json.loads(p.stdout)["request_id"])
    assert h.run("request", "reject", ids[0], "--reason", "no").returncode == 0
    assert h.approve(ids[1], "--out", tmp_path / "cs.pem").returncode == 0
    return h


def rows(home: CAHome) -> list:
    return home.sql(f"SELECT seq, {', '.join(COLUMNS)} FROM audit ORDER BY seq")


def test_verify_intact(busy_home):
    rc, v, p = busy_home.audit_verify()
    assert rc == 0, describe(p)
    listed = busy_home.json("audit", "list")
    assert v["ok"] is True and v["first_bad_seq"] is None and v["problem"] is None, v
    assert v["entries"] == len(listed) == len(rows(busy_home)) >= 12, (v, len(listed))
    assert v["head_hash"] == rows(busy_home)[-1][-1]
    # the chain as stored links up
    r = rows(busy_home)
    assert [x[0] for x in r] == list(range(r[0][0], r[0][0] + len(r))), "seq has gaps"
    for prev, cur in zip(r, r[1:]):
        assert cur[COLUMNS.index("prev_hash") + 1] == prev[-1], (prev[0], cur[0])
    actions = {e["action"] for e in listed}
    assert {"ca.created", "certificate.issued", "request.rejected", "request.approved", "request.received"} <= actions, actions
    text = busy_home.ok("audit", "verify")
    assert str(len(listed)) in text.stdout


def middle_seq(home: CAHome) -> int:
    r = rows(home)
    return r[len(r) // 2][0]


def assert_names(home: CAHome, seq: int, what: str):
    rc, v, p = home.audit_verify()
    assert rc == 1, f"audit verify did not notice {what}" + describe(p)
    assert v["ok"] is False and v["first_bad_seq"] == seq, f"{what}: expected first_bad_seq {seq}" + describe(p)
    assert v["problem"], v
    t = home.run("audit", "verify")
    assert t.returncode == 1 and str(seq) in (t.stdout + t.stderr), describe(t)


@pytest.mark.parametrize("column", ["details", "actor", "action", "object", "time_ms"])
def test_changed_entry_is_named(busy_home, tmp_path, column):
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = middle_seq(h)
    old = h.sql(f"SELECT {column} FROM audit WHERE seq = ?", (seq,))[0][0]
    if column == "time_ms":
        new = old + 1
    else:
        b = bytearray(old.encode())
        i = len(b) // 2
        b[i] = b[i] ^ 0x01 if chr(b[i] ^ 0x01).isprintable() else ord("x")
        new = b.decode()
    assert new != old
    h.sql(f"UPDATE audit SET {column} = ? WHERE seq = ?", (new, seq))
    assert_names(h, seq, f"one changed byte of entry {seq}'s {column}")


def test_changed_last_entry_is_named(busy_home, tmp_path):
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = rows(h)[-1][0]
    h.sql("UPDATE audit SET details = replace(details, '\"', '''') WHERE seq = ?", (seq,))
    assert_names(h, seq, "a changed head entry")


def test_removed_entry_is_named(busy_home, tmp_path):
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = middle_seq(h)
    h.sql("DELETE FROM audit WHERE seq = ?", (seq,))
    assert_names(h, seq, f"removed entry {seq}")


def test_reordered_entries_are_named(busy_home, tmp_path):
    """Swap the whole contents of two neighbouring entries (hashes included): each entry is
    internally consistent, only the order is wrong."""
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = middle_seq(h)
    a = h.sql(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE seq = ?", (seq,))[0]
    b = h.sql(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE seq = ?", (seq + 1,))[0]
    sets = ", ".join(f"{c} = ?" for c in COLUMNS)
    h.sql(f"UPDATE audit SET {sets} WHERE seq = ?", (*b, seq))
    h.sql(f"UPDATE audit SET {sets} WHERE seq = ?", (*a, seq + 1))
    assert_names(h, seq, f"entries {seq} and {seq + 1} swapped")


def test_renumbered_entries_are_named(busy_home, tmp_path):
    """Swap two entries by their seq numbers instead of their contents."""
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = middle_seq(h)
    h.sql("UPDATE audit SET seq = -1 WHERE seq = ?", (seq,))
    h.sql("UPDATE audit SET seq = ? WHERE seq = ?", (seq, seq + 1))
    h.sql("UPDATE audit SET seq = ? WHERE seq = -1", (seq + 1,))
    assert_names(h, seq, f"entries {seq} and {seq + 1} renumbered")


def test_appending_after_tamper_does_not_heal(busy_home, tmp_path, made):
    """New entries appended after a tamper leave the damage visible."""
    h = copy_home(busy_home, tmp_path / "tampered")
    seq = middle_seq(h)
    h.sql("UPDATE audit SET actor = 'mallory' WHERE seq = ?", (seq,))
    c = tmp_path / "after.csr"
    sigil_ok("csr", "new", "--key", made.key("ec:P-256"), "--cn", "after.example.com", "--out", c)
    h.sign(c, "--out", tmp_path / "after.pem")  # may refuse or succeed; either way the tamper stays visible
    assert_names(h, seq, "a tamper followed by new entries")


def test_export_round_trip(busy_home, tmp_path):
    h = busy_home
    listed = h.json("audit", "list")
    r = rows(h)

    out_json = tmp_path / "audit.json"
    h.ok("audit", "export", "--format", "json", "--out", out_json)
    data = json.loads(out_json.read_text())
    entries = data["entries"] if isinstance(data, dict) else data
    assert len(entries) == len(listed) == len(r)
    assert [e["hash"] for e in entries] == [x[-1] for x in r]
    assert [e["prev_hash"] for e in entries] == [x[-2] for x in r]
    assert [e["seq"] for e in entries] == [x[0] for x in r]
    for prev, cur in zip(entries, entries[1:]):
        assert cur["prev_hash"] == prev["hash"]
    stdout_json = json.loads(h.ok("audit", "export", "--format", "json").stdout)
    assert stdout_json == data

    out_csv = tmp_path / "audit.csv"
    h.ok("audit", "export", "--format", "csv", "--out", out_csv)
    recs = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert len(recs) == len(r), (len(recs), len(r))
    assert {"seq", "action", "hash", "prev_hash"} <= set(recs[0]), recs[0].keys()
    assert [x["hash"] for x in recs] == [x[-1] for x in r]
    assert [int(x["seq"]) for x in recs] == [x[0] for x in r]
    assert [x["action"] for x in recs] == [x[1 + COLUMNS.index("action")] for x in r]

    # export refuses to overwrite without --force
    p = h.run("audit", "export", "--format", "csv", "--out", out_csv)
    assert p.returncode != 0, describe(p)
