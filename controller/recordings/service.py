"""The catalog thread of the controller: ``Cataloger`` rounds every ``[catalog] interval_s``, surviving any error.

The agent clock offsets are the alert evaluator's (``AlertEvaluator.offsets``, fed from every stored telemetry
message, measured by ``controller.alerting.rules.clock_offset``); the live controllers are the heartbeats the
policy tick writes.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlmodel import Session

from controller.alerting.rules import clock_offset
from controller.alerting.store import live_controllers
from controller.central.probe import probe_client
from controller.recordings.catalog import Cataloger, CatalogSettings
from controller.store.errors import is_outage

if TYPE_CHECKING:
    from controller.service.app import Controller

log = logging.getLogger(__name__)


def build_cataloger(controller: Controller) -> Cataloger:
    config = controller.config
    assert config.s3 is not None
    section = config.catalog
    ttl_s = max(5.0, 3 * config.tick_seconds)
    evaluator = controller.alerts

    def offset(agent_id: str) -> float | None:
        kept = evaluator.offsets.get(agent_id)
        return clock_offset(list(kept)) if kept else None

    settings = config.s3.settings()
    if section.access_key:
        settings = replace(settings, access_key=section.access_key, secret_key=section.secret_key)
    return Cataloger(
        probe_client(settings, section.timeout_s),
        settings.bucket,
        controller_id=config.controller_id,
        settings=CatalogSettings(
            batch=section.batch,
            max_attempts=section.max_attempts,
            retry_first_s=section.retry_first_s,
            sweep_interval_s=section.sweep_interval_s,
            clock_skew_s=evaluator.thresholds.clock_skew_s,
        ),
        clock_offset=offset,
        live_controllers=lambda session, now: live_controllers(session, now, ttl_s),
    )


def catalog_loop(controller: Controller, stop: threading.Event) -> None:
    cataloger = build_cataloger(controller)
    interval = controller.config.catalog.interval_s
    while not stop.is_set():
        try:
            with Session(controller.engine) as session:
                done = cataloger.run_once(session, datetime.now(UTC))
            if done.inserted or done.cataloged or done.failed:
                log.info("catalog: %d new, %d cataloged, %d failed, %d to retry", done.inserted, done.cataloged,
                         done.failed, done.retrying)  # fmt: skip
        except Exception as exc:  # the database away, or a bug: the next round tries again
            controller.loop_errors["catalog"] += 1
            log.error("catalog round failed: %s", exc, exc_info=not is_outage(exc))
        stop.wait(interval)
