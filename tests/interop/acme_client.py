"""A small ACME (RFC 8555) client for protocol-level interop tests: it builds every JWS by hand so a
test can play a careful client or a hostile one (replayed nonces, forged signatures, wrong headers).

Built on `cryptography` + `requests` only:
- account keys: ES256 (P-256), ES384 (P-384), ES512 (P-521), RS256 (RSA 2048), EdDSA (Ed25519);
- JWK and its RFC 7638 thumbprint; flattened JWS (RFC 7515 §7.2.2) with `jwk` or `kid`;
- nonces: taken from every response's Replay-Nonce, fetched from newNonce when none is left;
- POST-as-GET (empty payload, RFC 8555 §6.3);
- External Account Binding (RFC 8555 §7.3.4, HS256);
- key change (RFC 8555 §7.3.5);
- the ARI certificate identifier (RFC 9773 §4.1).

Nothing here asserts: the tests judge the responses. Every response is passed to `on_response`
(if set) so a test module can check headers on ALL of them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtensionOID, NameOID

ACME_ERROR = "urn:ietf:params:acme:error:"
JOSE = "application/jose+json"


# ------------------------------------------------------------------------------------ base64url


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


# ------------------------------------------------------------------------------------ keys

_EC = {"ES256": (ec.SECP256R1, hashes.SHA256, 32, "P-256"),
       "ES384": (ec.SECP384R1, hashes.SHA384, 48, "P-384"),
       "ES512": (ec.SECP521R1, hashes.SHA512, 66, "P-521")}

ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "EdDSA")


class AccountKey:
    """A private key with its JWS algorithm (the one RFC 7518 / RFC 8037 ties to the key type)."""

    def __init__(self, alg: str = "ES256", private_key=None):
        if alg not in ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg}")
        self.alg = alg
        if private_key is None:
            if alg in _EC:
                private_key = ec.generate_private_key(_EC[alg][0]())
            elif alg == "RS256":
                private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            else:
                private_key = ed25519.Ed25519PrivateKey.generate()
        self.key = private_key

    @classmethod
    def generate(cls, alg: str = "ES256") -> "AccountKey":
        return cls(alg)

    @property
    def public_key(self):
        return self.key.public_key()

    def jwk(self) -> dict:
        """The public JWK with only the members RFC 7638 §3.2 requires."""
        pub = self.public_key
        if self.alg in _EC:
            size, crv = _EC[self.alg][2], _EC[self.alg][3]
            nums = pub.public_numbers()
            return {"crv": crv, "kty": "EC", "x": b64u(nums.x.to_bytes(size, "big")),
                    "y": b64u(nums.y.to_bytes(size, "big"))}
        if self.alg == "RS256":
            nums = pub.public_numbers()
            return {"e": b64u(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
                    "n": b64u(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))}
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64u(raw)}

    def thumbprint(self) -> str:
        return jwk_thumbprint(self.jwk())

    def sign(self, data: bytes, alg: Optional[str] = None) -> bytes:
        """The JWS signature over `data` (EC: R || S, RFC 7518 §3.4). `alg` may name another hash
        for the same key type to forge mismatches; by default the key's own algorithm."""
        alg = alg or self.alg
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            hash_cls = _EC[alg][1] if alg in _EC else hashes.SHA256
            size = (self.key.curve.key_size + 7) // 8
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hash_cls())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.key.sign(data)

    def spki_der(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace; base64url."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    return b64u(hashlib.sha256(canonical_json({k: jwk[k] for k in required})).digest())


def key_authorization(token: str, key: AccountKey) -> str:
    """RFC 8555 §8.1."""
    return f"{token}.{key.thumbprint()}"


def dns01_txt(token: str, key: AccountKey) -> str:
    """RFC 8555 §8.4: base64url(SHA-256(key authorization))."""
    return b64u(hashlib.sha256(key_authorization(token, key).encode()).digest())


# ------------------------------------------------------------------------------------ JWS


def flattened_jws(key: AccountKey, protected: dict, payload: Optional[Any], *, alg: Optional[str] = None,
                  sign_alg: Optional[str] = None, tamper: Optional[Callable[[bytes], bytes]] = None) -> dict:
    """A flattened JWS. payload None: POST-as-GET (empty payload); bytes: sent as they are;
    anything else: its JSON. `tamper` may change the raw signature bytes (not their base64)."""
    header = dict(protected)
    header.setdefault("alg", alg or key.alg)
    protected_b64 = b64u(json.dumps(header, separators=(",", ":")).encode())
    if payload is None:
        payload_b64 = ""
    elif isinstance(payload, bytes):
        payload_b64 = b64u(payload)
    else:
        payload_b64 = b64u(json.dumps(payload, separators=(",", ":")).encode())
    signature = key.sign(f"{protected_b64}.{payload_b64}".encode(), alg=sign_alg)
    if tamper:
        signature = tamper(signature)
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64u(signature)}


def flip_bit(signature: bytes, index: Optional[int] = None, bit: int = 0) -> bytes:
    """The signature with one bit flipped (by default in the middle of the bytes)."""
    i = len(signature) // 2 if index is None else index
    return signature[:i] + bytes([signature[i] ^ (1 << bit)]) + signature[i + 1:]


def eab_binding(account_jwk: dict, eab_kid: str, hmac_key_b64u: str, url: str, alg: str = "HS256") -> dict:
    """RFC 8555 §7.3.4: a JWS over the account JWK, MACed with the EAB key."""
    protected = b64u(json.dumps({"alg": alg, "kid": eab_kid, "url": url}, separators=(",", ":")).encode())
    payload = b64u(json.dumps(account_jwk, separators=(",", ":")).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(b64u_decode(hmac_key_b64u), f"{protected}.{payload}".encode(), digest).digest()
    return {"protected": protected, "payload": payload, "signature": b64u(mac)}


# ------------------------------------------------------------------------------------ certificates


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial number DER content octets)."""
    aki = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier
    n = cert.serial_number
    # DER INTEGER content: minimal two's complement, so a leading 0x00 when the top bit is set.
    serial = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")
    return f"{b64u(aki)}.{b64u(serial)}"


def make_csr(key, dns: Sequence[str] = (), ips: Sequence[str] = (), cn: Optional[str] = None,
             hash_alg=None) -> bytes:
    """A DER CSR naming these SANs (and CN if given), signed by `key` (a `cryptography` private key)."""
    import ipaddress
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if isinstance(key, (ed25519.Ed25519PrivateKey,)):
        hash_alg = None
    elif hash_alg is None:
        hash_alg = hashes.SHA256()
    return b.sign(key, hash_alg).public_bytes(serialization.Encoding.DER)


# ------------------------------------------------------------------------------------ client


@dataclass
class Exchange:
    """One request as sent and its response (for test messages)."""
    method: str
    url: str
    body: Optional[dict]
    response: requests.Response


def describe(r: requests.Response) -> str:
    req = r.request
    body = req.body if isinstance(req.body, (str, type(None))) else req.body.decode("utf-8", "replace")
    protected = ""
    try:
        if body:
            jws = json.loads(body)
            protected = " protected=" + b64u_decode(jws.get("protected", "")).decode("utf-8", "replace")
            if jws.get("payload"):
                protected += " payload=" + b64u_decode(jws["payload"]).decode("utf-8", "replace")[:600]
    except Exception:  # noqa: BLE001 — only a description
        pass
    headers = "\n".join(f"  {k}: {v}" for k, v in r.headers.items())
    return (f"\n{req.method} {req.url} (Content-Type {req.headers.get('Content-Type')}){protected}\n"
            f"-> {r.status_code}\n{headers}\n{r.content[:2000].decode('utf-8', 'replace')}")


class ACMEClient:
    """One account key against one ACME directory. `kid` is set once an account exists."""

    def __init__(self, directory_url: str, root_pem: str, key: Optional[AccountKey] = None,
                 on_response: Optional[Callable[[requests.Response], None]] = None, timeout: float = 60):
        self.directory_url = directory_url
        self.http = requests.Session()
        # REQUESTS_CA_BUNDLE would override `verify` otherwise.
        self.http.trust_env = False
        self.http.verify = str(root_pem)
        self.key = key or AccountKey("ES256")
        self.kid: Optional[str] = None
        self.nonce: Optional[str] = None
        self.on_response = on_response
        self.timeout = timeout
        self.history: list[Exchange] = []
        self._directory: Optional[dict] = None

    # --- transport --------------------------------------------------------------------------
    def _record(self, method: str, url: str, body: Optional[dict], r: requests.Response) -> requests.Response:
        _ = r.content
        r.close()
        self.history.append(Exchange(method, url, body, r))
        fresh = r.headers.get("Replay-Nonce")
        if fresh:
            self.nonce = fresh
        if self.on_response:
            self.on_response(r)
        return r

    def get(self, url: str, **kw) -> requests.Response:
        return self._record("GET", url, None, self.http.get(url, timeout=self.timeout, **kw))

    def head(self, url: str, **kw) -> requests.Response:
        return self._record("HEAD", url, None, self.http.head(url, timeout=self.timeout, **kw))

    def post_raw(self, url: str, body: Any, content_type: str = JOSE) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        r = self.http.post(url, data=data, headers={"Content-Type": content_type}, timeout=self.timeout)
        return self._record("POST", url, body if isinstance(body, dict) else None, r)

    def close(self) -> None:
        self.http.close()

    # --- directory and nonces ---------------------------------------------------------------
    @property
    def directory(self) -> dict:
        if self._directory is None:
            r = self.get(self.directory_url)
            r.raise_for_status()
            self._directory = r.json()
        return self._directory

    def url(self, name: str) -> str:
        return self.directory[name]

    def new_nonce(self) -> str:
        r = self.head(self.url("newNonce"))
        r.raise_for_status()
        return r.headers["Replay-Nonce"]

    def take_nonce(self) -> str:
        """The nonce from the last response (each is used once), or a fresh one."""
        nonce, self.nonce = self.nonce, None
        return nonce or self.new_nonce()

    # --- JWS requests -----------------------------------------------------------------------
    def sign(self, url: str, payload: Optional[Any], *, key: Optional[AccountKey] = None, use_jwk: Optional[bool] = None,
             kid: Optional[str] = None, nonce: Any = ..., header: Optional[dict] = None, drop: Sequence[str] = (),
             alg: Optional[str] = None, sign_alg: Optional[str] = None,
             tamper: Optional[Callable[[bytes], bytes]] = None) -> dict:
        """A flattened JWS for `url`. Signed with `jwk` when there is no account yet (or use_jwk),
        otherwise with `kid`. nonce=None leaves it out; `header` adds or overrides members; `drop`
        removes members."""
        key = key or self.key
        protected: dict = {"alg": alg or key.alg}
        if nonce is ...:
            nonce = self.take_nonce()
        if nonce is not None:
            protected["nonce"] = nonce
        protected["url"] = url
        if use_jwk is None:
            use_jwk = kid is None and self.kid is None
        if use_jwk:
            protected["jwk"] = key.jwk()
        else:
            protected["kid"] = kid or self.kid
        protected.update(header or {})
        for name in drop:
            protected.pop(name, None)
        return flattened_jws(key, protected, payload, sign_alg=sign_alg, tamper=tamper)

    def post(self, url: str, payload: Optional[Any] = None, *, content_type: str = JOSE, **sign_kw) -> requests.Response:
        return self.post_raw(url, self.sign(url, payload, **sign_kw), content_type=content_type)

    def post_as_get(self, url: str, **sign_kw) -> requests.Response:
        return self.post(url, None, **sign_kw)

    def post_retry_nonce(self, url: str, payload: Optional[Any] = None, **sign_kw) -> requests.Response:
        """As a careful client: on badNonce, retry once with the Replay-Nonce of the error (§6.5)."""
        r = self.post(url, payload, **sign_kw)
        if r.status_code == 400 and problem_type(r) == ACME_ERROR + "badNonce":
            r = self.post(url, payload, **sign_kw)
        return r

    # --- accounts ---------------------------------------------------------------------------
    def new_account(self, contact: Optional[Sequence[str]] = None, *, eab: Optional[tuple[str, str]] = None,
                    eab_jwk: Optional[dict] = None, only_return_existing: bool = False, tos: bool = True,
                    extra: Optional[dict] = None, **sign_kw) -> requests.Response:
        """newAccount signed with the jwk. eab = (kid, hmac key); eab_jwk: the key the binding
        names (default: this account's key). Sets self.kid from Location on 200/201."""
        url = self.url("newAccount")
        payload: dict = {}
        if tos:
            payload["termsOfServiceAgreed"] = True
        if contact is not None:
            payload["contact"] = list(contact)
        if only_return_existing:
            payload["onlyReturnExisting"] = True
        if eab:
            payload["externalAccountBinding"] = eab_binding(eab_jwk or self.key.jwk(), eab[0], eab[1], url)
        payload.update(extra or {})
        sign_kw.setdefault("use_jwk", True)
        r = self.post(url, payload, **sign_kw)
        if r.status_code in (200, 201) and "Location" in r.headers:
            self.kid = r.headers["Location"]
        return r

    def key_change(self, new_key: AccountKey, *, inner_url: Optional[str] = None, account: Optional[str] = None,
                   old_jwk: Optional[dict] = None) -> requests.Response:
        """RFC 8555 §7.3.5: outer JWS by the old key (kid), inner by the new key (jwk + url),
        payload {account, oldKey}. On 200 the client switches to the new key."""
        url = self.url("keyChange")
        inner = flattened_jws(new_key, {"alg": new_key.alg, "jwk": new_key.jwk(), "url": inner_url or url},
                              {"account": account or self.kid, "oldKey": old_jwk or self.key.jwk()})
        r = self.post(url, inner)
        if r.status_code == 200:
            self.key = new_key
        return r

    # --- orders -----------------------------------------------------------------------------
    def new_order(self, identifiers: Sequence[Any], profile: Optional[str] = None, replaces: Optional[str] = None,
                  **sign_kw) -> requests.Response:
        """identifiers: ("dns", name) tuples, dicts, or strings (dns, or ip when they parse as one)."""
        payload: dict = {"identifiers": [identifier(i) for i in identifiers]}
        if profile is not None:
            payload["profile"] = profile
        if replaces is not None:
            payload["replaces"] = replaces
        return self.post(self.url("newOrder"), payload, **sign_kw)

    def finalize(self, order: dict, csr_der: bytes) -> requests.Response:
        return self.post(order["finalize"], {"csr": b64u(csr_der)})

    def poll(self, url: str, until: Callable[[dict], bool], timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = self.post_as_get(url)
            body = r.json()
            if until(body) or time.monotonic() > deadline:
                return body
            time.sleep(min(float(r.headers.get("Retry-After", "0.2") or 0.2), 1.0))

    def revoke(self, cert_der: bytes, reason: Optional[int] = None, **sign_kw) -> requests.Response:
        payload: dict = {"certificate": b64u(cert_der)}
        if reason is not None:
            payload["reason"] = reason
        return self.post(self.url("revokeCert"), payload, **sign_kw)

    def renewal_info(self, cert_id: str) -> requests.Response:
        return self.get(f"{self.url('renewalInfo')}/{cert_id}")


def identifier(i: Any) -> dict:
    if isinstance(i, dict):
        return i
    if isinstance(i, tuple):
        return {"type": i[0], "value": i[1]}
    import ipaddress
    try:
        ipaddress.ip_address(i)
        return {"type": "ip", "value": i}
    except ValueError:
        return {"type": "dns", "value": i}


def problem_type(r: requests.Response) -> Optional[str]:
    try:
        return r.json().get("type")
    except ValueError:
        return None
