"""`python manage.py grading_bench [--json]`: what a grading costs here, three ways, measured in one run.

- inprocess_check_s: the check itself, warm, in this process (torch imported, kernels warm): the floor. Measured
  once before each sandboxed run, so both see the same machine load.
- naive_process_s: a fresh interpreter per submission (import torch, run the check), no sandbox: the naive path.
- p50_s / p95_s: submit-to-graded through the real path (stored submission, warm single-use bubblewrap sandbox
  from the pool, judge, result written with its signal), one submission at a time with the pool refilled between
  them (the steady state of a worker that is not saturated). The Celery broker hop is not included.
- throughput_per_s: a burst of submissions graded by this process's pool (refills included), `--concurrency` at a
  time (threads sharing the pool, as several worker processes share one GPU). Split in two: pool_throughput_per_s
  over the first pool-size gradings (sandboxes already warm) and refill_throughput_per_s over the rest (each waits
  for a fresh sandbox: the sustained rate).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError

from grading.models import CodeSubmission


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


class Command(BaseCommand):
    help = "Benchmark grading: in-process check vs fresh process vs warm sandbox pool (p50/p95, throughput)."

    def add_arguments(self, parser):
        parser.add_argument("--challenge", default="resnet-block-stride")
        parser.add_argument("--runs", type=int, default=10, help="sequential submissions for p50/p95")
        parser.add_argument("--burst", type=int, default=4, help="submissions in the throughput burst")
        parser.add_argument("--concurrency", type=int, default=1, help="submissions graded at once in the burst")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")

    def handle(self, *args, challenge: str, runs: int, burst: int, concurrency: int, json: bool, **options):
        from grading.challenges import ChallengeNotFound, get_challenge
        from grading.judging import load_suite
        from grading.pool import get_pool, reset_pool
        from grading.sandbox import SandboxConfig, SandboxUnavailable, check_available
        from grading.services import grade_submission_now, reference_measurements

        cfg = SandboxConfig.from_settings()
        try:
            check_available(cfg)
        except SandboxUnavailable as exc:
            raise CommandError(str(exc)) from exc
        try:
            spec = get_challenge(challenge)
        except ChallengeNotFound as exc:
            raise CommandError(str(exc)) from exc
        suite = load_suite(spec.checks_source)
        out: dict = {"challenge": spec.slug, "device": cfg.device, "sandbox": cfg.mode, "pool_size": 0,
                     "cpu_count": os.cpu_count(), "burst": burst, "concurrency": max(1, concurrency)}

        # 1. In-process, warm (and measured again between the sandboxed runs below, under the same load).
        check_once = self._inprocess(spec, suite, cfg, out)

        # 2. Naive: a fresh interpreter per submission.
        naive = statistics.median(self._naive(spec, suite, cfg) for _ in range(3))
        out["naive_process_s"] = naive
        self.stdout.write(f"fresh process per submission: {naive:.3f} s")

        # 3. The real path through warm sandboxes.
        pool = get_pool()
        out["pool_size"] = pool.size
        try:
            reference = reference_measurements(spec, suite, pool)
            ref_solution = spec.solution_source
            latencies, inproc_times = [], []
            for _ in range(runs):
                if not pool.wait_full(timeout=600):
                    raise CommandError("the sandbox pool did not fill")
                inproc_times.append(check_once())
                sub = CodeSubmission.objects.create(
                    challenge_slug=spec.slug, challenge_version=spec.version, code=ref_solution
                )
                t0 = time.perf_counter()
                result = grade_submission_now(sub.pk, pool=pool, worker="grading_bench")
                latencies.append(time.perf_counter() - t0)
                if result is None or result.status != CodeSubmission.Status.GRADED or result.score != spec.points:
                    detail = result.feedback if result is not None else "nothing was graded"
                    raise CommandError(f"the reference solution was not graded full marks: {detail}")
                sub.delete()
            inproc = statistics.median(inproc_times)
            out["inprocess_check_s"] = inproc
            self.stdout.write(f"in-process warm check: {inproc:.3f} s")
            out["p50_s"] = statistics.median(latencies)
            out["p95_s"] = _percentile(latencies, 0.95)
            self.stdout.write(f"sandboxed submit-to-graded: p50 {out['p50_s']:.3f} s, p95 {out['p95_s']:.3f} s")

            pool.wait_full(timeout=600)
            subs = [
                CodeSubmission.objects.create(challenge_slug=spec.slug, challenge_version=spec.version,
                                              code=ref_solution)
                for _ in range(burst)
            ]
            t0 = time.perf_counter()
            done = sorted(t - t0 for t in self._grade_all(subs, pool, out["concurrency"]))
            elapsed = time.perf_counter() - t0
            warm = min(pool.size, burst)
            out["pool_throughput_per_s"] = warm / done[warm - 1]
            out["refill_throughput_per_s"] = (
                (burst - warm) / (done[-1] - done[warm - 1]) if burst > warm and done[-1] > done[warm - 1] else None
            )
            graded = CodeSubmission.objects.filter(pk__in=[s.pk for s in subs], status=CodeSubmission.Status.GRADED,
                                                   score=spec.points).count()
            CodeSubmission.objects.filter(pk__in=[s.pk for s in subs]).delete()
            if graded != burst:
                raise CommandError(f"only {graded} of the burst's {burst} reference solutions got full marks")
            out["throughput_per_s"] = burst / elapsed
            self.stdout.write(f"burst of {burst}, {out['concurrency']} at a time: {elapsed:.2f} s = "
                              f"{out['throughput_per_s']:.2f} gradings/s (pool of {pool.size}, refills included)")
            refill = out["refill_throughput_per_s"]
            self.stdout.write(f"  from warm sandboxes: {out['pool_throughput_per_s']:.2f}/s; waiting for fresh ones: "
                              + (f"{refill:.2f}/s" if refill else "none in this burst"))
            del reference
        finally:
            reset_pool()
        out["p50_over_inprocess"] = out["p50_s"] / inproc if inproc else None
        out["p50_over_naive"] = out["p50_s"] / naive if naive else None
        out["target_p50_le_1_5x_inprocess"] = out["p50_over_inprocess"] is not None and out["p50_over_inprocess"] <= 1.5
        self.stdout.write(f"p50 / in-process = {out['p50_over_inprocess']:.2f}; p50 / fresh process = "
                          f"{out['p50_over_naive']:.2f}")
        if json:
            self.stdout.write(_json(out))

    def _grade_all(self, subs, pool, concurrency: int) -> list[float]:
        """Grade every submission, `concurrency` at a time; returns when each was graded (perf_counter)."""
        from django.db import connection

        from grading.services import grade_submission_now

        def one(sub) -> float:
            try:
                grade_submission_now(sub.pk, pool=pool, worker="grading_bench")
                return time.perf_counter()
            finally:
                if concurrency > 1:
                    connection.close()  # this thread's own connection

        if concurrency <= 1:
            return [one(sub) for sub in subs]
        with ThreadPoolExecutor(concurrency) as threads:
            return list(threads.map(one, subs))

    def _inprocess(self, spec, suite, cfg, out):
        """Warm the in-process check; returns a function timing one warm run (same threads, device and numerics as
        the sandboxes). Names the device in `out`."""
        import runpy

        import torch

        from grading.sandbox import RUNNER_PATH

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        out["device_name"] = torch.cuda.get_device_name(0) if cfg.device == "cuda" else _cpu_name()
        out["torch"] = torch.__version__
        runner = runpy.run_path(str(RUNNER_PATH), run_name="bench_runner")
        runner["_warm"](torch, cfg.device)
        reference: list = []

        def once() -> float:
            t0 = time.perf_counter()
            ns = {"__name__": "submission"}
            exec(compile(spec.solution_source, "submission.py", "exec"), ns)  # noqa: S102 - trusted reference
            pns = {"__name__": "probe"}
            exec(compile(suite.probe_source, "probe.py", "exec"), pns)  # noqa: S102 - trusted checks
            m = pns["probe"](ns, cfg.device)
            if cfg.device == "cuda":
                torch.cuda.synchronize()
            if not reference:
                reference.append(m)
            suite.judge(m, reference[0])
            return time.perf_counter() - t0

        for _ in range(3):  # the first runs warm this challenge's shapes
            once()
        return once

    def _naive(self, spec, suite, cfg) -> float:
        script = (
            "import sys, json, torch\n"
            f"torch.set_num_threads({cfg.threads or 0} or torch.get_num_threads())\n"
            "src = json.loads(sys.stdin.read())\n"
            "ns = {'__name__': 'submission'}; exec(src['code'], ns)\n"
            "pns = {}; exec(src['probe'], pns); pns['probe'](ns, src['device'])\n"
        )
        payload = json.dumps({"code": spec.solution_source, "probe": suite.probe_source, "device": cfg.device})
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", script], input=payload.encode(), check=True, capture_output=True)
        return time.perf_counter() - t0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "cpu"


def _json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))
