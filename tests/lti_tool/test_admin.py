"""The admin IT uses: registrations with deployments and approve/disable actions, keys without private parts."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from lti_tool import keys, validation
from lti_tool.models import Registration, UsedNonce
from tests.factories import DeploymentFactory, LtiUserFactory, RegistrationFactory, ResourceLinkFactory


def test_admin_pages_render(admin_client):
    registration = RegistrationFactory(status=Registration.Status.PENDING)
    DeploymentFactory(registration=registration)
    LtiUserFactory(registration=registration)
    ResourceLinkFactory()
    key = keys.signing_key()
    for url in (
        "/admin/lti_tool/registration/",
        f"/admin/lti_tool/registration/{registration.pk}/change/",
        "/admin/lti_tool/toolkey/",
        f"/admin/lti_tool/toolkey/{key.pk}/change/",
        "/admin/lti_tool/ltiuser/",
        "/admin/lti_tool/context/",
        "/admin/lti_tool/resourcelink/",
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert "PRIVATE KEY" not in admin_client.get(f"/admin/lti_tool/toolkey/{key.pk}/change/").content.decode()


def test_approve_and_disable_actions(admin_client):
    registration = RegistrationFactory(status=Registration.Status.PENDING)
    admin_client.post(
        "/admin/lti_tool/registration/", {"action": "approve", "_selected_action": [registration.pk]}
    )
    registration.refresh_from_db()
    assert registration.status == Registration.Status.ACTIVE
    admin_client.post(
        "/admin/lti_tool/registration/", {"action": "disable", "_selected_action": [registration.pk]}
    )
    registration.refresh_from_db()
    assert registration.status == Registration.Status.DISABLED


def test_expired_nonces_are_purged(db):
    UsedNonce.objects.create(issuer="i", nonce="old", expires_at=timezone.now() - timedelta(minutes=1))
    UsedNonce.objects.create(issuer="i", nonce="live", expires_at=timezone.now() + timedelta(minutes=1))
    assert validation.purge_used_nonces() == 1
    assert list(UsedNonce.objects.values_list("nonce", flat=True)) == ["live"]
