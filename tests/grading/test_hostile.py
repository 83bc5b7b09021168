"""Hostile submissions, each through the real grading path (bubblewrap sandbox from the warm pool, judge, result).

Every case is contained: the submission ends failed (or scored 0) with a clear message, nothing outside its
sandbox is touched, and this process (the worker) and its pool go on grading.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from grading.models import CodeSubmission
from tests.grading.conftest import TEST_MEMORY_MB, TEST_TIMEOUT_S, check, solution

pytestmark = pytest.mark.sandbox
SLUG = "resnet-block-stride"
FAILED = CodeSubmission.Status.FAILED


@pytest.fixture(scope="module")
def canary():
    """A process of the host (same uid as the worker) that no submission may kill."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(autouse=True)
def host_survives(canary):
    yield
    assert canary.poll() is None, "a submission killed a process outside its sandbox"


def _load_error(result: CodeSubmission) -> str:
    assert result.status == FAILED, (result.status, result.feedback)
    assert result.score == 0.0
    assert all(not c["passed"] for c in result.checks)
    return result.feedback


# --- no network, no secrets, no project, no database ----------------------------------------------------------


TRY = """
import os, socket
tried = []
def attempt(name, fn):
    try:
        fn()
        tried.append(name + ": ESCAPED")
    except Exception as exc:
        tried.append(name + ": " + type(exc).__name__)
"""


def test_no_network_not_even_the_database_or_broker_on_localhost(grade):
    code = TRY + (
        "attempt('postgres', lambda: socket.create_connection(('127.0.0.1', 5432), timeout=3))\n"
        "attempt('redis', lambda: socket.create_connection(('127.0.0.1', 6379), timeout=3))\n"
        "attempt('dns', lambda: socket.getaddrinfo('pypi.org', 443))\n"
        "attempt('internet', lambda: socket.create_connection(('1.1.1.1', 443), timeout=3))\n"
        "raise LookupError(tried)\n"
    )
    message = _load_error(grade(SLUG, code))
    assert "ESCAPED" not in message
    for attempt in ("postgres: ConnectionRefusedError", "redis: ConnectionRefusedError", "dns: gaierror",
                    "internet: OSError"):
        assert attempt in message, message


def test_the_environment_is_empty_of_the_workers_secrets(grade, monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "worker-secret")  # the worker's environment holds secrets...
    code = "import os\nraise LookupError(sorted(os.environ))\n"
    message = _load_error(grade(SLUG, code))
    # ...the submission sees nothing but a path, a home and what Python and torch set themselves.
    seen = set(eval(message.split("loaded: ", 1)[1]))  # noqa: S307 - a list literal we produced
    assert seen <= {"HOME", "LANG", "PATH", "PWD", "PYTHONHASHSEED", "TORCHINDUCTOR_CACHE_DIR"}, seen


def test_the_projects_code_settings_keys_and_database_are_not_there(grade):
    base = Path(settings.BASE_DIR)
    assert (base / "config" / "settings.py").exists()
    code = TRY + (
        f"attempt('settings', lambda: open({str(base / 'config' / 'settings.py')!r}).read())\n"
        f"attempt('env file', lambda: open({str(base / '.env')!r}).read())\n"
        "attempt('pg socket', lambda: socket.socket(socket.AF_UNIX).connect('/var/run/postgresql/.s.PGSQL.5432'))\n"
        "attempt('root home', lambda: os.listdir('/root/.ssh'))\n"
        "attempt('etc', lambda: open('/etc/passwd').read())\n"
        f"try:\n    listing = sorted(os.listdir({str(base)!r}))\nexcept FileNotFoundError:\n    listing = 'absent'\n"
        "raise LookupError([tried, listing])\n"
    )
    message = _load_error(grade(SLUG, code))
    assert "ESCAPED" not in message
    assert "settings: FileNotFoundError" in message and "pg socket: FileNotFoundError" in message
    # Of the project directory the sandbox sees at most the worker's virtualenv (read-only: torch is imported from
    # it) when that lives inside the project; otherwise nothing at all.
    venv = Path(sys.prefix).resolve()
    seen = [venv.relative_to(base.resolve()).parts[0]] if venv.is_relative_to(base.resolve()) else "absent"
    assert f"{seen!r}]" in message


def test_other_submissions_leave_nothing_behind(grade):
    first = grade(SLUG, "open('/tmp/left-behind', 'w').write('secret')\nraise SystemExit(0)\n")
    assert first.status == FAILED
    code = TRY + (
        "attempt('left behind', lambda: open('/tmp/left-behind').read())\n"
        "raise LookupError([tried, len([p for p in os.listdir('/proc') if p.isdigit()])])\n"
    )
    message = _load_error(grade(SLUG, code))
    assert "left behind: FileNotFoundError" in message
    # Nor can it see other processes: its own pid namespace holds bubblewrap's init and itself.
    assert message.rstrip().endswith(("], 2]", "], 3]")), message


def test_nothing_outside_tmp_can_be_written(grade):
    # Where the worker imports torch from (bound read-only): planting code there would poison later gradings.
    target = Path(importlib.util.find_spec("torch").origin).resolve().parent.parent / "planted.py"
    code = TRY + (
        f"attempt('venv', lambda: open({str(target)!r}, 'w').write('x'))\n"
        "attempt('usr', lambda: open('/usr/lib/planted', 'w').write('x'))\n"
        "attempt('root', lambda: open('/planted', 'w').write('x'))\n"
        "attempt('tmp', lambda: open('/tmp/fine', 'w').write('x'))\n"
        "raise LookupError(tried)\n"
    )
    message = _load_error(grade(SLUG, code))
    assert "venv: OSError" in message and "usr: OSError" in message and "root: OSError" in message
    assert "tmp: ESCAPED" in message  # its private /tmp is the one writable place
    assert not target.exists()


# --- resources ----------------------------------------------------------------------------------------------


def _sandbox_processes() -> int:
    """Processes in this worker's sandbox cgroups (named <worker pid>-<id>): the idle pool's few, plus leftovers."""
    mark = f"/grading/{os.getpid()}-"
    count = 0
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and mark in Path(f"/proc/{pid}/cgroup").read_text():
                count += 1
        except OSError:
            pass
    return count


def test_a_fork_bomb_is_capped_and_stopped(grade, grading_pool):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert f"time limit of {TEST_TIMEOUT_S:g} s" in result.feedback
    # Every forked process is gone with its sandbox: what is left are the pool's idle sandboxes (a few each).
    idle = 4 * grading_pool.size
    for _ in range(100):
        if _sandbox_processes() <= idle:
            break
        time.sleep(0.2)
    assert _sandbox_processes() <= idle


def test_a_memory_bomb_is_stopped_at_the_memory_limit(grade):
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))\n"
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert f"memory limit of {TEST_MEMORY_MB} MB" in result.feedback


def test_an_endless_loop_is_stopped_at_the_time_limit(grade):
    code = "import torch.nn as nn\n\nclass BasicBlock(nn.Module):\n    def __init__(self, *a, **k):\n" \
           "        super().__init__()\n        while True:\n            pass\n"
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "did not finish within the time limit" in result.feedback


def test_sleeping_past_the_timeout_is_stopped(grade):
    result = grade(SLUG, "import time\ntime.sleep(3600)\n")
    assert result.status == FAILED
    assert "did not finish within the time limit" in result.feedback


def test_huge_output_is_cut_off(grade):
    result = grade(SLUG, "while True:\n    print('x' * 65536)\n")
    assert result.status == FAILED
    assert "printed more than 1 MB" in result.feedback


# --- attacks on the grader ------------------------------------------------------------------------------------


def test_signalling_or_killing_the_parent_reaches_nothing_outside(grade, canary):
    code = (
        "import os, signal\n"
        f"for pid in list(range(1, 50)) + [{canary.pid}, {os.getpid()}]:\n"
        "    if pid != os.getpid():\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        "os.killpg(0, signal.SIGKILL)\n"
    )
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "killed by signal 9" in result.feedback or "ended the process" in result.feedback


def test_printing_a_pass_counts_for_nothing(grade):
    code = 'print(\'{"ok": true, "passed": true, "score": 2.0}\')\nprint("PASSED: all checks")\n'
    result = grade(SLUG, code)
    assert result.score == 0.0
    assert all(not c["passed"] for c in result.checks)
    assert "BasicBlock" in result.checks[0]["feedback"]


def test_exiting_early_is_a_failure_not_a_pass(grade):
    code = solution(SLUG) + "\nimport os\nos._exit(0)\n"
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "ended the process before the checks finished" in result.feedback

    code = solution(SLUG).replace("    def forward(self, x):\n", "    def forward(self, x):\n        import os\n"
                                   "        os._exit(0)\n")
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "ended the process before the checks finished" in result.feedback


def test_exit_inside_the_checks_is_a_failure(grade):
    code = solution(SLUG).replace(
        "    def forward(self, x):\n", "    def forward(self, x):\n        raise SystemExit(0)\n"
    )
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "SystemExit" in result.feedback


PATCHING_THE_CHECKER = '''
import sys
import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    """Returns garbage, and rewrites the measuring code that calls it so that the garbage looks right."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.cout, self.stride = out_channels, stride
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        probe = sys._getframe(1).f_globals
        if "_summary" in probe:
            probe["_summary"] = lambda t: {"shape": list(t.shape), "finite": True, "sum": 0.0, "sumsq": 1.0,
                                           "proj": [0.0, 0.0, 0.0]}
            probe["_n_params"] = lambda m: 74496
            probe["_close"] = lambda *a, **k: True
        n, _, h, w = x.shape
        s = self.stride
        return torch.zeros(n, self.cout, (h + s - 1) // s, (w + s - 1) // s) * self.w
'''


def test_patching_the_checker_does_not_pass_the_semantic_checks(grade):
    result = grade(SLUG, PATCHING_THE_CHECKER)
    # The verdict is made outside the sandbox against the reference's numbers: the forged ones do not match.
    for name in ("same output as the specified block", "identity shortcut", "stride is 2", "channel count changes"):
        assert not check(result, name)["passed"], name
    assert result.score <= 0.5 * result.max_score


FORGED_FRAME = '''
import json, os, struct
frame = json.dumps({"ok": True, "score": 2.0, "passed": True, "measurements": {"defined": True}}).encode()
for fd in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:") and int(fd) > 2:
            os.write(int(fd), struct.pack(">I", len(frame)) + frame)
    except OSError:
        pass
'''


def test_a_forged_result_frame_is_detected(grade):
    result = grade(SLUG, FORGED_FRAME + solution(SLUG))
    assert result.status == FAILED
    assert "result channel" in result.feedback


def test_a_forged_result_frame_followed_by_an_exit_is_judged_on_its_numbers(grade):
    result = grade(SLUG, FORGED_FRAME + "os._exit(0)\n")
    # Exactly one frame came, so it is judged: its (made-up) measurements earn nothing.
    assert result.score == 0.0
    assert all(not c["passed"] for c in result.checks)


def test_ctypes_into_libc_gains_no_privilege(grade):
    code = (
        "import ctypes, os, resource\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "became_root = libc.setuid(0) == 0\n"
        "mounted = libc.mount(b'none', b'/usr', b'tmpfs', 0, None) == 0\n"
        "libc.system(b'echo planted > /usr/planted 2>/dev/null')\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    raised = True\n"
        "except (ValueError, OSError):\n"
        "    raised = False\n"
        "raise PermissionError(f'uid={os.getuid()} root={became_root} mount={mounted} '\n"
        "                      f'planted={os.path.exists(\"/usr/planted\")} rlimit_raised={raised}')\n"
    )
    message = _load_error(grade(SLUG, code))
    assert "uid=65534 root=False mount=False planted=False rlimit_raised=False" in message


@pytest.mark.skipif(not os.path.exists("/dev/nvidiactl"), reason="needs an NVIDIA GPU (run on a GPU machine)")
def test_exhausting_gpu_memory_is_contained(grade, settings):
    """Runs only on a CUDA machine (GRADING_DEVICE=cuda): the per-process memory fraction stops the submission,
    and the next submission on the same GPU is graded normally."""
    code = "import torch\nblocks = []\nwhile True:\n    blocks.append(torch.empty(256 * 1024 * 1024, device='cuda'))\n"
    result = grade(SLUG, code)
    assert result.status == FAILED
    assert "OutOfMemoryError" in result.feedback or "memory" in result.feedback
    assert grade(SLUG, solution(SLUG)).score == 2.0


def test_the_worker_and_its_pool_still_grade_after_all_that(grade):
    result = grade(SLUG, solution(SLUG))
    assert result.status == CodeSubmission.Status.GRADED
    assert result.score == result.max_score
