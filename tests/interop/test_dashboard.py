"""The `sigil serve` dashboard in a real browser: headless Chromium driven by Selenium.

One server (fresh SIGIL_HOME, port 0) and one browser serve the whole module. The browser trusts
Sigil's root through an NSS database in a private HOME (certutil), so the TLS chain and the host
name are really checked: there is no --ignore-certificate-errors anywhere. What the browser cannot
see (status codes, raw Set-Cookie, replaying a cookie, forged POSTs) is checked with `requests`.

Screenshots of every page, per role, go to $SIGIL_ARTIFACTS (default tests/interop/artifacts/,
gitignored) as ROLE-PAGE.png.

Needs Debian's chromium, chromium-driver and libnss3-tools (.ci/run installs them) and selenium
(tests/interop/requirements.txt). Without them the module FAILS with a message; it never skips.
"""
from __future__ import annotations

import base64
import csv
import http.server
import io
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from interop_helpers import describe, run, sigil_bin
from serve_helpers import API, SigilServer, expect, expect_json, show

try:  # imported here so that a missing selenium fails the tests with a clear message
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM_ERROR: Optional[str] = None
except ImportError as e:  # pragma: no cover - depends on the machine
    SELENIUM_ERROR = str(e)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SIGIL_ARTIFACTS") or REPO / "tests" / "interop" / "artifacts")

APPROVAL_PROFILE = "tls-approved"
SIGIL_YAML = f"""profiles:
  {APPROVAL_PROFILE}:
    base: tls-server
    require_approval: true
"""
CSV_HEADER = ["serial", "fingerprint", "common_name", "sans", "issuer", "profile", "owner", "tags", "source", "key",
              "not_before", "not_after", "status"]
SESSION_COOKIE = "sigil_session"
WAIT = 60  # seconds: a form submission on a loaded machine (a positive wait: it ends as soon as the page is there)


# ------------------------------------------------------------------------------------ fixtures


@dataclass
class Dash:
    server: SigilServer
    home: Path
    bin: str
    admin_token: str
    tokens: dict = field(default_factory=dict)      # role -> token
    certs: dict = field(default_factory=dict)       # name -> {"fingerprint", "serial"}
    requests: dict = field(default_factory=dict)    # name -> pending request id

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, token: Optional[str] = None) -> API:
        return self.server.session(token if token is not None else self.admin_token)

    def cli(self, *args) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
        p = subprocess.run([self.bin, *map(str, args), "--home", str(self.home)], env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert p.returncode == 0, describe(p) + self.server.describe()
        return p

    def new_token(self, role: str, name: str) -> str:
        token = self.cli("token", "create", "--role", role, "--name", name).stdout.strip()
        assert re.fullmatch(r"sigil_[0-9a-f]+_[A-Za-z0-9_-]+", token), token
        return token

    def certificate(self, fingerprint: str) -> dict:
        return expect_json(self.api().get(f"/api/v1/certificates/{fingerprint}"), 200)


def make_csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def dash(tmp_path_factory) -> Dash:
    """A zero-config `sigil serve` with a profile that needs approval, some TLS certificates, two
    pending requests, and auditor / requester tokens."""
    require_browser_tools()  # fail before the server starts, not after
    d = tmp_path_factory.mktemp("dashboard")
    # A private copy of the binary AND its resource bundles (the dashboard's templates): the lead
    # rebuilds .build/debug while tests run, and Bundle.module looks next to the executable first,
    # then in the build directory, so a lone copy would render whatever templates are there now.
    src = Path(sigil_bin())
    binary = d / "sigil"
    shutil.copy2(src, binary)
    os.chmod(binary, 0o755)
    for bundle in src.parent.glob("*.resources"):
        shutil.copytree(bundle, d / bundle.name, symlinks=True)
    home = d / "home"
    home.mkdir()
    (home / "sigil.yaml").write_text(SIGIL_YAML)
    # First start: CA, admin token, the certificates and requests the tests look at. Then a second
    # start on the same home, so the overview's figures (a snapshot the dashboard computes at start
    # and refreshes every 30 s) already include them.
    first = SigilServer(str(binary), home, logdir=d / "logs")
    try:
        first.start()
        assert first.admin_token, "no admin token" + first.describe()
        dash = Dash(first, home, str(binary), first.admin_token)
        api = dash.api()
        for name in ("www.example.com", "api.example.com", "revoke-me.example.com", "owned.example.com"):
            body = expect_json(api.post("/api/v1/certificates", json={"csr": make_csr(name), "profile": "tls-server"}), 201)
            dash.certs[name] = {"fingerprint": body["fingerprint"], "serial": body["serial"]}
        for name in ("approve-me.example.com", "reject-me.example.com"):
            r = api.post("/api/v1/certificates", json={"csr": make_csr(name), "profile": APPROVAL_PROFILE})
            dash.requests[name] = expect_json(r, 202)["request_id"]
    finally:
        rc = first.stop()
    assert rc == 0, f"sigil serve exited {rc}" + first.describe()
    server = SigilServer(str(binary), home, logdir=d / "logs")
    try:
        dash.server = server.start()
        dash.tokens = {"admin": dash.admin_token, "auditor": dash.new_token("auditor", "aud"),
                       "requester": dash.new_token("requester", "req")}
        yield dash
    finally:
        rc = server.stop()
    assert rc == 0, f"sigil serve exited {rc}" + server.describe()


def require_browser_tools() -> None:
    problems = []
    if SELENIUM_ERROR:
        problems.append(f"selenium is not importable ({SELENIUM_ERROR}): pip install -r tests/interop/requirements.txt")
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            problems.append(f"{path} is missing: apt-get install {pkg}")
    if not shutil.which("certutil"):
        problems.append("certutil is missing: apt-get install libnss3-tools")
    if problems:
        pytest.fail("the dashboard browser tests need headless Chromium (.ci/run installs it):\n  "
                    + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def browser(dash, tmp_path_factory):
    """Headless Chromium whose HOME has an NSS db trusting Sigil's root (and nothing else added)."""
    require_browser_tools()
    home = tmp_path_factory.mktemp("browser-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "sigil-test-root", "-i", str(dash.server.root_pem)]):
        p = run(["certutil", "-d", f"sql:{nssdb}", *args], timeout=60)
        assert p.returncode == 0, describe(p)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000",
              "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--password-store=basic", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGIL_")}
    env["HOME"] = str(home)
    service = Service(CHROMEDRIVER, env=env, log_output=str(home / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)  # explicit paths: Selenium Manager never runs
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def ui(dash, browser, artifacts):
    """A signed-out browser (cookies cleared, console log drained) and the helpers."""
    browser.get(dash.url + "/ui/static/sigil.css")  # an origin page, so delete_all_cookies has a domain
    browser.delete_all_cookies()
    browser.get_log("browser")
    return UI(dash, browser, artifacts)


# ------------------------------------------------------------------------------------ helpers


class UI:
    def __init__(self, dash: Dash, driver, artifacts: Path):
        self.dash = dash
        self.d = driver
        self.artifacts = artifacts

    # navigation
    def get(self, path: str) -> None:
        self.d.get(self.dash.url + path)
        assert self.d.title != "Privacy error", "Chromium did not trust Sigil's root from the NSS db"

    def path(self) -> str:
        return re.sub(r"^https://[^/]+", "", self.d.current_url)

    def submit(self, element) -> None:
        """Click a submit button and wait until the next page has replaced this one and loaded.
        (A marker in this page's window object, not EC.staleness_of: chromedriver sometimes
        answers a stale-element probe with "Node ... does not belong to the document".)"""
        self.d.execute_script("window.__sigilOldPage = true")
        element.click()

        def next_page_loaded(d) -> bool:
            try:
                return d.execute_script("return !window.__sigilOldPage && document.readyState === 'complete'")
            except WebDriverException:  # the navigation is in progress
                return False
        WebDriverWait(self.d, WAIT).until(next_page_loaded, "the form submission did not load a new page")

    def el(self, css: str):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def els(self, css: str) -> list:
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def absent(self, css: str) -> bool:
        return not self.els(css)

    def text(self, css: str) -> str:
        return self.el(css).text.strip()

    def body(self) -> str:
        return self.d.find_element(By.TAG_NAME, "body").text

    # sign-in
    def sign_in(self, token: str, start: str = "/") -> None:
        self.get(start)
        if not self.path().startswith("/signin"):
            raise AssertionError(f"{start} did not redirect to /signin (at {self.path()})")
        self.el("#token").send_keys(token)
        self.submit(self.el("#signin"))

    def as_role(self, role: str) -> None:
        self.sign_in(self.dash.tokens[role])
        assert self.path() == "/", self.path()
        assert role in self.text("#who"), self.text("#who")

    def session_cookie(self) -> Optional[dict]:
        return next((c for c in self.d.get_cookies() if c["name"] == SESSION_COOKIE), None)

    def csrf(self) -> str:
        return self.el("form.signout input[name=csrf]").get_attribute("value")

    # inventory
    def search(self, text: str) -> list:
        self.get("/ui/certificates")
        box = self.el("#search")
        box.clear()
        box.send_keys(text)
        self.submit(self.el("#apply"))
        return self.els("#inventory tbody tr[data-fingerprint]")

    def row_status(self, fingerprint: str) -> str:
        return self.el(f'#inventory tr[data-fingerprint="{fingerprint}"] span.status').text.strip()

    # artifacts and checks
    def shot(self, role: str, page: str) -> Path:
        """A full-page PNG (beyond the viewport, through the DevTools protocol)."""
        m = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = m.get("cssContentSize") or m["contentSize"]
        data = self.d.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})["data"]
        out = self.artifacts / f"{role}-{page}.png"
        out.write_bytes(base64.b64decode(data))
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return out

    def console_problems(self) -> list:
        """Console entries at WARNING or above (CSP violations are SEVERE)."""
        return [e for e in self.d.get_log("browser") if e.get("level") in ("SEVERE", "WARNING")]

    def requests_session(self, cookie: Optional[str] = None) -> API:
        """`requests` with this browser's session cookie (or the given value); no bearer token."""
        api = self.dash.api(token="")
        value = cookie if cookie is not None else (self.session_cookie() or {}).get("value")
        if value:
            api.headers["Cookie"] = f"{SESSION_COOKIE}={value}"
        return api


def signin_form(api: API, next_path: str = "/") -> str:
    """GET /signin with `requests`: the double-submit value (the cookie lands in the session)."""
    r = expect(api.get(f"/signin?next={next_path}"), 200)
    m = re.search(r'name="signin" value="([^"]+)"', r.text)
    assert m, show(r)
    return m.group(1)


def redirects_to_signin(r, next_path: Optional[str] = None) -> bool:
    loc = r.headers.get("Location", "")
    return r.status_code == 303 and loc.startswith("/signin") and (next_path is None or loc == f"/signin?next={next_path}")


# ------------------------------------------------------------------------------------ tests


def test_page_without_session_redirects_to_signin(dash, ui):
    plain = dash.api(token="")
    for path in ("/", "/ui/certificates", "/ui/requests", "/ui/audit", "/ui/compliance",
                 f"/ui/certificates/{dash.certs['www.example.com']['fingerprint']}", "/ui/certificates.csv"):
        r = plain.get(path, allow_redirects=False)
        assert redirects_to_signin(r, path), f"{path} without a session" + show(r)
    # A POST without a session is refused, not performed.
    fp = dash.certs["www.example.com"]["fingerprint"]
    r = plain.post(f"/ui/certificates/{fp}/revoke", data={"reason": "1", "confirm": "yes", "csrf": "x"}, allow_redirects=False)
    assert r.status_code == 403, show(r)
    assert dash.certificate(fp)["status"] == "active"

    # In the browser: the sign-in page, and after signing in, the page first asked for.
    ui.get("/ui/audit")
    assert ui.path() == "/signin?next=/ui/audit", ui.path()
    assert ui.absent("#signout") and ui.absent("#nav-inventory"), "a signed-out page shows the navigation"
    ui.shot("anonymous", "signin")
    ui.el("#token").send_keys(dash.admin_token)
    ui.submit(ui.el("#signin"))
    assert ui.path() == "/ui/audit", ui.path()
    assert ui.els("#audit")


def test_wrong_token_shows_error_and_no_session(dash, ui):
    ui.sign_in("sigil_000000000000_" + "A" * 43)
    assert ui.path().startswith("/signin"), ui.path()
    assert "not valid" in ui.text("#signin-error"), ui.body()
    assert ui.session_cookie() is None, ui.d.get_cookies()
    ui.shot("anonymous", "signin-error")
    # The form still works afterwards (a fresh double-submit value came with the error page).
    ui.el("#token").send_keys(dash.admin_token)
    ui.submit(ui.el("#signin"))
    assert ui.path() == "/" and ui.session_cookie(), ui.path()

    # Status codes and cookies, seen with requests: a wrong token is 401 and sets no session;
    # a sign-in POST without the double-submit cookie is refused (login CSRF).
    api = dash.api(token="")
    value = signin_form(api)
    r = api.post("/signin", data={"signin": value, "token": "sigil_000000000000_nope", "next": "/"}, allow_redirects=False)
    assert r.status_code == 401 and SESSION_COOKIE not in r.headers.get("Set-Cookie", ""), show(r)
    bare = dash.api(token="")
    r = bare.post("/signin", data={"signin": value, "token": dash.admin_token, "next": "/"}, allow_redirects=False)
    assert r.status_code == 403 and SESSION_COOKIE not in r.headers.get("Set-Cookie", ""), show(r)
    # `next` is a local path only: never an open redirect.
    for evil in ("//evil.example.com/", "https://evil.example.com/", "/\\evil.example.com"):
        api = dash.api(token="")
        value = signin_form(api)
        r = api.post("/signin", data={"signin": value, "token": dash.admin_token, "next": evil}, allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/", f"next={evil}" + show(r)


def test_session_cookie_flags(dash, ui):
    ui.as_role("admin")
    c = ui.session_cookie()
    assert c, ui.d.get_cookies()
    assert c["httpOnly"] is True and c["secure"] is True and c.get("sameSite") == "Strict", c
    assert c["path"] == "/", c
    assert len(c["value"]) >= 32, "a session secret that short is guessable"
    assert ui.d.execute_script("return document.cookie") == "", "a cookie is readable from script"

    # The raw header, with requests.
    api = dash.api(token="")
    value = signin_form(api)
    r = api.post("/signin", data={"signin": value, "token": dash.admin_token, "next": "/ui/certificates"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/ui/certificates", show(r)
    raw = r.headers["Set-Cookie"]
    parts = [p.strip() for p in raw.split(";")]
    assert parts[0].startswith(f"{SESSION_COOKIE}=") and len(parts[0]) > len(SESSION_COOKIE) + 32, raw
    attrs = {p.split("=")[0].lower(): (p.split("=", 1)[1] if "=" in p else True) for p in parts[1:]}
    assert attrs.get("httponly") is True and attrs.get("secure") is True, raw
    assert attrs.get("samesite") == "Strict" and attrs.get("path") == "/", raw
    assert 60 <= int(attrs["max-age"]) <= 8 * 3600, raw


def test_csp_and_security_headers_on_pages(dash, ui):
    ui.as_role("admin")
    api = ui.requests_session()
    fp = dash.certs["www.example.com"]["fingerprint"]
    for path in ("/", "/ui/certificates", f"/ui/certificates/{fp}", "/ui/requests", "/ui/audit", "/ui/compliance", "/signin"):
        r = expect(api.get(path, allow_redirects=False) if path != "/signin" else dash.api(token="").get(path), 200)
        csp = r.headers.get("Content-Security-Policy", "")
        directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";") if d.strip()}
        assert directives.get("default-src") == ["'none'"], f"{path}: CSP {csp!r}"
        assert directives.get("style-src") == ["'self'"], f"{path}: CSP {csp!r}"
        assert "script-src" not in directives, f"{path}: CSP allows script: {csp!r}"
        assert directives.get("frame-ancestors") == ["'none'"], f"{path}: CSP {csp!r}"
        assert r.headers.get("X-Content-Type-Options") == "nosniff", path
        assert "no-store" in r.headers.get("Cache-Control", ""), path
        assert "<script" not in r.text.lower(), f"{path} has a script element"
    css = expect(api.get("/ui/static/sigil.css"), 200)
    assert css.headers["Content-Type"].startswith("text/css"), show(css)


def test_overview_totals_charts_and_no_console_errors(dash, ui):
    ui.as_role("admin")
    items = expect_json(dash.api().get("/api/v1/certificates", params={"limit": 500}), 200)["items"]
    statuses = [c["status"] for c in items]
    ui.get("/")
    assert int(ui.text("#total-all")) == len(items), (ui.text("#total-all"), len(items))
    for status in ("active", "expired", "revoked"):
        assert int(ui.text(f"#total-{status}")) == statuses.count(status), (status, statuses)
    if ui.els("#as-of"):  # the figures are a snapshot: it says when it was taken
        as_of = ui.text("#as-of")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", as_of), f"#as-of is {as_of!r}"
    pending = expect_json(dash.api().get("/api/v1/requests"), 200)["items"]
    assert int(ui.text("#open-approvals")) == len(pending)
    for chart in ("expiry-chart", "issuance-chart", "algorithm-chart"):
        svg = ui.el(f"svg#{chart}")
        assert svg.is_displayed(), chart
        size = svg.size
        assert size["width"] > 100 and size["height"] > 10, (chart, size)
        assert ui.els(f"svg#{chart} rect"), f"{chart} has no bars"
    # Everything issued today shows up in today's issuance bar.
    bars = ui.els("svg#issuance-chart rect")
    today = ui.d.execute_script("return arguments[0].querySelector('title').textContent", bars[-1])
    assert today.endswith(f": {len(items)}"), today
    # The stylesheet applied (it is the only style the CSP allows): cards are laid out as a grid.
    assert ui.d.execute_script("return getComputedStyle(document.querySelector('.cards')).display") == "grid"
    ui.shot("admin", "overview")

    # Every page loads with nothing on the console: no CSP violation, no failed resource.
    fp = dash.certs["www.example.com"]["fingerprint"]
    for path in ("/", "/ui/certificates", f"/ui/certificates/{fp}", "/ui/requests", "/ui/audit", "/ui/compliance"):
        ui.get(path)
        problems = ui.console_problems()
        assert not problems, f"console on {path}: {problems}"


def test_overview_compliance_panel_matches_compliance_page(dash, ui):
    """The overview's compliance panel lists the findings the compliance page counts."""
    ui.as_role("admin")
    ui.get("/ui/compliance")
    counts = {}
    for el in ui.els("section.finding"):
        counts[el.get_attribute("id")] = int(el.find_element(By.CSS_SELECTOR, "span.count").text)
    open_findings = {k: v for k, v in counts.items() if v > 0}
    # The checks are the compliance engine's (clean ones included); the crypto-agility section counts the CA's keys.
    assert "weak-key" in counts and "expired-in-use" in counts, f"the compliance page lists every check: {counts}"
    assert int(ui.el("#quantum-vulnerable").text) > 0, "CA certificates are not post-quantum"
    ui.shot("admin", "compliance")
    ui.get("/")
    summary = ui.el("#compliance-summary")
    links = {a.get_attribute("href").rsplit("#", 1)[-1]: a for a in summary.find_elements(By.CSS_SELECTOR, "a")}
    assert set(links) == set(open_findings), (
        f"overview compliance panel says {summary.text!r}; the compliance page has findings {open_findings}")


def test_admin_search_revoke_audit_approve_signout(dash, ui):
    target = dash.certs["revoke-me.example.com"]
    fp, serial = target["fingerprint"], target["serial"]
    ui.as_role("admin")

    # Find it by search.
    rows = ui.search("revoke-me")
    assert [r.get_attribute("data-fingerprint") for r in rows] == [fp], ui.text("#inventory")
    assert ui.row_status(fp) == "active"
    assert re.match(r"1\b", ui.text("#result-count")), ui.text("#result-count")
    ui.shot("admin", "inventory")
    # The search keeps its value, and the CSV link carries the filter.
    assert ui.el("#search").get_attribute("value") == "revoke-me"
    assert "q=revoke-me" in ui.el("#export-csv").get_attribute("href")
    # By serial and by fingerprint too.
    assert [r.get_attribute("data-fingerprint") for r in ui.search(serial)] == [fp], f"search by serial {serial}"
    assert [r.get_attribute("data-fingerprint") for r in ui.search(fp)] == [fp], "search by fingerprint"

    # Open it and revoke it with a reason (keyCompromise, RFC 5280 code 1).
    ui.submit(ui.el(f'#inventory tr[data-fingerprint="{fp}"] a.cert-link'))
    assert ui.path() == f"/ui/certificates/{fp}", ui.path()
    assert ui.text("#cert-status") == "active"
    assert ui.text("#cert-serial") == serial
    reasons = {o.get_attribute("value"): o.text for o in Select(ui.el("#revoke-reason")).options}
    assert reasons.get("1") == "keyCompromise" and reasons.get("0") == "unspecified", reasons
    assert "8" not in reasons, f"removeFromCRL is not a revocation reason: {reasons}"
    ui.shot("admin", "certificate")
    # Without the confirmation box: not revoked, and the page says why.
    Select(ui.el("#revoke-reason")).select_by_value("1")
    ui.submit(ui.el("#revoke"))
    assert "tick the confirmation" in ui.text("#flash"), ui.body()
    assert dash.certificate(fp)["status"] == "active"
    # With it.
    Select(ui.el("#revoke-reason")).select_by_value("1")
    ui.el("#revoke-confirm").click()
    ui.submit(ui.el("#revoke"))
    assert ui.path() == f"/ui/certificates/{fp}", ui.path()
    assert ui.text("#cert-status") == "revoked"
    assert "keyCompromise" in ui.el("#cert-status").find_element(By.XPATH, "..").text
    assert ui.absent("#revoke-form"), "a revoked certificate still offers the revoke form"
    history = ui.text("#history")
    assert "certificate.revoked" in history and "reason=keyCompromise" in history, history
    ui.shot("admin", "certificate-revoked")
    # The API agrees (the browser's word is not the only one).
    api_view = dash.certificate(fp)
    assert api_view["status"] == "revoked", api_view

    # The inventory shows it revoked.
    ui.search("revoke-me")
    assert ui.row_status(fp) == "revoked"
    ui.get("/ui/certificates?status=revoked")
    assert fp in [r.get_attribute("data-fingerprint") for r in ui.els("#inventory tr[data-fingerprint]")]

    # The overview counts it (its figures may be a snapshot, but a revocation here refreshes it).
    revoked = [c for c in expect_json(dash.api().get("/api/v1/certificates", params={"limit": 500}), 200)["items"]
               if c["status"] == "revoked"]
    deadline = time.monotonic() + 60  # at the latest the 30 s refresh of the snapshot
    while True:
        ui.get("/")
        shown = int(ui.text("#total-revoked"))
        if shown == len(revoked) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert shown == len(revoked) == 1, f"overview says {shown} revoked, the API {len(revoked)}"

    # The audit page shows who revoked what, and why.
    ui.get("/ui/audit")
    ui.el("#filter-action").send_keys("certificate.revoked")
    ui.el("#filter-actor").send_keys("token:admin")
    ui.submit(ui.el("#apply-audit"))
    rows = [r.text for r in ui.els("#audit tbody tr")]
    mine = [t for t in rows if f"certificate:{serial}" in t]
    assert len(mine) == 1, rows
    assert "token:admin" in mine[0] and "certificate.revoked" in mine[0] and "reason=keyCompromise" in mine[0], mine
    assert all("certificate.revoked" in t for t in rows), f"the action filter let other actions through: {rows}"
    ui.get("/ui/audit")
    assert ui.els("#audit-state")
    ui.submit(ui.el("#verify-now"))
    assert ui.path() == "/ui/audit"
    assert "intact" in ui.text("#audit-state").lower(), ui.text("#audit-state")
    ui.shot("admin", "audit")

    # Approve a pending request.
    rid = dash.requests["approve-me.example.com"]
    ui.get("/ui/requests")
    assert ui.els(f'article[data-request="{rid}"]'), ui.body()
    badge_before = int(ui.text("#pending-count"))
    ui.shot("admin", "requests")
    ui.submit(ui.el(f"#approve-{rid}"))
    flash = ui.text("#flash")
    assert flash.startswith("Approved: certificate"), flash
    assert ui.absent(f'article[data-request="{rid}"]'), "the approved request is still pending"
    decided = ui.text("#decided")
    assert rid in decided and "issued" in decided, decided
    assert (int(ui.text("#pending-count")) if ui.els("#pending-count") else 0) == badge_before - 1
    req = expect_json(dash.api().get(f"/api/v1/requests/{rid}"), 200)
    assert req["status"] == "issued" and req["certificate_serial"] in flash, (req, flash)
    rows = ui.search("approve-me.example.com")
    assert len(rows) == 1 and ui.row_status(rows[0].get_attribute("data-fingerprint")) == "active"

    # Reject the other: a reason is required.
    rid2 = dash.requests["reject-me.example.com"]
    ui.get("/ui/requests")
    ui.submit(ui.el(f"#reject-{rid2}"))
    assert "reason" in ui.text("#flash").lower() and ui.els(f'article[data-request="{rid2}"]'), ui.body()
    ui.el(f"#reject-reason-{rid2}").send_keys("not one of ours")
    ui.submit(ui.el(f"#reject-{rid2}"))
    assert ui.absent(f'article[data-request="{rid2}"]')
    assert expect_json(dash.api().get(f"/api/v1/requests/{rid2}"), 200)["status"] == "rejected"

    # Sign out: back to sign-in, the cookie is gone, and its old value no longer works.
    old = ui.session_cookie()["value"]
    csrf = ui.csrf()
    ui.submit(ui.el("#signout"))
    assert ui.path().startswith("/signin"), ui.path()
    assert ui.session_cookie() is None, ui.d.get_cookies()
    ui.get("/")
    assert ui.path() == "/signin?next=/", ui.path()
    replay = ui.requests_session(cookie=old)
    for path in ("/", "/ui/certificates", "/ui/audit"):
        r = replay.get(path, allow_redirects=False)
        assert redirects_to_signin(r), f"the signed-out cookie still opens {path}" + show(r)
    fp2 = dash.certs["api.example.com"]["fingerprint"]
    r = replay.post(f"/ui/certificates/{fp2}/revoke", data={"csrf": csrf, "reason": "1", "confirm": "yes"}, allow_redirects=False)
    assert r.status_code == 403, show(r)
    assert dash.certificate(fp2)["status"] == "active"


def test_ownership_form(dash, ui):
    fp = dash.certs["owned.example.com"]["fingerprint"]
    ui.as_role("admin")
    ui.get(f"/ui/certificates/{fp}")
    ui.el("#owner").clear()
    ui.el("#owner").send_keys("team-payments")
    ui.el("#tags").clear()
    ui.el("#tags").send_keys("prod, pci")
    ui.submit(ui.el("#save-ownership"))
    assert ui.text("#cert-owner") == "team-payments" and ui.text("#cert-tags") == "prod, pci", ui.body()
    assert "certificate.updated" in ui.text("#history")
    # What a person types is text, never markup.
    ui.el("#owner").clear()
    ui.el("#owner").send_keys('team-payments<b id="injected">x</b>')
    ui.submit(ui.el("#save-ownership"))
    assert ui.text("#cert-owner") == 'team-payments<b id="injected">x</b>' and ui.absent("#injected"), ui.body()
    ui.el("#owner").clear()
    ui.el("#owner").send_keys("team-payments")
    ui.submit(ui.el("#save-ownership"))
    ui.get("/ui/certificates?owner=team-payments")
    assert [r.get_attribute("data-fingerprint") for r in ui.els("#inventory tr[data-fingerprint]")] == [fp]
    ui.get("/ui/certificates?tag=pci")
    assert [r.get_attribute("data-fingerprint") for r in ui.els("#inventory tr[data-fingerprint]")] == [fp]


def test_csv_export(dash, ui):
    ui.as_role("admin")
    ui.search("www.example.com")
    href = ui.el("#export-csv").get_attribute("href")
    api = ui.requests_session()
    r = expect(api.get(href), 200)
    assert r.headers["Content-Type"].startswith("text/csv"), show(r)
    assert "attachment" in r.headers.get("Content-Disposition", ""), show(r)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert rows[0] == CSV_HEADER, rows[0]
    www = dash.certs["www.example.com"]
    assert (www["serial"], www["fingerprint"], "www.example.com", "DNS:www.example.com", "active") in \
        [(row[0], row[1], row[2], row[3], row[12]) for row in rows[1:]], rows
    assert all("www.example.com" in row[2] + row[3] for row in rows[1:]), f"the CSV ignores the search: {rows}"
    # Unfiltered: every certificate, with the revoked one marked so.
    everything = list(csv.reader(io.StringIO(expect(api.get("/ui/certificates.csv"), 200).content.decode("utf-8"))))
    by_fp = {row[1]: row for row in everything[1:]}
    total = len(expect_json(dash.api().get("/api/v1/certificates", params={"limit": 500}), 200)["items"])
    assert len(by_fp) == total, (len(by_fp), total)
    for name, c in dash.certs.items():
        assert c["fingerprint"] in by_fp, name
    # Without a session: no CSV.
    r = dash.api(token="").get("/ui/certificates.csv", allow_redirects=False)
    assert redirects_to_signin(r), show(r)


def test_auditor_sees_pages_but_no_actions_and_forged_posts_fail(dash, ui):
    fp = dash.certs["www.example.com"]["fingerprint"]
    ui.as_role("auditor")
    pages = {"overview": "/", "inventory": "/ui/certificates", "certificate": f"/ui/certificates/{fp}",
             "requests": "/ui/requests", "audit": "/ui/audit", "compliance": "/ui/compliance"}
    for name, path in pages.items():
        ui.get(path)
        assert ui.path() == path and ui.absent("#error-message"), f"auditor on {path}: {ui.body()[:500]}"
        ui.shot("auditor", name)
    ui.get(f"/ui/certificates/{fp}")
    for css in ("#revoke-form", "#revoke", "#renew-form", "#renew", "#ownership-form", "#save-ownership"):
        assert ui.absent(css), f"the auditor's certificate page has {css}"
    assert ui.els("#download-pem")
    # (both requests were decided by the admin test; make a fresh one to look at)
    r = dash.api().post("/api/v1/certificates", json={"csr": make_csr("audit-view.example.com"), "profile": APPROVAL_PROFILE})
    rid = expect_json(r, 202)["request_id"]
    ui.get("/ui/requests")
    assert ui.els(f'article[data-request="{rid}"]'), ui.body()
    for css in (f"#approve-{rid}", f"#reject-{rid}", f"#reject-reason-{rid}", "button.approve", "button.danger"):
        assert ui.absent(css), f"the auditor's requests page has {css}"

    # Forged POSTs with the auditor's own session AND its real anti-forgery token: the role says no.
    csrf = ui.csrf()
    api = ui.requests_session()
    for path, form in ((f"/ui/certificates/{fp}/revoke", {"reason": "1", "confirm": "yes"}),
                       (f"/ui/certificates/{fp}/ownership", {"owner": "mallory", "tags": "x"}),
                       (f"/ui/requests/{rid}/approve", {}),
                       (f"/ui/requests/{rid}/reject", {"reason": "no"})):
        r = api.post(path, data={"csrf": csrf, **form}, allow_redirects=False)
        assert r.status_code == 403, f"auditor POST {path}" + show(r)
    cert = dash.certificate(fp)
    assert cert["status"] == "active" and cert.get("owner") in (None, ""), cert
    assert expect_json(dash.api().get(f"/api/v1/requests/{rid}"), 200)["status"] == "pending"

    # The auditor can still ask for an audit verification (its own permission), with the token.
    r = api.post("/ui/audit/verify", data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == "/ui/audit", show(r)


def test_forged_posts_without_csrf_or_from_another_site_fail(dash, ui):
    fp = dash.certs["api.example.com"]["fingerprint"]
    rid = expect_json(dash.api().post("/api/v1/certificates", json={"csr": make_csr("forged.example.com"),
                                                                      "profile": APPROVAL_PROFILE}), 202)["request_id"]
    ui.as_role("admin")
    csrf = ui.csrf()
    api = ui.requests_session()
    # The admin's session cookie without the right anti-forgery token: 403, nothing done.
    for token in (None, "", "A" * len(csrf), csrf[:-1]):
        data = {"reason": "1", "confirm": "yes"} | ({} if token is None else {"csrf": token})
        r = api.post(f"/ui/certificates/{fp}/revoke", data=data, allow_redirects=False)
        assert r.status_code == 403, f"revoke with csrf={token!r}" + show(r)
        r = api.post(f"/ui/requests/{rid}/approve", data={} if token is None else {"csrf": token}, allow_redirects=False)
        assert r.status_code == 403, f"approve with csrf={token!r}" + show(r)
    r = api.post("/signout", data={"csrf": "wrong"}, allow_redirects=False)
    assert r.status_code == 403, show(r)
    # (the session still works: a forged sign-out did not end it)
    assert expect(api.get("/", allow_redirects=False), 200)

    # A cross-site form in the same browser, even one carrying the real anti-forgery token:
    # SameSite=Strict keeps the session cookie home, so the server sees no session.
    page = (f'<!doctype html><form method="post" action="{dash.url}/ui/certificates/{fp}/revoke">'
            f'<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="reason" value="1">'
            f'<input type="hidden" name="confirm" value="yes"><button id="go">Win a prize</button></form>').encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        ui.d.get(f"http://localhost:{evil.server_port}/")  # another site: localhost is not 127.0.0.1
        ui.submit(ui.el("#go"))
        assert ui.d.current_url.startswith(dash.url), ui.d.current_url
        assert "sign in" in ui.body().lower(), ui.body()
        ui.shot("admin", "cross-site-post")
    finally:
        evil.shutdown()
        evil.server_close()
    assert dash.certificate(fp)["status"] == "active", "a cross-site POST revoked a certificate"
    assert expect_json(dash.api().get(f"/api/v1/requests/{rid}"), 200)["status"] == "pending"
    ui.get("/")
    assert ui.path() == "/", "the cross-site POST ended the real session"


def test_requester_cannot_see_requests_or_audit(dash, ui):
    ui.as_role("requester")
    assert ui.absent("#nav-requests") and ui.absent("#nav-audit") and ui.els("#nav-inventory")
    assert ui.absent("#open-approvals")
    ui.shot("requester", "overview")
    for name, path in (("requests", "/ui/requests"), ("audit", "/ui/audit")):
        ui.get(path)
        assert "may not" in ui.text("#error-message"), ui.body()
        ui.shot("requester", f"{name}-forbidden")
    api = ui.requests_session()
    for path in ("/ui/requests", "/ui/audit"):
        r = api.get(path, allow_redirects=False)
        assert r.status_code == 403, show(r)
    fp = dash.certs["www.example.com"]["fingerprint"]
    for name, path in (("inventory", "/ui/certificates"), ("certificate", f"/ui/certificates/{fp}"), ("compliance", "/ui/compliance")):
        ui.get(path)
        assert ui.absent("#error-message"), ui.body()
        ui.shot("requester", name)
    ui.get(f"/ui/certificates/{fp}")
    assert ui.absent("#revoke-form") and ui.absent("#ownership-form"), "a requester may not revoke or edit ownership"


def test_revoked_token_ends_its_session(dash, ui):
    token = dash.new_token("operator", "short-lived-op")
    ui.sign_in(token)
    assert ui.path() == "/" and "operator" in ui.text("#who")
    cookie = ui.session_cookie()["value"]
    dash.cli("token", "revoke", "short-lived-op")
    ui.get("/ui/certificates")
    assert ui.path() == "/signin?next=/ui/certificates", f"a revoked token's session still works: {ui.path()}"
    r = ui.requests_session(cookie=cookie).get("/", allow_redirects=False)
    assert redirects_to_signin(r), show(r)
    # And the revoked token cannot sign in again.
    ui.el("#token").send_keys(token)
    ui.submit(ui.el("#signin"))
    assert ui.els("#signin-error"), ui.body()
    c = ui.session_cookie()
    assert c is None or c["value"] == cookie, f"the revoked token got a new session: {c}"
    ui.get("/")
    assert ui.path() == "/signin?next=/", ui.path()


def test_phone_viewport_has_no_horizontal_overflow(dash, ui):
    ui.as_role("admin")
    ui.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False})
    try:
        fp = dash.certs["www.example.com"]["fingerprint"]
        overflow = {}
        for name, path in (("overview", "/"), ("inventory", "/ui/certificates"), ("certificate", f"/ui/certificates/{fp}")):
            ui.get(path)
            inner, scroll = ui.d.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
            assert inner == 390, inner
            ui.shot("phone-admin", name)
            if scroll > inner + 1:
                wide = ui.d.execute_script("""
                    const w = window.innerWidth, out = [];
                    const over = e => e.getBoundingClientRect().right > w + 1;
                    for (const e of document.querySelectorAll('body *')) {
                      if (e.closest('.scroll') || !over(e) || (e.parentElement && over(e.parentElement))) continue;
                      out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
                               + ' right=' + Math.round(e.getBoundingClientRect().right));
                    }
                    return out.slice(0, 8);""")
                overflow[path] = f"scrollWidth {scroll} > innerWidth {inner}; widest: {wide}"
        assert not overflow, f"horizontal page overflow at 390x844: {overflow}"
    finally:
        ui.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_renew_keeps_a_requester_token_to_its_allowed_names(dash, ui):
    """A requester token limited to *.ci.example.com renews its own names in the dashboard, and may
    not use the renew form to get a certificate for another name (the API refuses the same)."""
    token = dash.cli("token", "create", "--role", "requester", "--name", "ci-bot", "--allow", "*.ci.example.com").stdout.strip()
    api = dash.api()
    mine = expect_json(api.post("/api/v1/certificates", json={"csr": make_csr("build.ci.example.com"), "profile": "tls-server",
                                                               "owner": "ci-team"}), 201)
    www = dash.certs["www.example.com"]

    def names_count(name: str) -> int:
        items = expect_json(api.get("/api/v1/certificates", params={"name": name, "limit": 500}), 200)["items"]
        return len(items)

    # The API: the token's name limit applies to renewals.
    r = dash.api(token).post(f"/api/v1/certificates/{www['serial']}/renew", json={"csr": make_csr("www.example.com")})
    assert 400 <= r.status_code < 500, "the API renewed a name outside the token's --allow" + show(r)
    before = names_count("www.example.com")

    ui.sign_in(token)
    assert "requester" in ui.text("#who")
    # Its own name: renewed, a new certificate with the same names and owner.
    ui.get(f"/ui/certificates/{mine['fingerprint']}")
    ui.el("#renew-csr").send_keys(make_csr("build.ci.example.com"))
    ui.submit(ui.el("#renew"))
    assert ui.absent("#flash"), ui.text("#flash")
    new_fp = ui.path().rsplit("/", 1)[-1]
    assert new_fp != mine["fingerprint"] and ui.text("#cert-status") == "active", ui.path()
    assert ui.text("#cert-owner") == "ci-team"
    ui.shot("requester", "certificate-renewed")
    # Another name: refused, nothing issued.
    ui.get(f"/ui/certificates/{www['fingerprint']}")
    ui.el("#renew-csr").send_keys(make_csr("www.example.com"))
    ui.submit(ui.el("#renew"))
    after = names_count("www.example.com")
    assert after == before, (f"the dashboard renewed www.example.com for a requester token limited to *.ci.example.com "
                             f"({before} -> {after} certificates; now at {ui.path()})")
    assert "Not renewed" in ui.text("#flash"), ui.body()
