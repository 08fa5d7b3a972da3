"""The rules' policies as the settings give them, built by each entry point (API, scheduler,
command line) and handed to the services as plain values."""

from __future__ import annotations

import datetime as dt

from medtrace.config import Settings
from medtrace.schemas.sensors import TemperatureBand
from medtrace.services.coldchain import ColdChainLimits
from medtrace.services.portal_accounts import LoginThrottle
from medtrace.services.reorder import PlanningParameters
from medtrace.services.temperature import TemperaturePolicy
from medtrace.services.webhooks import DeliveryPolicy


def temperature_policy(settings: Settings) -> TemperaturePolicy:
    """The default temperature band and gap; a product's own storage band, where a lot
    record gave one, takes precedence in the services."""
    return TemperaturePolicy(
        band=TemperatureBand(
            min_c=settings.coldchain.temperature_low_c,
            max_c=settings.coldchain.temperature_high_c,
            source="the configured default band (no storage profile for this product)",
        ),
        max_gap=dt.timedelta(seconds=settings.coldchain.temperature_max_gap),
        binding_backdate=dt.timedelta(seconds=settings.capture.replay_window),
    )


def cold_chain_limits(settings: Settings) -> ColdChainLimits:
    """The cold-chain limits no lot record gives."""
    return ColdChainLimits(
        max_excursion=dt.timedelta(minutes=settings.coldchain.max_excursion),
        excursion_budget=dt.timedelta(minutes=settings.coldchain.excursion_budget),
        freeze_c=settings.coldchain.freeze_c,
        max_freeze=dt.timedelta(minutes=settings.coldchain.max_freeze),
        mkt_limit_c=settings.coldchain.mkt_limit_c,
        mkt_window=dt.timedelta(hours=settings.coldchain.mkt_window),
        max_silence=dt.timedelta(minutes=settings.coldchain.sensor_max_silence),
    )


def planning_parameters(settings: Settings) -> PlanningParameters:
    """The reorder planning parameters of the settings."""
    return PlanningParameters(
        lead_time_days=settings.reorder.lead_time,
        review_period_days=settings.reorder.review_period,
        service_level=settings.reorder.service_level,
        history_days=settings.reorder.history_days,
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How webhook deliveries are made: deadline, retries, concurrency, allowed networks."""
    return DeliveryPolicy(
        deadline=settings.webhooks.timeout,
        max_attempts=settings.webhooks.max_attempts,
        concurrency=settings.webhooks.concurrency,
        allowed_networks=tuple(settings.webhooks.allowed_networks),
    )


def login_throttle(settings: Settings) -> LoginThrottle:
    """The failed log-ins an account and a client network may have, and in what window."""
    return LoginThrottle(
        max_account_failures=settings.web.login_max_failures,
        max_network_failures=settings.web.login_max_network_failures,
        window=dt.timedelta(seconds=settings.web.login_failure_window),
    )
