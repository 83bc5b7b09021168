"""URLs of the challenge player, the instructor pages and the deep-linking form."""

from django.urls import path

from quizzes import staff_views, views

app_name = "quizzes"

P = "p/<int:resource_link_pk>/"
Q = P + "q/<slug:slug>/"
I = P + "instructor/"  # noqa: E741
A = I + "students/<int:lti_user_pk>/attempts/<int:attempt_pk>/"  # one student's attempt

urlpatterns = [
    path("launch/<int:resource_link_pk>/", views.launch, name="launch"),
    path("deep-link/<str:launch_id>/", views.deep_link, name="deep_link"),
    path("review/<int:resource_link_pk>/<int:lti_user_pk>/", views.student, name="review"),
    # Student player
    path(P, views.player, name="player"),
    path(P + "start/", views.start, name="start"),
    path(P + "finish/", views.finish, name="finish"),
    path(P + "summary/", views.summary, name="summary"),
    path(Q, views.question, name="question"),
    path(Q + "open/", views.open_question, name="open_question"),
    path(Q + "answer/", views.answer, name="answer"),
    path(Q + "hint/", views.hint, name="hint"),
    path(Q + "code/", views.code, name="code"),
    path(Q + "clock.json", views.clock, name="clock"),
    # Instructor
    path(I, views.dashboard, name="dashboard"),
    path(I + "settings/", views.placement_settings, name="settings"),
    path(I + "results.csv", views.export_csv, name="export_csv"),
    path(I + "students/<int:lti_user_pk>/", views.student, name="student"),
    path(I + "students/<int:lti_user_pk>/accommodation/", views.accommodation, name="accommodation"),
    path(I + "students/<int:lti_user_pk>/reopen-expired/", staff_views.reopen_expired, name="reopen_expired"),
    path(A + "reopen/", staff_views.reopen_attempt, name="reopen_attempt"),
    path(A + "extend/", staff_views.extend_attempt, name="extend_attempt"),
    path(A + "q/<slug:question>/override/", staff_views.override, name="override"),
    path(A + "q/<slug:question>/reopen/", staff_views.reopen_question, name="reopen_question"),
    path(I + "audit/", staff_views.audit_log, name="audit"),
    path(I + "audit.csv", staff_views.audit_csv, name="audit_csv"),
]
