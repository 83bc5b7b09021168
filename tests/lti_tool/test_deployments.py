"""Unknown deployment ids (LTI_DEPLOYMENT_POLICY): a launch signed by a known registration through a deployment the
tool has not seen is held for IT ("approval", the default) or accepted ("auto"). Deployment ids a platform returned at
Dynamic Registration are known, and a registration that received none (Canvas) accepts its first one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from lti_tool.claims import C_DEPLOYMENT_ID
from lti_tool.models import Context, Deployment, Registration, ResourceLink
from tests.factories import DeploymentFactory, RegistrationFactory
from tests.lti_tool.conftest import TestPlatform
from tests.lti_tool.test_launch_forgery import assert_refused
from tests.lti_tool.test_registration import moodle_style, register

pytestmark = pytest.mark.django_db

NEW_DEPLOYMENT = {C_DEPLOYMENT_ID: "12:abcdef"}


def stub_registration(stub) -> Registration:
    return RegistrationFactory(
        issuer=stub.url, client_id="canvas-key-1", auth_login_url=stub.url + "/auth",
        auth_token_url=stub.url + "/token", key_set_url=stub.url + "/jwks",
    )


def test_the_default_policy_is_approval():
    assert settings.LTI_DEPLOYMENT_POLICY == "approval"


def test_an_unknown_deployment_waits_for_it(client, platform):
    response = platform.full_launch(client, **NEW_DEPLOYMENT)
    assert_refused(response, "deployment_pending", 403)
    body = response.content.decode()
    assert "Waiting for IT approval" in body
    assert "activate" in body and "12:abcdef" in body  # what the LMS admin asks IT for
    assert "server clocks" not in body  # a sound launch: no keys-ids-clocks checklist
    deployment = Deployment.objects.get(deployment_id="12:abcdef")
    assert deployment.registration == platform.registration
    assert (deployment.is_active, deployment.pending) == (False, True)
    assert not Context.objects.filter(deployment=deployment).exists()
    # Launching again changes nothing until IT acts.
    assert_refused(platform.full_launch(client, **NEW_DEPLOYMENT), "deployment_pending", 403)
    assert Deployment.objects.filter(deployment_id="12:abcdef").count() == 1
    # The known deployment keeps working.
    assert platform.full_launch(client).status_code == 303


def test_it_activates_a_pending_deployment_in_the_admin(client, platform, admin_client):
    platform.full_launch(client, **NEW_DEPLOYMENT)
    deployment = Deployment.objects.get(deployment_id="12:abcdef")
    listing = admin_client.get("/admin/lti_tool/deployment/", {"pending__exact": "1"})
    assert listing.status_code == 200 and "12:abcdef" in listing.content.decode()
    admin_client.post("/admin/lti_tool/deployment/", {"action": "activate", "_selected_action": [deployment.pk]})
    deployment.refresh_from_db()
    assert (deployment.is_active, deployment.pending) == (True, False)
    assert platform.full_launch(client, **NEW_DEPLOYMENT).status_code == 303
    assert Context.objects.get(deployment=deployment)

    admin_client.post("/admin/lti_tool/deployment/", {"action": "disable", "_selected_action": [deployment.pk]})
    response = platform.full_launch(client, **NEW_DEPLOYMENT, resource_link_id="link-2")
    assert response.status_code == 403 and "deployment_disabled" in response.content.decode()
    assert not ResourceLink.objects.filter(resource_link_id="link-2").exists()


def test_ticking_active_in_the_registration_page_approves_a_pending_deployment(platform):
    deployment = DeploymentFactory(registration=platform.registration, is_active=False, pending=True)
    deployment.is_active = True
    deployment.save()
    deployment.refresh_from_db()
    assert deployment.pending is False


def test_list_platforms_shows_pending_deployments(platform):
    DeploymentFactory(registration=platform.registration, deployment_id="9:new", is_active=False, pending=True)
    DeploymentFactory(registration=platform.registration, deployment_id="8:off", is_active=False)
    out = StringIO()
    call_command("list_platforms", stdout=out)
    assert "9:new (pending)" in out.getvalue() and "8:off (disabled)" in out.getvalue()


@override_settings(LTI_DEPLOYMENT_POLICY="auto")
def test_auto_accepts_every_deployment_of_a_registration(client, platform):
    assert platform.full_launch(client, **NEW_DEPLOYMENT).status_code == 303
    deployment = Deployment.objects.get(deployment_id="12:abcdef")
    assert (deployment.is_active, deployment.pending) == (True, False)


@pytest.mark.parametrize("policy", ["approval", "auto"])
def test_a_registration_that_received_no_deployment_accepts_its_first_one_once(client, stub, platform_keys, policy):
    """Canvas returns no deployment id at registration; its first launch brings the one IT's approval covers."""
    registration = stub_registration(stub)
    first = TestPlatform.from_registration(stub, platform_keys[0], registration, deployment_id="1:first")
    with override_settings(LTI_DEPLOYMENT_POLICY=policy):
        assert first.full_launch(client).status_code == 303
        assert Deployment.objects.get(registration=registration, deployment_id="1:first").is_active
        second = TestPlatform.from_registration(stub, platform_keys[0], registration, deployment_id="2:other")
        response = second.full_launch(client, resource_link_id="link-2")
    if policy == "approval":
        assert response.status_code == 403 and "deployment_pending" in response.content.decode()
        assert Deployment.objects.get(deployment_id="2:other").pending
    else:
        assert response.status_code == 303
    assert ResourceLink.objects.filter(context__deployment__deployment_id="1:first").exists()


def test_the_deployment_moodle_returned_at_registration_is_known(client, stub, platform_keys):
    config_url, token = moodle_style(stub, deployment_id=7)
    assert register(client, config_url, token).status_code == 200
    registration = Registration.objects.get()
    moodle = TestPlatform.from_registration(stub, platform_keys[0], registration, deployment_id="7")
    assert moodle.full_launch(client).status_code == 303
    other = TestPlatform.from_registration(stub, platform_keys[0], registration, deployment_id="8")
    assert other.full_launch(client).status_code == 403
    assert list(registration.deployments.filter(is_active=True).values_list("deployment_id", flat=True)) == ["7"]
