"""URLs of the development LMS, mounted at /devlms/ (the issuer is "<base URL>/devlms")."""

from django.urls import path

from lti_tool.devlms import views

app_name = "devlms"
urlpatterns = [
    path("", views.home, name="home"),
    path(".well-known/openid-configuration", views.openid_configuration, name="openid_configuration"),
    path("jwks/", views.jwks, name="jwks"),
    path("auth/", views.auth, name="auth"),
    path("token/", views.token, name="token"),
    path("registration/", views.registration, name="registration"),
    path("deep-link-return/", views.deep_link_return, name="deep_link_return"),
    # AGS (line items, scores, results). No trailing slash, as in Canvas and Moodle.
    path("api/<int:course_pk>/lineitems", views.lineitems, name="lineitems"),
    path("api/<int:course_pk>/lineitems/<int:pk>/lineitem", views.lineitem, name="lineitem"),
    path("api/<int:course_pk>/lineitems/<int:pk>/lineitem/scores", views.scores, name="scores"),
    path("api/<int:course_pk>/lineitems/<int:pk>/lineitem/results", views.results, name="results"),
    # NRPS. The case-sensitive /CourseSection/ segment mimics Moodle: a client that lower-cases it gets 404.
    path(
        "services/CourseSection/<int:course_pk>/bindings/<int:tool_pk>/memberships",
        views.memberships,
        name="memberships",
    ),
    # Pages for a person.
    path("launch/start/", views.launch_start, name="launch_start"),
    path("launch/frame/", views.launch_frame, name="launch_frame"),
    path("courses/<slug:course_slug>/gradebook/", views.gradebook, name="gradebook"),
    path("register/", views.register, name="register"),
    path("tools/<int:tool_pk>/install/", views.install, name="install"),
    path("faults/", views.faults, name="faults"),
]
