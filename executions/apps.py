from __future__ import annotations

import sys

from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Automation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import (
            celeryd_after_setup,
            worker_ready,
            worker_shutdown,
            worker_shutting_down,
        )

        import flow_api.port

        from . import presence, queues, shutdown
        from .port import EnginePort

        flow_api.port.install(EnginePort())
        # Inline children nest handler calls; deep chains of them need room.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

        def record_served_queues(sender: object, instance: object, **kwargs: object) -> None:
            queues.set_served_queues(set(instance.app.amqp.queues.consume_from))  # type: ignore[attr-defined]
            queues.set_worker_name(str(sender))

        def announce_worker(**kwargs: object) -> None:
            presence.start(queues.worker_name(), sorted(queues.served_queues()))

        def withdraw_worker(**kwargs: object) -> None:
            presence.stop(queues.worker_name())

        celeryd_after_setup.connect(record_served_queues, weak=False)
        worker_ready.connect(announce_worker, weak=False)
        worker_shutdown.connect(withdraw_worker, weak=False)
        worker_shutting_down.connect(shutdown.on_worker_shutting_down, weak=False)
        worker_ready.connect(shutdown.reconcile_after_start, weak=False)
