"""Platform URLs and the internal network: with LTI_ALLOW_PRIVATE_PLATFORM_URLS off the tool connects to no loopback,
private or link-local address (checked on the address it actually connects to), anonymous callers never read what a
remote server answered, and /lti/login/ and /lti/register/ are rate-limited per client address."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
import urllib3.util.connection
from django.test import override_settings

from lti_tool import outbound, validation
from lti_tool.gradebook import ags
from lti_tool.validation import LaunchRefused
from tests.factories import RegistrationFactory
from tests.lti_tool.conftest import LAUNCH_URL
from tests.lti_tool.test_registration import (
    CANVAS_REG_PATH,
    MOODLE_CONFIG_PATH,
    canvas_style,
    moodle_style,
    register,
)

pytestmark = pytest.mark.django_db

PUBLIC_ADDRESS = "93.184.216.34"  # example.com's; never reached: create_connection is replaced below


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection it accepts (and closes it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()  # wake accept()
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def connections(monkeypatch):
    """Every (host, port) urllib3 opens a socket to; no socket is really opened."""
    opened: list[tuple[str, int]] = []

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return opened


class FakeDns:
    """Answers for chosen names, one list of addresses per lookup (the last one repeats); other names resolve."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.mark.parametrize(
    "address, public",
    [
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("not an address", False),
        (PUBLIC_ADDRESS, True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_public_addresses(address, public):
    assert outbound.is_public_address(address) is public


# --- Dynamic Registration ---------------------------------------------------------------------------------------------
@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_registration_pointing_at_loopback_connects_nowhere(client, listener):
    response = register(client, f"http://127.0.0.1:{listener.port}/.well-known/openid-configuration")
    assert response.status_code == 400
    body = response.content.decode()
    assert "platform_address_refused" in body and "LTI_ALLOW_PRIVATE_PLATFORM_URLS" in body
    assert listener.accepted == 0


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
@pytest.mark.parametrize("host", ["10.0.0.1", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]"])
def test_registration_pointing_at_a_private_address_opens_no_socket(client, connections, host):
    response = register(client, f"http://{host}/openid-configuration")
    assert response.status_code == 400
    assert "platform_address_refused" in response.content.decode()
    assert connections == []


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_a_name_with_any_private_address_is_refused(client, connections, dns):
    dns.answers["lms.example.edu"] = [[PUBLIC_ADDRESS, "10.1.2.3"]]
    response = register(client, "https://lms.example.edu/openid-configuration")
    assert response.status_code == 400
    assert "platform_address_refused" in response.content.decode()
    # An anonymous caller must not learn what an internal name resolves to.
    assert "10.1.2.3" not in response.content.decode()
    assert connections == []


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_dns_rebinding_connects_to_the_address_that_was_checked(connections, dns):
    """The name is resolved once; the socket goes to the checked address, not to a second lookup's answer."""
    dns.answers["rebind.example.com"] = [[PUBLIC_ADDRESS], ["127.0.0.1"]]
    with pytest.raises(outbound.FetchError):
        outbound.fetch_json("GET", "http://rebind.example.com:8080/jwks")
    assert dns.lookups == ["rebind.example.com"]
    assert connections and set(connections) == {(PUBLIC_ADDRESS, 8080)}


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_tls_still_names_the_host_after_connecting_to_its_checked_address(monkeypatch, dns):
    """The socket goes to the checked address; SNI and certificate checks (conn.host) keep the URL's host name."""
    dns.answers["lms.example.edu"] = [[PUBLIC_ADDRESS]]
    ours, theirs = socket.socketpair()
    opened = []

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        return ours

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    connection = outbound._PublicHTTPSConnection("lms.example.edu", 443)
    try:
        assert connection._new_conn() is ours
        assert opened == [(PUBLIC_ADDRESS, 443)] and connection.host == "lms.example.edu"
    finally:
        ours.close()
        theirs.close()


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=True)
def test_it_may_allow_private_platform_urls(client, stub):
    """A Moodle on the campus network: IT turns the setting on and Dynamic Registration works as before."""
    config_url, token = canvas_style(stub)
    assert register(client, config_url, token).status_code == 200


def test_development_mode_allows_private_platform_urls(settings):
    assert settings.LTI_ALLOW_PRIVATE_PLATFORM_URLS is True  # the development LMS and the demo live on localhost


def test_an_anonymous_caller_never_reads_the_remote_answer(client, stub, caplog):
    config_url, token = canvas_style(stub)
    stub.state.registration_answers[CANVAS_REG_PATH] = (400, {"error": "internal-detail-7f3a on db-02.corp"})
    with caplog.at_level(logging.WARNING, logger="lti_tool.outbound"):
        response = register(client, config_url, token)
    assert response.status_code == 400
    body = response.content.decode()
    assert "registration_refused" in body and "HTTP 400" in body
    assert "internal-detail-7f3a" not in body
    # IT finds the platform's answer in the log.
    assert any("internal-detail-7f3a" in str(getattr(r, "body", "")) for r in caplog.records)


def test_the_issuer_a_platform_wrote_is_not_reflected(client, stub):
    config_url, token = moodle_style(stub)
    stub.state.configs[MOODLE_CONFIG_PATH]["issuer"] = "https://internal-value-91c2.example"
    response = register(client, config_url, token)
    assert response.status_code == 400 and "issuer_mismatch" in response.content.decode()
    assert "internal-value-91c2" not in response.content.decode()


def test_a_bearer_refusal_body_is_not_reflected(client, stub):
    config_url, _ = canvas_style(stub)
    response = register(client, config_url, token="wrong")
    assert response.status_code == 400
    assert "bearer token required" not in response.content.decode()


# --- URLs learned from a platform: JWKS, token, AGS/NRPS --------------------------------------------------------------
@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_a_private_jwks_url_is_refused_without_connecting(listener):
    registration = RegistrationFactory(key_set_url=f"http://127.0.0.1:{listener.port}/jwks")
    with pytest.raises(LaunchRefused) as refused:
        validation.platform_jwks(registration)
    assert refused.value.reason == "jwks_unavailable"
    assert "LTI_ALLOW_PRIVATE_PLATFORM_URLS" in refused.value.admin_hint
    assert listener.accepted == 0


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_service_calls_to_a_private_address_are_refused_and_not_retried(listener):
    ags.close_connections()
    try:
        with pytest.raises(ags.ServiceError) as failed:
            ags.http("POST", f"http://127.0.0.1:{listener.port}/token", data={"grant_type": "client_credentials"})
    finally:
        ags.close_connections()
    assert failed.value.retryable is False
    assert "LTI_ALLOW_PRIVATE_PLATFORM_URLS" in failed.value.detail
    assert listener.accepted == 0


# --- Rate limits ------------------------------------------------------------------------------------------------------
def _burst(client, path, params, n=100, **headers):
    return [client.get(path, params, **headers) for _ in range(n)]


def _login_params():
    return {"iss": "https://unknown.example", "login_hint": "h", "target_link_uri": LAUNCH_URL}


@pytest.mark.parametrize(
    "path, params, allowed",
    [("/lti/login/", _login_params(), 60), ("/lti/register/", {"openid_configuration": ""}, 10)],
)
def test_a_burst_from_one_address_gets_429_with_retry_after(client, path, params, allowed):
    responses = _burst(client, path, params)
    statuses = [r.status_code for r in responses]
    assert 429 not in statuses[:allowed]
    assert set(statuses[allowed:]) == {429}
    for response in responses[allowed:]:
        assert 1 <= int(response["Retry-After"]) <= 60
        assert "try again" in response.content.decode()


@override_settings(LTI_RATE_LIMIT_REGISTER="3/60")
def test_limits_are_settings(client):
    statuses = [r.status_code for r in _burst(client, "/lti/register/", {}, n=5)]
    assert statuses == [400, 400, 400, 429, 429]


def test_other_addresses_keep_their_own_budget(client):
    _burst(client, "/lti/register/", {}, n=11, REMOTE_ADDR="203.0.113.7")
    assert client.get("/lti/register/", REMOTE_ADDR="203.0.113.7").status_code == 429
    assert client.get("/lti/register/", REMOTE_ADDR="203.0.113.8").status_code == 400


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(client):
    for i in range(11):
        response = client.get("/lti/register/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    assert response.status_code == 429


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_trusted_proxy_the_client_is_the_address_it_appended(client):
    # Clients rotate what they write themselves; the proxy appends the real address last.
    for i in range(11):
        response = client.get("/lti/register/", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.9")
    assert response.status_code == 429
    assert client.get("/lti/register/", HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 400


def test_ipv6_clients_count_per_64(client):
    for i in range(11):
        response = client.get("/lti/register/", REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}")
    assert response.status_code == 429
    assert client.get("/lti/register/", REMOTE_ADDR="2001:db8:1:3::1").status_code == 400


@override_settings(LTI_ALLOW_PRIVATE_PLATFORM_URLS=False)
def test_the_development_lms_reads_the_tools_jwks_on_loopback_bounded_like_every_document(stub_server):
    """The development LMS fetches the tool's JWKS (on localhost in development) through lti_tool.outbound without
    the public-address guard, and reads it like every platform document: bounded, and no NUL."""
    from lti_tool.devlms import jose

    stub_server.reset()
    url = stub_server.url + "/tool-jwks"
    stub_server.state.configs["/tool-jwks"] = {"keys": []}
    assert jose._fetch_jwks(url) == {"keys": []}
    stub_server.state.configs["/tool-jwks"] = {"keys": ["x" * (outbound.MAX_RESPONSE_BYTES + 1)]}
    with pytest.raises(jose.TokenError, match="more than"):
        jose._fetch_jwks(url)
    stub_server.state.configs["/tool-jwks"] = {"keys": [], "note": "a\x00b"}
    with pytest.raises(jose.TokenError, match="NUL"):
        jose._fetch_jwks(url)
