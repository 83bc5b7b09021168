#!/usr/bin/env python3
"""Load test: a class of students launches the tool from the development LMS and answers the five seed questions.

Everything runs on 127.0.0.1 and stops by itself:

- the tool: gunicorn with deploy/gunicorn.conf.py (WEB_CONCURRENCY workers) on PostgreSQL + Redis;
- the development LMS: a second gunicorn, so the platform's own work is not counted as the tool's CPU;
- a Celery worker on the `default` queue, which delivers the grades to the development LMS gradebook.

The script registers the tool by Dynamic Registration (through tests/lti_support.py, the harness the test suite
uses). Then it has `--students` students (default 300) launch within `--ramp-s` seconds (default 60). Each student
does the whole browser flow: OIDC login -> platform auth -> id_token POST -> player. Then the student starts the
attempt and, for each multiple-choice question, opens it and answers it.

Reported:

- the error count, with samples;
- p50/p95/max latency per step (launch, start, show question, answer);
- throughput;
- CPU seconds the tool's web processes spent per launch, per question shown and per answer, measured in a
  sequential calibration phase after the run. This is the basis of docs/sizing.md.

Exits 0 only with zero errors. Bounded in count (--students) and time (--max-duration-s).

    .venv/bin/python scripts/loadtest.py                 # 300 students in 60 s
    .venv/bin/python scripts/loadtest.py --students 30 --ramp-s 10 --json

It drops and re-creates the database named in --database-url and flushes the two Redis databases: give it its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("launch", "start", "show question", "answer")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- Processes we start (and stop, by their own process group) -----------------------------------------------------


class Service:
    """A server process started by this script, in its own session so stopping it stops its children too."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.log.close()

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _cpu_ticks(pid: int) -> int:
    """utime+stime of a process plus what it reaped from dead children (cutime+cstime), in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in fields[11:15])


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def server_cpu_s(service: Service) -> float:
    """CPU seconds used so far by a gunicorn master and its workers (live and reaped)."""
    pid = service.proc.pid
    return (_cpu_ticks(pid) + sum(_cpu_ticks(k) for k in _children(pid))) / CLK_TCK


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, service: Service, timeout_s: float) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited:\n{service.tail()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{service.name} did not answer {url} within {timeout_s:.0f} s:\n{service.tail()}")


def _recreate_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise SystemExit(f"refusing odd database name {name!r}")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


# --- Measurements --------------------------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    errors: list[str] = field(default_factory=list)
    launch_started: list[float] = field(default_factory=list)
    launch_done: list[float] = field(default_factory=list)
    correct: int = 0
    finished_students: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, step: str, seconds: float) -> None:
        with self.lock:
            self.latencies[step].append(seconds)

    def error(self, student: str, step: str, message: str) -> None:
        with self.lock:
            self.errors.append(f"{student} [{step}]: {message}")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_s": _round(_pct(values, 0.50)),
        "p95_s": _round(_pct(values, 0.95)),
        "max_s": _round(max(values) if values else None),
        "mean_s": _round(statistics.fmean(values) if values else None),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return round(value, digits) if value is not None else None


# --- One student ---------------------------------------------------------------------------------------------------


class Flow:
    """A student's browser: launch, start, open and answer each multiple-choice question."""

    def __init__(self, lms: Any, tool_url: str, answer_texts: dict[str, str], timeout_s: float) -> None:
        self.lms = lms
        self.tool_url = tool_url
        # {slug: the correct option's text}: each attempt shows the options in its own order under opaque values,
        # so a student finds the answer by reading it, as a person would.
        self.answer_texts = answer_texts
        self.mc_slugs = list(answer_texts)
        self.timeout_s = timeout_s

    def _form(self, response: Any, action_suffix: str) -> Any:
        from tests.lti_support import parse_forms

        forms = [f for f in parse_forms(response.text, response.url) if f.action.endswith(action_suffix)]
        if not forms:
            raise StepFailed(f"no form posting to …{action_suffix} on {response.url} (HTTP {response.status_code})")
        return forms[0]

    @staticmethod
    def _ok(response: Any, what: str) -> None:
        if response.status_code != 200:
            raise StepFailed(f"{what}: HTTP {response.status_code} at {response.url}: {response.text[:300]!r}")

    def launch(self, user: str) -> Any:
        result = self.lms.launch(user=user, course="course1", resource_link="link1")
        self._ok(result.response, "launch")
        if "/p/" not in result.response.url:
            raise StepFailed(f"launch ended at {result.response.url}, not the player")
        return result

    def start(self, session: Any, player: Any) -> Any:
        form = self._form(player, "/start/")
        response = session.post(form.action, data=form.fields, timeout=self.timeout_s)
        self._ok(response, "start")
        return response

    def show(self, session: Any, base: str, slug: str) -> Any:
        """Open a question until its options are on the page (GET, and the Start form of a per-question timer)."""
        response = session.get(f"{base}q/{slug}/", timeout=self.timeout_s)
        self._ok(response, f"show {slug}")
        if 'name="choice"' not in response.text:
            form = self._form(response, f"/q/{slug}/open/")
            response = session.post(form.action, data=form.fields, timeout=self.timeout_s)
            self._ok(response, f"open {slug}")
        if 'name="choice"' not in response.text:
            raise StepFailed(f"question {slug} shows no options")
        return response

    def answer(self, session: Any, page: Any, slug: str) -> bool:
        from tests.lti_support import choice_options

        form = self._form(page, f"/q/{slug}/answer/")
        shown = choice_options(page.text).get(self.answer_texts[slug])
        if shown is None:
            raise StepFailed(f"question {slug} does not show its correct option")
        response = session.post(form.action, data={**form.fields, "choice": shown[1]}, timeout=self.timeout_s)
        self._ok(response, f"answer {slug}")
        return bool(re.search(r"\bcorrect\b", response.text, re.IGNORECASE)) and not re.search(
            r"not correct|incorrect", response.text, re.IGNORECASE
        )


class StepFailed(Exception):
    pass


def run_student(flow: Flow, user: str, start_at: float, results: Results, deadline: float, think_s: float) -> None:
    """One student's whole visit; every failure is recorded as an error (never raised)."""
    from django.db import connections

    step = "launch"
    try:
        delay = start_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() > deadline:
            results.error(user, step, "not started before the time limit")
            return
        with results.lock:
            results.launch_started.append(time.monotonic())
        t = time.monotonic()
        launched = flow.launch(user)
        results.record("launch", time.monotonic() - t)
        with results.lock:
            results.launch_done.append(time.monotonic())
        session, player = launched.session, launched.response
        base = player.url.split("/p/")[0] + "/p/" + player.url.split("/p/")[1].split("/")[0] + "/"

        step = "start"
        t = time.monotonic()
        flow.start(session, player)
        results.record("start", time.monotonic() - t)

        for slug in flow.mc_slugs:
            if time.monotonic() > deadline:
                raise StepFailed("time limit reached")
            time.sleep(think_s)
            step = "show question"
            t = time.monotonic()
            page = flow.show(session, base, slug)
            results.record("show question", time.monotonic() - t)
            step = "answer"
            time.sleep(think_s)
            t = time.monotonic()
            correct = flow.answer(session, page, slug)
            results.record("answer", time.monotonic() - t)
            if correct:
                with results.lock:
                    results.correct += 1
        with results.lock:
            results.finished_students += 1
    except StepFailed as exc:
        results.error(user, step, str(exc))
    except Exception as exc:  # noqa: BLE001 - a load test counts every failure, it never stops on one
        results.error(user, step, f"{type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def calibrate(flow: Flow, tool: Service, n: int) -> dict[str, Any]:
    """Tool CPU per step: `n` students one after another, the web processes' CPU read around each step."""
    cpu = {s: 0.0 for s in STEPS}
    counts = {s: 0 for s in STEPS}
    for i in range(n):
        user = f"calib{i:03d}"
        c0 = server_cpu_s(tool)
        launched = flow.launch(user)
        c1 = server_cpu_s(tool)
        cpu["launch"] += c1 - c0
        counts["launch"] += 1
        session, player = launched.session, launched.response
        base = player.url.split("/p/")[0] + "/p/" + player.url.split("/p/")[1].split("/")[0] + "/"
        flow.start(session, player)
        cpu["start"] += server_cpu_s(tool) - c1
        counts["start"] += 1
        for slug in flow.mc_slugs:
            c0 = server_cpu_s(tool)
            page = flow.show(session, base, slug)
            c1 = server_cpu_s(tool)
            flow.answer(session, page, slug)
            c2 = server_cpu_s(tool)
            cpu["show question"] += c1 - c0
            cpu["answer"] += c2 - c1
            counts["show question"] += 1
            counts["answer"] += 1
    per_op = {s: cpu[s] / counts[s] for s in STEPS if counts[s]}
    return {
        "students": n,
        "cpu_s_per_op": {s: _round(v, 4) for s, v in per_op.items()},
        "ops_per_core_s": {s: _round(1 / v, 1) if v > 0 else None for s, v in per_op.items()},
    }


# --- Main ----------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--ramp-s", type=float, default=60.0, help="all launches start within this many seconds")
    parser.add_argument(
        "--threads", type=int, default=0, help="concurrent simulated browsers at most (0: one per student)"
    )
    parser.add_argument("--think-s", type=float, default=0.0, help="pause before each show and each answer")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers of the tool (WEB_CONCURRENCY)")
    parser.add_argument("--calibration-students", type=int, default=20)
    parser.add_argument("--max-duration-s", type=float, default=600.0, help="hard limit of the measured run")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="per HTTP request (a browser waits as long)")
    parser.add_argument("--no-worker", action="store_true", help="do not start the default-queue Celery worker")
    parser.add_argument("--gunicorn-config", default="deploy/gunicorn.conf.py", help="the tool server's config")
    parser.add_argument(
        "--database-url", default=os.environ.get("LOADTEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loadtest")
    )
    parser.add_argument("--redis-url", default=os.environ.get("LOADTEST_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--broker-url", default=os.environ.get("LOADTEST_BROKER_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    args = parser.parse_args()
    args.threads = args.threads or args.students
    if not 1 <= args.students <= 2000 or args.ramp_s <= 0 or not 1 <= args.threads <= 2000:
        parser.error("--students 1..2000, --ramp-s > 0, --threads 1..2000")

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "development",  # the development LMS is needed; production-like otherwise:
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_BROKER_URL": args.broker_url,
        "LOG_LEVEL": "WARNING",
        # Every simulated student logs in from 127.0.0.1: one address, far above a real client's login rate.
        "LTI_RATE_LIMIT_LOGIN": f"{10 * args.students}/60",
        "WEB_CONCURRENCY": str(args.web_workers),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_ENV", "DJANGO_DEBUG", "DATABASE_URL",
                                           "REDIS_URL", "CELERY_BROKER_URL", "LOG_LEVEL")})
    sys.path.insert(0, str(ROOT))

    log_dir = Path(tempfile.mkdtemp(prefix="loadtest-"))
    services: list[Service] = []
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    try:
        log(f"preparing database {urlsplit(args.database_url).path.lstrip('/')} and Redis ({log_dir})")
        _recreate_database(args.database_url)
        _flush_redis(args.redis_url)
        _flush_redis(args.broker_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)

        tool_port, lms_port = _free_port(), _free_port()
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"]
        tool_gunicorn = [sys.executable, "-m", "gunicorn", "-c", args.gunicorn_config, "config.wsgi"]
        tool = Service("tool", [*tool_gunicorn, "-b", f"127.0.0.1:{tool_port}"], env, log_dir)
        services.append(tool)
        lms_env = {**env, "WEB_CONCURRENCY": "2"}
        lms_server = Service(
            "devlms", [*gunicorn, "-b", f"127.0.0.1:{lms_port}"], lms_env, log_dir
        )
        services.append(lms_server)
        if not args.no_worker:
            services.append(Service(
                "worker",
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default", "-c", "1",
                 "--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"loadtest-{tool_port}@%h"],
                env, log_dir,
            ))
        tool_url, lms_url = f"http://127.0.0.1:{tool_port}", f"http://127.0.0.1:{lms_port}"
        _wait_http(tool_url + "/readyz", tool, 120)
        _wait_http(lms_url + "/healthz", lms_server, 120)

        import django

        django.setup()
        from quizzes import content
        from tests.lti_support import DevLms

        # The platform lives on its own server; the tool is reached at its own address.
        lms = _bounded(DevLms)(lms_url)
        lms.base_url = tool_url
        registered = lms.register_tool(style="canvas")
        log(f"registered the tool with the development LMS: client_id={registered['client_id']}")
        answer_texts = {
            c["slug"]: next(o["text"] for o in c["options"] if o["key"] == c["answer"])
            for c in content.current_set().challenges
            if c.get("kind") == "choice"
        }
        answer_texts = dict(list(answer_texts.items())[:5])
        if len(answer_texts) != 5:
            raise RuntimeError(f"expected five multiple-choice seed questions, found {list(answer_texts)}")
        flow = Flow(lms, tool_url, answer_texts, args.timeout_s)
        flow.launch("warmup-student")  # first-use work (keys, platform JWKS, placement) out of the measurement

        results = Results()
        load_before = os.getloadavg()[0]
        log(f"{args.students} students launching within {args.ramp_s:g} s against {args.web_workers} web workers")
        cpu0 = server_cpu_s(tool)
        t0 = time.monotonic()
        deadline = t0 + args.max_duration_s
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for i in range(args.students):
                start_at = t0 + i * args.ramp_s / args.students
                pool.submit(run_student, flow, f"student{i + 1:04d}", start_at, results, deadline, args.think_s)
        elapsed = time.monotonic() - t0
        run_cpu = server_cpu_s(tool) - cpu0

        log(f"calibrating CPU per step with {args.calibration_students} sequential students")
        calibration = calibrate(flow, tool, args.calibration_students) if args.calibration_students else {}

        delivered = _gradebook_summary(wait_s=60 if not args.no_worker else 0)
        last_launch = max(results.launch_started) - t0 if results.launch_started else None
        last_launch_done = max(results.launch_done) - t0 if results.launch_done else None
        requests_total = sum(len(v) for v in results.latencies.values())
        report = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": _machine(),
            "students": args.students,
            "ramp_s": args.ramp_s,
            "web_workers": args.web_workers,
            "threads": args.threads,
            "think_s": args.think_s,
            "errors": len(results.errors),
            "error_samples": results.errors[:10],
            "finished_students": results.finished_students,
            "correct_answers": results.correct,
            "elapsed_s": _round(elapsed, 1),
            "last_launch_started_s": _round(last_launch, 1),
            "last_launch_done_s": _round(last_launch_done, 1),
            "steps": {s: _summary(v) for s, v in results.latencies.items()},
            "throughput": {
                "launches_per_s": _round(len(results.latencies["launch"]) / elapsed, 2),
                "answers_per_s": _round(len(results.latencies["answer"]) / elapsed, 2),
                "steps_per_s": _round(requests_total / elapsed, 2),
            },
            "tool_cpu_s_during_run": _round(run_cpu, 1),
            # Cores the tool's web processes got on average, and the machine's load when the run began (other
            # work on the machine slows the run down; the calibration's CPU seconds per step are not affected).
            "tool_cores_used": _round(run_cpu / elapsed, 2),
            "load_average_before": _round(load_before, 2),
            "calibration": calibration,
            "gradebook": delivered,
        }
        _print_report(report, log)
        if args.json:
            print(json.dumps(report))
        return 0 if not results.errors else 1
    except Exception:
        traceback.print_exc()
        for service in services:
            print(f"--- {service.name} log tail ---\n{service.tail()}", file=sys.stderr)
        return 2
    finally:
        for service in reversed(services):
            service.stop()


def _bounded(devlms_class: type) -> type:
    """The harness's DevLms with its in-process platform step (database work in this process) limited to a few
    threads at a time, each closing its connection: hundreds of browser threads must not open hundreds of
    PostgreSQL connections."""
    from django.db import connection

    slots = threading.BoundedSemaphore(8)

    class BoundedDevLms(devlms_class):
        def login_initiation(self, *args: Any, **kwargs: Any) -> Any:
            with slots:
                try:
                    return super().login_initiation(*args, **kwargs)
                finally:
                    connection.close()

    return BoundedDevLms


def _gradebook_summary(wait_s: float) -> dict[str, Any]:
    """Score deliveries to the development LMS: how many waited, were delivered, refused (after up to wait_s)."""
    from django.db import connections

    from lti_tool.gradebook.models import ScoreUpdate

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and ScoreUpdate.objects.filter(state=ScoreUpdate.State.WAITING).exists():
        time.sleep(1)
    counts: dict[str, int] = {}
    for state in ScoreUpdate.objects.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    connections.close_all()
    return counts


def _machine() -> str:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores {model} ({system})"


def _print_report(report: dict[str, Any], log: Any) -> None:
    log("")
    log(f"date: {report['date']}   machine: {report['machine']}")
    log(f"students: {report['students']} (launches within {report['ramp_s']:g} s; last launch began at "
        f"{report['last_launch_started_s']} s, all launched by {report['last_launch_done_s']} s)   "
        f"web workers: {report['web_workers']}   "
        f"elapsed: {report['elapsed_s']} s")
    log(f"errors: {report['errors']}   students who finished: {report['finished_students']}   "
        f"correct answers: {report['correct_answers']}")
    for sample in report["error_samples"]:
        log(f"  {sample}")
    log(f"{'step':<15}{'count':>7}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for step, s in report["steps"].items():
        def fmt(v: float | None) -> str:
            return f"{v:>9.3f}" if v is not None else f"{'-':>9}"

        log(f"{step:<15}{s['count']:>7}{fmt(s['p50_s'])}{fmt(s['p95_s'])}{fmt(s['max_s'])}")
    t = report["throughput"]
    log(f"throughput: {t['launches_per_s']} launches/s, {t['answers_per_s']} answers/s, {t['steps_per_s']} steps/s")
    log(f"tool web processes used {report['tool_cores_used']} cores on average "
        f"(machine load average before the run: {report['load_average_before']})")
    cal = report.get("calibration") or {}
    if cal:
        log(f"tool CPU per step (sequential calibration, {cal['students']} students): {cal['cpu_s_per_op']}")
        log(f"  = per web core per second: {cal['ops_per_core_s']}")
    log(f"gradebook score updates by state: {report['gradebook']}")


if __name__ == "__main__":
    sys.exit(main())
