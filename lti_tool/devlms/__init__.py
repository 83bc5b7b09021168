"""The development LMS: a small but real LTI 1.3 platform for `make demo` and the test suite (never in production).

Mounted at /devlms/ when DEV_LMS_ENABLED; its issuer is "<base URL>/devlms". It knows the tool only through the URLs
the tool registered by Dynamic Registration and talks to it only over HTTP with signed JWTs (it imports nothing from
the tool). Endpoints (names in the `devlms` URL namespace):

- `.well-known/openid-configuration` (openid_configuration), `jwks/`, `auth/` (OIDC authorization, form_post),
  `token/` (client_credentials + private_key_jwt), `registration/` (Dynamic Registration), `deep-link-return/`;
- AGS `api/<course>/lineitems`, `.../lineitems/<id>/lineitem`, `.../lineitem/scores`, `.../lineitem/results`
  (Moodle-style courses add `?type_id=<tool>`); NRPS `services/CourseSection/<course>/bindings/<tool>/memberships`
  (paged with `Link: <...>; rel="next"`);
- pages: home (`?user=student1`), `launch/frame/`, `launch/start/`, `courses/<slug>/gradebook/`, `register/`,
  `tools/<pk>/install/`, `faults/`.

Where Canvas and Moodle differ (deployment ids at registration, score timestamps, refusals, Pending scores) the
platform follows the style the tool registered with, or a course's own `style`. `services.set_fault()` makes the
token/AGS/NRPS endpoints answer 503 ("down"), 502 ("5xx"), 429 with Retry-After ("429") or sleep first ("slow").
`manage.py devlms_register_tool --tool-url http://localhost:8000` registers and installs the tool (used by
`make demo`); tests drive it through `tests/lti_support.py` (fixture `dev_lms`).
"""
