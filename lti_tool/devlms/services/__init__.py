"""What the development LMS does, as plain functions, one module per part of the platform: `base` (constants,
`Platform`, `PlatformError`), `seed`, `dynreg` (Dynamic Registration), `launches`, `deep_linking` (the return),
`tokens` (the token endpoint), `ags`, `nrps`, `faults`.

Every function that answers the tool raises `PlatformError(status, message)` for a refusal; views turn it into the
HTTP answer a real LMS would give. URLs are built from a `Platform` (the request's origin), because the issuer is
"<base URL>/devlms" wherever the server runs. Callers use the names gathered here (`services.start_registration`).
"""

from __future__ import annotations

from lti_tool.devlms.services.ags import (  # noqa: F401
    create_line_item,
    get_line_item,
    grade_by_hand,
    list_line_items,
    list_results,
    post_score,
    update_line_item,
)
from lti_tool.devlms.services.base import (  # noqa: F401
    COURSE_NAV_LINK,
    ROLE_INSTRUCTOR,
    ROLE_LEARNER,
    ROLE_TEACHER_INST,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_NRPS,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
    SUPPORTED_SCOPES,
    Platform,
    PlatformError,
    course_style,
)
from lti_tool.devlms.services.deep_linking import (  # noqa: F401
    accept_deep_link_response,
)
from lti_tool.devlms.services.dynreg import (  # noqa: F401
    check_registration_token,
    install_tool,
    openid_configuration,
    register_client,
    start_registration,
)
from lti_tool.devlms.services.faults import (  # noqa: F401
    clear_faults,
    set_fault,
    take_fault,
)
from lti_tool.devlms.services.launches import (  # noqa: F401
    LaunchRequest,
    authorize,
    launch_claims,
    login_initiation,
)
from lti_tool.devlms.services.nrps import (  # noqa: F401
    memberships,
)
from lti_tool.devlms.services.seed import (  # noqa: F401
    add_resource_link,
    current_tool,
    ensure_enrollment,
    ensure_person,
    ensure_seed,
    get_course,
)
from lti_tool.devlms.services.tokens import (  # noqa: F401
    authenticate_service,
    expire_access_tokens,
    issue_access_token,
)
