"""The scheduler: runs the rules on their schedules, in exactly one process at a time.

APScheduler (3.x) runs the jobs, but it does not coordinate processes: two schedulers
sharing a database would both run every job. So a scheduler first wins leadership, the same
way the sequencer does (a PostgreSQL advisory lock, or a file lock beside a SQLite
database), runs jobs only while it leads, and stops them the moment it loses the lock;
another process started alongside waits and takes over when the leader dies.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from contextlib import closing

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlmodel import Session

from medtrace.config import Settings
from medtrace.ledger import leader_lock
from medtrace.policies import (
    cold_chain_limits,
    delivery_policy,
    planning_parameters,
    temperature_policy,
)
from medtrace.services.alert_topic import MqttPublisher, Publisher, publish_due
from medtrace.services.alerts import check_expiry
from medtrace.services.coldchain import check_cold_chain
from medtrace.services.reorder import store_reorder_plans
from medtrace.services.subscriptions import dispatch
from medtrace.services.webhooks import deliver_due

log = logging.getLogger(__name__)

_LEADERSHIP_CHECK_SECONDS = 1.0


def _jobs(
    engine: Engine, settings: Settings, publisher: Publisher
) -> dict[str, tuple[Callable[[], object], float]]:
    """Each job by name, with its interval in seconds."""

    def expiry() -> object:
        with Session(engine) as session:
            raised = check_expiry(
                session=session,
                today=dt.datetime.now(dt.UTC).date(),
                warn_days=settings.expiry.warn_days,
            )
        log.info("expiry rule raised %d alert(s)", len(raised))
        return raised

    def cold_chain() -> object:
        with Session(engine) as session:
            raised = check_cold_chain(
                session=session,
                now=dt.datetime.now(dt.UTC),
                default=temperature_policy(settings),
                limits=cold_chain_limits(settings),
            )
        log.info("cold-chain rules raised %d alert(s)", len(raised))
        return raised

    def reorder_plans() -> object:
        with Session(engine) as session:
            stored = store_reorder_plans(
                session=session,
                today=dt.datetime.now(dt.UTC).date(),
                parameters=planning_parameters(settings),
            )
        log.info("stored %d reorder plan(s)", stored)
        return stored

    def webhooks() -> object:
        published = publish_due(engine=engine, publisher=publisher)
        report = deliver_due(engine=engine, policy=delivery_policy(settings))
        return published, report

    def epcis_subscriptions() -> object:
        return dispatch(engine=engine, policy=delivery_policy(settings))

    return {
        "expiry": (expiry, settings.expiry.check_interval),
        "cold_chain": (cold_chain, settings.coldchain.check_interval),
        "reorder_plans": (reorder_plans, settings.reorder.plan_interval),
        "webhooks": (webhooks, settings.webhooks.interval),
        "epcis_subscriptions": (epcis_subscriptions, settings.webhooks.stream_interval),
    }


def run_scheduler(engine: Engine, settings: Settings, stop: threading.Event) -> None:
    """Lead and run the jobs until ``stop`` is set; follow while another process leads."""
    lock = leader_lock(engine, name="scheduler")
    publisher = MqttPublisher(
        settings.mqtt.host, settings.mqtt.port, client_id=f"medtrace-scheduler-{os.getpid()}"
    )
    with closing(publisher):
        jobs = _jobs(engine, settings, publisher)
        while not stop.is_set():
            if not lock.try_acquire():
                stop.wait(_LEADERSHIP_CHECK_SECONDS)
                continue
            log.warning("scheduler: leading; running %s", ", ".join(jobs))
            scheduler = BackgroundScheduler(timezone=dt.UTC)
            for name, (job, seconds) in jobs.items():
                scheduler.add_job(
                    job,
                    "interval",
                    seconds=seconds,
                    id=name,
                    max_instances=1,
                    coalesce=True,
                    next_run_time=dt.datetime.now(dt.UTC),
                )
            scheduler.start()
            try:
                while not stop.wait(_LEADERSHIP_CHECK_SECONDS):
                    if not lock.still_held():
                        log.warning("scheduler: lost leadership; jobs stopped")
                        break
            finally:
                scheduler.shutdown(wait=True)
                lock.release()
