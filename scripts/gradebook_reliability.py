#!/usr/bin/env python
"""Gradebook reliability: 1,000 scores recorded while the LMS is down for 10+ minutes; how many reach it?

What is real: PostgreSQL (a scratch database made for the run and dropped after it), the outbox and delivery code of
lti_tool.gradebook, the development LMS served by gunicorn on 127.0.0.1, and every HTTP call between them (tokens
signed with the tool's key, AGS scores with Moodle or Canvas semantics). The outage is real too: the LMS process is
stopped, so every call is refused at the socket.

What is simulated: time. The gradebook reads time only through config.clock; this script moves that
clock in 15-second ticks (the beat sweeper's period) and, at each tick, delivers the due rows with a few threads
(standing in for Celery workers: the task body is the same `deliver_score_update`). Backoff, retry budget and
timestamps therefore follow the production schedule (settings GRADEBOOK_*) while the run takes a minute or two.

    .venv/bin/python scripts/gradebook_reliability.py [--scores 1000] [--outage-minutes 12] [--style moodle]

DATABASE_URL must point at a PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres); the scratch
database is created next to the one it names. Prints a summary, then one JSON line last. Exit status 0 only when
delivered == scores and lost == 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TICK_S = 15.0  # the beat sweeper's period (settings.CELERY_BEAT_SCHEDULE["deliver-due-scores"])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scores", type=int, default=1000, help="students, one score each (default 1000)")
    parser.add_argument("--outage-minutes", type=float, default=12.0, help="simulated LMS outage (default 12)")
    parser.add_argument("--style", choices=["moodle", "canvas"], default="moodle", help="LMS semantics")
    parser.add_argument("--workers", type=int, default=4, help="delivery threads (default 4)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not 1 <= args.scores <= 20_000:
        parser.error("--scores must be 1..20000")
    if not 10 <= args.outage_minutes <= 24 * 60:
        parser.error("--outage-minutes must be at least 10 (and at most a day)")
    return args


def scratch_database(base_url: str) -> tuple[str, str]:
    """(maintenance URL, scratch URL) for a fresh database beside the one DATABASE_URL names."""
    parts = urlsplit(base_url)
    if not parts.scheme.startswith("postgres"):
        sys.exit("DATABASE_URL must be a PostgreSQL URL")
    name = f"gradebook_reliability_{os.getpid()}_{secrets.token_hex(3)}"
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))
    return maintenance, urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def admin_sql(maintenance_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(maintenance_url.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(sql)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LmsServer:
    """The tool + development LMS (one Django project) under gunicorn on 127.0.0.1:port; start/stop = up/down."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.port = port
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        gunicorn = Path(sys.executable).parent / "gunicorn"
        command = [str(gunicorn), "config.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "1", "--threads", "8"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the LMS server exited; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + "/devlms/.well-known/openid-configuration", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        sys.exit("the LMS server did not come up within 60 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class FakeClock:
    def __init__(self, start) -> None:
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def main() -> int:
    args = parse_args()
    # A terminated run still stops its server and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    rng = random.Random(args.seed)
    maintenance_url, scratch_url = scratch_database(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    )
    scratch_name = urlsplit(scratch_url).path.lstrip("/")
    workdir = Path(tempfile.mkdtemp(prefix="gradebook-reliability-"))
    env = {
        **os.environ,
        "DATABASE_URL": scratch_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_ENV": "development",
        "DEV_LMS_ENABLED": "1",
        "REDIS_URL": "",  # the shared cache is a file cache private to this run
        "FILE_CACHE_DIR": str(workdir / "cache"),
        "CELERY_BROKER_URL": "memory://",  # nothing is queued: this script delivers on its own clock
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    admin_sql(maintenance_url, f'CREATE DATABASE "{scratch_name}"')
    # A throwaway database: no need to wait for the disk at every commit (the outbox does ~2 commits an attempt).
    admin_sql(maintenance_url, f'ALTER DATABASE "{scratch_name}" SET synchronous_commit = off')
    server = LmsServer(free_port(), env, workdir / "server.log")
    status = 2
    try:
        status = run(args, rng, server, started)
        return status
    finally:
        server.stop()
        from django.db import connections

        connections.close_all()
        admin_sql(maintenance_url, f'DROP DATABASE IF EXISTS "{scratch_name}" WITH (FORCE)')
        if status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            progress(f"server log and cache kept in {workdir}")


def run(args: argparse.Namespace, rng: random.Random, server: LmsServer, started: float) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)
    progress("database migrated")

    from config import clock
    from lti_tool.devlms import jose
    from lti_tool.devlms.models import Course, Enrollment, Person, ScoreEvent
    from lti_tool.devlms.models import Score as LmsScore
    from lti_tool.gradebook import services
    from lti_tool.gradebook.models import ScoreUpdate
    from lti_tool.gradebook.services import outbox
    from lti_tool.models import LtiUser, ResourceLink
    from tests.lti_support import DevLms

    # --- The course: the tool registered by Dynamic Registration and launched once; N students enrolled. --------
    server.start()
    jose._jwks_cache.clear()
    lms = DevLms(server.url)
    lms.register_tool(style=args.style)
    launch = lms.launch(user="student1")
    if launch.response.status_code != 200:
        print(f"launch failed: HTTP {launch.response.status_code}", file=sys.stderr)
        return 2
    link = ResourceLink.objects.get()
    registration = link.context.deployment.registration
    course = Course.objects.get(slug="course1")
    people = Person.objects.bulk_create(
        [
            Person(
                username=f"rel{i:05d}",
                sub=secrets.token_hex(12),
                given_name="Student",
                family_name=f"{i:05d}",
                email=f"rel{i:05d}@devlms.example.edu",
            )
            for i in range(args.scores)
        ]
    )
    Enrollment.objects.bulk_create([Enrollment(course=course, person=p) for p in people])
    # What a launch would have created on the tool side (launching 1,000 times would only slow the run down).
    users = LtiUser.objects.bulk_create([LtiUser(registration=registration, sub=p.sub, name=p.name) for p in people])
    column_max = link_column_max(lms)
    progress(f"tool registered and launched; {args.scores} students enrolled")

    # --- The outage: the LMS process stops; scores keep coming. ------------------------------------------------
    fake = FakeClock(clock.now())
    clock.now = fake  # the gradebook's only source of time
    outbox.enqueue = lambda *a, **k: None  # no broker: this script's ticks are the sweeper and the workers
    server.stop()
    outage_s = args.outage_minutes * 60
    expected: dict[str, float] = {}
    changed_later = set(rng.sample(range(args.scores), k=max(1, args.scores // 10)))

    def record(i: int, given: float) -> None:
        services.record_score(
            resource_link=link,
            lti_user=users[i],
            score_given=given,
            score_maximum=5.0,
            activity_progress="Completed",
            grading_progress="FullyGraded",
            comment=f"{given:g} of 5",
        )
        expected[users[i].sub] = given

    for start in range(0, args.scores, 200):
        with transaction.atomic():
            for i in range(start, min(start + 200, args.scores)):
                record(i, float(rng.randint(0, 5)))
    progress(f"{args.scores} scores recorded with the LMS down; {services.outbox_counts()}")
    pool = ThreadPoolExecutor(max_workers=args.workers) if args.workers > 1 else None
    stats = {"attempts_during_outage": 0, "attempts_after": 0, "ticks": 0}

    def tick(phase: str) -> int:
        fake.advance(TICK_S)
        stats["ticks"] += 1
        due = services.due_score_ids()
        outcomes = list(pool.map(deliver, due) if pool else map(deliver, due))
        stats[phase] += len(outcomes)
        return len(due)

    def deliver(pk: int) -> str:
        return services.deliver_score_update(pk)

    elapsed = 0.0
    changes = 0
    while elapsed < outage_s:
        if elapsed >= outage_s / 2 and changed_later:
            # Some students improve their answers mid-outage: the newer score must win.
            with transaction.atomic():
                for i in sorted(changed_later):
                    record(i, (expected[users[i].sub] + 1) % 6)
            changes = len(changed_later)
            changed_later = set()
        tick("attempts_during_outage")
        elapsed += TICK_S
    during = services.outbox_counts()

    # --- The LMS comes back: keep ticking until nothing waits (bounded by the retry budget). -------------------
    server.start()
    progress(f"LMS back after {outage_s / 60:g} simulated minutes: {services.outbox_counts()}")
    drain_ticks = 0
    # Bounded: 3 simulated hours (the backoff cap is 30 minutes) or 5 real minutes, whichever comes first.
    wall_deadline = time.monotonic() + 300
    while (
        ScoreUpdate.objects.filter(state=ScoreUpdate.State.WAITING).exists()
        and drain_ticks * TICK_S < 3 * 3600
        and time.monotonic() < wall_deadline
    ):
        tick("attempts_after")
        drain_ticks += 1
    if pool:
        pool.shutdown()

    # --- What the LMS gradebook shows. -----------------------------------------------------------------------------
    cells = {
        s.person.sub: s.score_given
        for s in LmsScore.objects.filter(line_item__resource_link__slug="link1", line_item__course=course)
        .select_related("person")
        .iterator()
    }
    delivered = sum(
        1
        for sub, given in expected.items()
        if cells.get(sub) is not None and abs(cells[sub] - given / 5.0 * column_max) < 1e-6
    )
    accepted = list(
        ScoreEvent.objects.filter(status_code=200, line_item__resource_link__slug="link1", line_item__course=course)
        .exclude(person__username="student1")
        .values_list("person__sub", "payload")
    )
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for sub, payload in accepted:
        key = (sub, str(payload.get("timestamp")))
        duplicates += key in seen
        seen.add(key)
    final = services.outbox_counts()
    summary = {
        "style": args.style,
        "scores": args.scores,
        "score_changes_during_outage": changes,
        "delivered": delivered,
        "lost": args.scores - delivered,
        "duplicates": duplicates,
        "outage_simulated_s": outage_s,
        "waiting_at_end_of_outage": during["waiting"],
        "delivered_during_outage": during["delivered"],
        "attempts_during_outage": stats["attempts_during_outage"],
        "attempts_after_recovery": stats["attempts_after"],
        "simulated_s_to_drain": drain_ticks * TICK_S,
        "lms_scores_accepted": len(accepted),
        "still_waiting": final["waiting"],
        "outbox": final,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(f"LMS ({args.style}-like) down {outage_s / 60:g} simulated minutes; {args.scores} scores posted meanwhile")
    print(f"  attempts refused during the outage: {stats['attempts_during_outage']}; delivered then: 0")
    print(f"  after recovery: {stats['attempts_after']} attempts, drained in {drain_ticks * TICK_S:g} simulated s")
    print(f"delivered/lost: {delivered}/{args.scores - delivered}   duplicates: {duplicates}")
    print(json.dumps(summary))
    return 0 if delivered == args.scores and duplicates == 0 else 1


_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def link_column_max(lms) -> float:
    items = [i for i in lms.line_items("course1") if i["resource_link"] == "link1"]
    return float(items[0]["score_maximum"])


if __name__ == "__main__":
    sys.exit(main())
