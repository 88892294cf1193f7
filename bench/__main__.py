"""`python -m bench` (`make bench`): the engine against raw Celery, in the same run.

    python -m bench                       every scenario, full size, 5 repetitions
    python -m bench --quick               fewer repetitions, smaller counts: a fast check
    python -m bench --scenario seq40      one scenario (repeatable)
    python -m bench --latency-via python  drive `latency` from Python even if the API is there
    python -m bench --profile             also sample the engine worker with py-spy

It uses DATABASE_URL and REDIS_URL (the embedded default when unset), migrates the database,
starts its own workers and stops them however the run ends. The table is printed and
written to bench/results.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = ["seq40", "fanout1000", "throughput", "api_throughput", "latency", "webhook"]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, smaller counts")
    parser.add_argument("--scenario", action="append", choices=names, metavar="NAME",
                        help=f"run only this scenario (repeatable): {', '.join(names)}")
    parser.add_argument("--repeat", type=int, default=None,
                        help="repetitions per side (default 5, --quick 3; at least 1)")
    parser.add_argument("--latency-via", choices=["auto", "http", "python"], default="auto",
                        help="drive `latency` through POST /api/executions/ (http), through "
                             "executions.engine (python), or http when the API is there")
    parser.add_argument("--profile", action="store_true",
                        help="sample the engine worker with py-spy during seq40 and throughput")
    parser.add_argument("--output", type=Path, default=HERE / "results.md",
                        help="where the Markdown results go (default bench/results.md)")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(143)  # so that the workers are stopped in the `finally` blocks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    from . import harness

    harness.setup_django()
    from . import profiling, web
    from .report import Outcome, machine, table, versions
    from .scenarios import all_scenarios

    wanted = all_scenarios()
    if args.scenario:
        wanted = [s for s in wanted if s.name in args.scenario]

    began = time.monotonic()
    outcomes: list[Outcome] = []
    with harness.redis_available():
        harness.migrate()
        harness.store_flows()
        harness.configure_raw_client()
        harness.purge_executions()
        ctx: dict[str, Any] = {}
        with harness.workers() as (engine_worker, _raw_worker), web.clients(
            args.latency_via, [s.name for s in wanted], ctx
        ):
            for scenario in wanted:
                note = ctx.get(f"{scenario.name}_note")
                if note:
                    scenario.notes.append(note)
                if ctx.get(f"{scenario.name}_skip"):
                    scenario.skipped = ctx[f"{scenario.name}_skip"]
                    print(f"[bench] {scenario.name}: skipped: {scenario.skipped}", flush=True)
                    outcomes.append(Outcome(scenario))
                    continue
                size = scenario.quick_size if args.quick else scenario.size
                outcome = Outcome(scenario, size=size)
                # One untimed round each to warm caches, connections and pool processes.
                warm = max(1, min(size, 50))
                scenario.engine(warm, ctx)
                scenario.raw(warm, ctx)
                profile = args.profile and scenario.name in ("seq40", "throughput")
                for rep in range(args.repeat):
                    if profile:
                        with profiling.sampling(engine_worker, scenario.name):
                            outcome.engine.append(scenario.engine(size, ctx))
                    else:
                        outcome.engine.append(scenario.engine(size, ctx))
                    outcome.raw.append(scenario.raw(size, ctx))
                    print(
                        f"[bench] {scenario.name} #{rep + 1}: engine {_brief(outcome.engine[-1])}"
                        f" | raw {_brief(outcome.raw[-1])}",
                        flush=True,
                    )
                    harness.purge_executions()
                if profile:
                    path = harness.LOG_DIR / f"profile-{scenario.name}.txt"
                    if path.exists():
                        summary = HERE / f"profile-{scenario.name}.md"
                        summary.write_text(
                            f"# py-spy profile of the engine worker: {scenario.name} "
                            f"(last repetition, size {size:,})\n\n" + profiling.summarize(path)
                        )
                        print(f"[bench] profile summary written to {summary}", flush=True)
                outcomes.append(outcome)
        harness.purge_executions()
        text = results_markdown(args, outcomes, machine(), versions(), time.monotonic() - began)
    print()
    print(table(outcomes))
    for outcome in outcomes:
        for note in outcome.scenario.notes:
            print(f"note ({outcome.scenario.name}): {note}")
        if outcome.scenario.skipped:
            print(f"skipped ({outcome.scenario.name}): {outcome.scenario.skipped}")
    args.output.write_text(text)
    print(f"\n[bench] written to {args.output}")
    return 0


def _brief(figures: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in figures.items())


def results_markdown(
    args: argparse.Namespace, outcomes: list[Any], machine: dict[str, str],
    versions: dict[str, str], elapsed: float,
) -> str:
    from django.conf import settings

    from . import harness, raw_tasks, web
    from .report import table

    lines = [
        "# Benchmark: the engine against raw Celery, in the same run",
        "",
        f"Written by `python -m bench{' --quick' if args.quick else ''}"
        f"{''.join(f' --scenario {s}' for s in args.scenario or [])}` on "
        f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')} "
        f"in {elapsed:.0f} s. Median, min and max of {args.repeat} repetitions per side; "
        "engine and raw alternate, so a noisy neighbour hurts both alike. "
        "The ratio is engine / raw of the medians (for executions/s higher is better, "
        "for times lower).",
        "",
        table(outcomes),
        "",
    ]
    missed = _missed(outcomes)
    if missed:
        lines += ["## Goals missed", "", *missed,
                  "", "What the profile blames: see bench/profile.md.", ""]
    lines += ["## Scenarios", ""]
    for outcome in outcomes:
        s = outcome.scenario
        lines.append(f"- **{s.name}**: {s.description}.")
        for note in s.notes:
            lines.append(f"  Note: {note}")
        if s.skipped:
            lines.append(f"  Skipped: {s.skipped}")
    lines += [
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        "## Versions",
        "",
        *(f"- {k}: {v}" for k, v in versions.items()),
        "",
        "## Flags",
        "",
        f"- both workers: `celery worker {' '.join(harness.WORKER_FLAGS)}`, each in its own "
        f"process group; engine `-A automation -Q {harness.ENGINE_QUEUE}`, raw "
        f"`-A bench.raw_tasks -Q {raw_tasks.QUEUE}` with the Redis result backend",
        f"- web (api_throughput, latency, webhook): the Procfile's line as shipped, "
        f"`{web.procfile_web()}`, WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY') or 'default'}, "
        f"WEB_THREADS={os.environ.get('WEB_THREADS') or 'default'} (automation/gunicorn.py)",
        f"- broker: the same Redis for both ({_redacted(settings.REDIS_URL)})",
        f"- database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
        f"(CONN_MAX_AGE={settings.DATABASES['default'].get('CONN_MAX_AGE')})",
        f"- engine: acks_late={settings.CELERY_TASK_ACKS_LATE}, prefetch multiplier="
        f"{settings.CELERY_WORKER_PREFETCH_MULTIPLIER}, serializer=json, no result backend; "
        f"safety poll {settings.AUTOMATION['SAFETY_POLL_SECONDS']} s, heartbeat "
        f"{settings.AUTOMATION['HEARTBEAT_SECONDS']} s",
        f"- raw: acks_late={raw_tasks.app.conf.task_acks_late}, prefetch multiplier="
        f"{raw_tasks.app.conf.worker_prefetch_multiplier}, serializer=json",
        "",
    ]
    return "\n".join(lines)


def _redacted(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"  # never a password


def _missed(outcomes: list[Any]) -> list[str]:
    import statistics

    found = []
    for outcome in outcomes:
        if outcome.scenario.skipped or not outcome.engine:
            continue
        for m in outcome.scenario.metrics:
            if m.goal is None:
                continue
            em = statistics.median(r[m.key] for r in outcome.engine)
            rm = statistics.median(r[m.key] for r in outcome.raw)
            ratio = em / rm
            if m.higher_is_better and ratio < m.goal:
                found.append(
                    f"- {outcome.scenario.name} {m.label}: {ratio:.2f}x of raw, goal "
                    f"{m.goal_text}: short by {(m.goal - ratio) / m.goal:.0%}"
                )
            elif not m.higher_is_better and ratio > m.goal:
                found.append(
                    f"- {outcome.scenario.name} {m.label}: {ratio:.2f}x raw, goal "
                    f"{m.goal_text}: over by {(ratio - m.goal) / m.goal:.0%}"
                )
    return found


if __name__ == "__main__":
    sys.exit(main())
