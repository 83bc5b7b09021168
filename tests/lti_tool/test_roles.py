"""One role module for launches and rosters: only context (membership) roles count in a course."""

from __future__ import annotations

import pytest

from lti_tool.roles import course_roles, role_list

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTRUCTOR = LIS + "membership#Instructor"
LEARNER = LIS + "membership#Learner"
TA = LIS + "membership/Instructor#TeachingAssistant"
DESIGNER = LIS + "membership#ContentDeveloper"
OBSERVER = LIS + "membership#Mentor"
INST_INSTRUCTOR = LIS + "institution/person#Instructor"
INST_STUDENT = LIS + "institution/person#Student"
INST_ADMIN = LIS + "institution/person#Administrator"
SYS_USER = LIS + "system/person#User"
SYS_ADMIN = LIS + "system/person#Administrator"
SYS_SYSADMIN = LIS + "system/person#SysAdmin"
TEST_USER = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser"

# (roles, is_staff, is_learner, may_configure)
CASES = [
    # Issue 17: the three URIs the launch and the roster used to disagree on.
    ([LIS + "membership/Administrator#Developer"], True, False, True),
    ([LIS + "membership/Learner#NonCreditLearner"], False, True, False),
    ([INST_STUDENT], False, False, False),
    # Canvas (lib/lti/substitutions_helper.rb, LIS_V2_LTI_ADVANTAGE_ROLE_MAP; all_roles adds institution roles).
    ([LEARNER, INST_STUDENT, SYS_USER], False, True, False),  # a student
    ([LEARNER, INST_INSTRUCTOR, INST_STUDENT, SYS_USER], False, True, False),  # a student who teaches elsewhere
    ([LEARNER, INST_ADMIN, SYS_USER], False, True, False),  # an account admin enrolled as a student
    ([INSTRUCTOR, INST_INSTRUCTOR, SYS_USER], True, False, True),  # a teacher
    ([TA, INSTRUCTOR, INST_STUDENT, SYS_USER], True, False, True),  # a TA (Canvas sends both URIs)
    ([LIS + "membership/instructor#TeachingAssistant"], True, False, True),  # Canvas's older lower-case map
    ([DESIGNER, INST_INSTRUCTOR, SYS_USER], False, False, True),  # a designer
    ([OBSERVER, INST_INSTRUCTOR, SYS_USER], False, False, False),  # an observer who teaches elsewhere
    ([LEARNER, TEST_USER], False, True, False),  # the Test Student (Student View)
    ([INST_ADMIN, SYS_SYSADMIN, SYS_USER], False, False, False),  # an admin with no enrollment in the course
    # Moodle 4.5 (mod/lti/locallib.php): teacher, student, site admin; its NRPS uses the short forms.
    ([INSTRUCTOR], True, False, True),
    ([LEARNER], False, True, False),
    ([INSTRUCTOR, INST_ADMIN, SYS_ADMIN], True, False, True),
    ([LEARNER, INST_ADMIN, SYS_ADMIN], False, True, False),  # a site admin who switched role to student
    (["Instructor"], True, False, True),
    (["Learner"], False, True, False),
    (["TeachingAssistant"], True, False, True),
    # LTI 1.1 URNs: context roles count, institution and system ones do not.
    (["urn:lti:role:ims/lis/Instructor"], True, False, True),
    (["urn:lti:role:ims/lis/TeachingAssistant/Grader"], True, False, True),
    (["urn:lti:instrole:ims/lis/Administrator", "urn:lti:sysrole:ims/lis/Administrator"], False, False, False),
    # Nonsense never grants anything.
    ([], False, False, False),
    (["Student", "Faculty", LIS + "membership#", LIS + "membership/#Instructor", LIS + "membershipX#Instructor"],
     False, False, False),
    ([7, None, "", {"role": "Instructor"}], False, False, False),
    (["http://example.com/roles#Instructor", "https://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
     False, False, False),
]


@pytest.mark.parametrize(("roles", "staff", "learner", "configure"), CASES)
def test_course_roles(roles, staff, learner, configure):
    standing = course_roles(roles)
    assert (standing.is_staff, standing.is_learner, standing.may_configure) == (staff, learner, configure)


def test_role_lists_are_bounded():
    assert role_list("Instructor") == []
    assert role_list([INSTRUCTOR, 3, "x" * 256, LEARNER]) == [INSTRUCTOR, LEARNER]
    assert len(role_list([LEARNER] * 500)) == 50
    # Only the first 50 roles are read: a role buried after them grants nothing.
    assert not course_roles([SYS_USER] * 50 + [INSTRUCTOR]).is_staff
