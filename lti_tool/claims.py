"""Names of LTI 1.3 claims (LTI Core 1.3, Deep Linking 2.0, AGS, NRPS) and message types, imported by name."""

from __future__ import annotations

C_MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
C_VERSION = "https://purl.imsglobal.org/spec/lti/claim/version"
C_DEPLOYMENT_ID = "https://purl.imsglobal.org/spec/lti/claim/deployment_id"
C_TARGET_LINK_URI = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
C_RESOURCE_LINK = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
C_ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"
C_CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"
C_CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
C_FOR_USER = "https://purl.imsglobal.org/spec/lti/claim/for_user"
C_TOOL_PLATFORM = "https://purl.imsglobal.org/spec/lti/claim/tool_platform"
C_LAUNCH_PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
C_DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
C_AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
C_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUBMISSION_REVIEW_REQUEST = "LtiSubmissionReviewRequest"
MESSAGE_TYPES = frozenset({RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST, SUBMISSION_REVIEW_REQUEST})
LTI_VERSION = "1.3.0"
