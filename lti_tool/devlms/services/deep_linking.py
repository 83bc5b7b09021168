"""The deep-linking return: the tool's signed LtiDeepLinkingResponse becomes resource links and line items."""

from __future__ import annotations

from django.core import signing
from django.db import transaction

from lti_tool.devlms import jose
from lti_tool.devlms.models import ResourceLink, Tool
from lti_tool.devlms.services.base import DL_DATA_SALT, LTI, Platform, PlatformError, positive_number
from lti_tool.devlms.services.seed import add_resource_link, get_course
from lti_tool.outbound import has_nul


def accept_deep_link_response(platform: Platform, token: str) -> tuple[list[ResourceLink], str]:
    """Verify the tool's LtiDeepLinkingResponse and create the returned resource links (with gradebook columns).

    Returns the new links and the username of the instructor who ran the deep linking.
    """
    try:
        import jwt as pyjwt

        unverified = pyjwt.decode(token, options={"verify_signature": False})
    except Exception:
        raise PlatformError(400, "The deep-linking response is not a readable JWT.")
    if has_nul(unverified):
        raise PlatformError(400, "The deep-linking response holds a NUL character.")
    tool = Tool.objects.filter(client_id=str(unverified.get("iss", ""))[:64]).first()
    if tool is None:
        raise PlatformError(400, "The deep-linking response comes from an unknown client_id (iss).")
    try:
        claims = jose.verify_tool_jwt(token, jwks_uri=tool.jwks_uri, audience=platform.issuer, issuer=tool.client_id)
    except jose.TokenError as exc:
        raise PlatformError(400, f"The deep-linking response failed verification: {exc}")
    if claims.get(LTI + "message_type") != "LtiDeepLinkingResponse":
        raise PlatformError(400, "message_type must be LtiDeepLinkingResponse.")
    if claims.get(LTI + "version") != "1.3.0":
        raise PlatformError(400, "version must be 1.3.0.")
    if claims.get(LTI + "deployment_id") != tool.deployment_id:
        raise PlatformError(400, "deployment_id does not match the tool's deployment.")
    try:
        data = signing.loads(
            claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/data", ""), salt=DL_DATA_SALT, max_age=3600
        )
    except (signing.BadSignature, TypeError, AttributeError, ValueError):
        raise PlatformError(400, "The data claim is not the one the platform sent.")
    if data.get("tool") != tool.pk:
        raise PlatformError(400, "The data claim belongs to another tool.")
    items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
    if not isinstance(items, list) or len(items) > 10:
        raise PlatformError(400, "content_items must be a list of at most 10 items.")
    course = get_course(data["course"])
    created = []
    with transaction.atomic():
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "ltiResourceLink":
                raise PlatformError(400, "Only ltiResourceLink content items are accepted.")
            custom = item.get("custom", {})
            if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
                raise PlatformError(400, "custom must be an object of strings.")
            line_item = item.get("lineItem")
            if line_item is not None:
                if not isinstance(line_item, dict) or not positive_number(line_item.get("scoreMaximum")):
                    raise PlatformError(400, "lineItem.scoreMaximum must be a positive number.")
            created.append(
                add_resource_link(
                    course,
                    title=str(item.get("title") or "Untitled activity"),
                    custom=custom,
                    line_item=line_item,
                    tool=tool,
                )
            )
    return created, str(data.get("user", ""))
