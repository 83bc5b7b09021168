"""A stub LTI 1.3 platform for the tool's own launch and registration tests.

It stands for "an LTI 1.3 platform that is not part of this repo": its JWKS, OpenID configurations (Canvas-style,
bearer token required, no deployment id; Moodle-style, with the old quirks, returning a deployment id) and
registration endpoint are served over real HTTP from a thread on 127.0.0.1, so the tool fetches them exactly as it
would fetch Canvas's or Moodle's. Tokens are minted here with the platform's own keys (or forged ones).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache

from lti_tool.claims import (
    C_AGS,
    C_CONTEXT,
    C_CUSTOM,
    C_DEPLOYMENT_ID,
    C_DL_SETTINGS,
    C_MESSAGE_TYPE,
    C_NRPS,
    C_RESOURCE_LINK,
    C_ROLES,
    C_TARGET_LINK_URI,
    C_VERSION,
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
)
from lti_tool.models import Deployment, Registration
from tests.factories import DeploymentFactory, RegistrationFactory
from tests.lti_support import serve_on_loopback, stop_serving

TOOL_BASE = "http://testserver"
LAUNCH_URL = TOOL_BASE + "/lti/launch/"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"


@dataclass
class PlatformKey:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]

    @property
    def public_pem(self) -> bytes:
        key = jwt.PyJWK(self.public_jwk, algorithm="RS256").key
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def make_key(kid: str | None = None) -> PlatformKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    kid = kid or uuid.uuid4().hex[:12]
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return PlatformKey(kid=kid, private_pem=pem, public_jwk=jwk)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class StubState:
    """What the stub serves; tests mutate it."""

    keys: list[PlatformKey] = field(default_factory=list)
    jwks_fetches: int = 0
    jwks_status: int = 200
    jwks_delay_s: float = 0.0
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> document
    config_bearer: dict[str, str] = field(default_factory=dict)  # path -> required bearer token
    registration_answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # path -> answer
    registrations_received: list[dict[str, Any]] = field(default_factory=list)
    config_requests: list[dict[str, str]] = field(default_factory=list)
    pages: dict[str, Any] = field(default_factory=dict)  # path -> callable(query dict) -> HTML (browser tests)


class StubPlatform:
    """The stub platform server; `url` is its base URL."""

    def __init__(self) -> None:
        self.state = StubState()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = urlsplit(self.path).path
                st = stub.state
                if path == "/jwks":
                    st.jwks_fetches += 1
                    if st.jwks_delay_s:
                        time.sleep(st.jwks_delay_s)
                    self._json(st.jwks_status, {"keys": [k.public_jwk for k in st.keys]})
                elif path in st.pages:
                    query = {k: val[0] for k, val in parse_qs(urlsplit(self.path).query).items()}
                    data = st.pages[path](query).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif path in st.configs:
                    st.config_requests.append({"path": path, "authorization": self.headers.get("Authorization", "")})
                    required = st.config_bearer.get(path)
                    if required and self.headers.get("Authorization") != f"Bearer {required}":
                        self._json(401, {"error": "bearer token required"})
                    else:
                        self._json(200, st.configs[path])
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                st = stub.state
                if path in st.registration_answers:
                    st.registrations_received.append(
                        {
                            "path": path,
                            "body": body,
                            "authorization": self.headers.get("Authorization", ""),
                            "content_type": self.headers.get("Content-Type", ""),
                        }
                    )
                    status, answer = st.registration_answers[path]
                    self._json(status, answer)
                else:
                    self._json(404, {"error": "not found"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server, self.url = serve_on_loopback(Handler)

    def reset(self) -> None:
        self.state = StubState()

    def close(self) -> None:
        stop_serving(self.server)


@pytest.fixture(scope="session")
def stub_server():
    server = StubPlatform()
    yield server
    server.close()


@pytest.fixture(scope="session")
def platform_keys() -> list[PlatformKey]:
    """RSA keys made once per session (2048-bit generation is slow)."""
    return [make_key() for _ in range(3)]


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


class TestPlatform:
    """One registration of the tool on the stub platform, plus helpers to log in and launch through the tool."""

    __test__ = False

    def __init__(
        self,
        stub: StubPlatform,
        key: PlatformKey,
        issuer: str,
        client_id: str,
        deployment_id: str,
        registration: Registration | None = None,
    ):
        self.stub = stub
        self.key = key
        self.issuer = issuer
        self.client_id = client_id
        self.deployment_id = deployment_id
        if registration is None:
            registration = RegistrationFactory(
                issuer=issuer,
                client_id=client_id,
                auth_login_url=stub.url + "/auth",
                auth_token_url=stub.url + "/token",
                key_set_url=stub.url + "/jwks",
            )
            DeploymentFactory(registration=registration, deployment_id=deployment_id)
        self.registration = registration
        self.deployment = Deployment.objects.filter(registration=registration, deployment_id=deployment_id).first()

    @classmethod
    def from_registration(cls, stub: StubPlatform, key: PlatformKey, registration: Registration, deployment_id: str):
        """Launch through a registration the tool made itself (Dynamic Registration)."""
        return cls(stub, key, registration.issuer, registration.client_id, deployment_id, registration=registration)

    # --- OIDC login through the tool ---
    def login(self, client, *, method: str = "get", **extra: str) -> tuple[str, str]:
        """Third-party-initiated login at the tool; returns (state, nonce) from its redirect to our /auth."""
        params = {
            "iss": self.issuer,
            "login_hint": "hint-1",
            "target_link_uri": LAUNCH_URL,
            "lti_message_hint": "msg-1",
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
            **extra,
        }
        response = getattr(client, method)("/lti/login/", params)
        assert response.status_code == 302, response.content[:500]
        query = parse_qs(urlsplit(response["Location"]).query)
        return query["state"][0], query["nonce"][0]

    # --- id_tokens ---
    def claims(
        self,
        nonce: str,
        *,
        message_type: str = RESOURCE_LINK_REQUEST,
        sub: str = "user-1",
        roles: list[str] | None = None,
        resource_link_id: str = "link-1",
        context_id: str = "course-1",
        **overrides: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "email": "ada@example.edu",
            C_MESSAGE_TYPE: message_type,
            C_VERSION: "1.3.0",
            C_DEPLOYMENT_ID: self.deployment_id,
            C_TARGET_LINK_URI: LAUNCH_URL,
            C_ROLES: roles if roles is not None else [LEARNER],
            C_CONTEXT: {"id": context_id, "title": "Deep Learning", "label": "DL101"},
            C_AGS: {
                "scope": [
                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                ],
                "lineitems": self.stub.url + "/courses/1/lineitems",
                "lineitem": self.stub.url + "/courses/1/lineitems/7",
            },
            C_NRPS: {
                "context_memberships_url": self.stub.url + "/courses/1/memberships",
                "service_versions": ["2.0"],
            },
        }
        if message_type != DEEP_LINKING_REQUEST:
            claims[C_RESOURCE_LINK] = {"id": resource_link_id, "title": "ResNet challenges"}
            claims[C_CUSTOM] = {"placement": "4f0c"}
        else:
            claims[C_DL_SETTINGS] = {
                "deep_link_return_url": self.stub.url + "/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": False,
                "data": "opaque-123",
            }
        claims.update(overrides)
        return {k: val for k, val in claims.items() if val is not REMOVE}

    def sign(self, claims: dict[str, Any], *, key: PlatformKey | None = None, headers: dict | None = None) -> str:
        key = key or self.key
        return jwt.encode(claims, key.private_pem, algorithm="RS256", headers={"kid": key.kid, **(headers or {})})

    def id_token(self, nonce: str, **overrides: Any) -> str:
        return self.sign(self.claims(nonce, **overrides))

    def unsigned(self, claims: dict[str, Any], header: dict[str, Any]) -> str:
        """A token with an arbitrary header and no signature (for alg none)."""
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}."

    def hs256_with_public_key(self, claims: dict[str, Any]) -> str:
        """The classic key-confusion forgery: HMAC-SHA256 keyed with the platform's public key PEM."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.key.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        mac = hmac.new(self.key.public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    def launch(self, client, token: str, state: str, **extra: str):
        return client.post("/lti/launch/", {"id_token": token, "state": state, **extra})

    def full_launch(self, client, **overrides: Any):
        state, nonce = self.login(client)
        return self.launch(client, self.id_token(nonce, **overrides), state)


REMOVE = object()


@pytest.fixture
def stub(stub_server, platform_keys):
    stub_server.reset()
    stub_server.state.keys = [platform_keys[0]]
    return stub_server


@pytest.fixture
def platform(db, stub, platform_keys) -> TestPlatform:
    """An active registration of the tool on the stub platform, with one deployment."""
    return TestPlatform(stub, platform_keys[0], issuer=stub.url, client_id="tool-client-1", deployment_id="dep-1")


def refused_count(reason: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("lti_launches_refused_total", {"reason": reason}) or 0.0


def launches_count(message_type: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("lti_launches_total", {"message_type": message_type}) or 0.0
