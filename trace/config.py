"""Settings: one object, read from ``MEDTRACE_*`` environment variables.

Only entry points (the API app, the CLI, the demo) read settings; everything else receives
plain arguments. Paths default to a data directory so that a fresh checkout runs with no
configuration at all: SQLite database, log key and station keys all live under it.

The fields are grouped by the part of medtrace that uses them (``settings.mqtt.host``), while
the variables stay flat (``MEDTRACE_MQTT_HOST``): operators, compose files and deployments name
them, and a group is a reading aid, not a new name to learn. Each group reads its own variables;
a field named otherwise than its variable (the group's prefix dropped) names the variable as
its alias.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import Field, IPvAnyNetwork, computed_field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

_PREFIX = "MEDTRACE_"


class SettingsGroup(BaseSettings):
    """One role's settings, each field read from ``MEDTRACE_<alias or name>``.

    ``env_prefix_target="all"`` puts the prefix before aliases too, so an alias is the flat
    name an operator knows; names are not accepted besides aliases (no ``validate_by_name``),
    so a field answers to its flat variable only, never to ``MEDTRACE_HOST`` and the like.
    """

    model_config = SettingsConfigDict(env_prefix=_PREFIX, env_prefix_target="all", extra="ignore")


class LedgerSettings(SettingsGroup):
    """The transparency log: its name and key, how the sequencer batches, who cosigns."""

    origin: str = Field(
        default="127.0.0.1/medtrace",
        validation_alias="log_origin",
        description="C2SP checkpoint origin, also the log key's name",
    )
    key_path: Path | None = Field(
        default=None,
        validation_alias="log_key_path",
        description="Ed25519 private key (PEM) of the log; default data_dir/keys/log.pem",
    )
    batch_interval: float = Field(default=1.0, gt=0, description="Seconds between integrations")
    batch_size: int = Field(default=10_000, gt=0, description="Leaves that force an integration")
    run_sequencer: bool = Field(
        default=True, description="Run the sequencer inside the API process (one-machine setups)"
    )
    witness_urls: list[str] = Field(
        default=[],
        description="c2sp.org/tlog-witness submission prefixes the sequencer asks to cosign "
        "(JSON list, paired by position with witness_keys)",
    )
    witness_keys: list[str] = Field(
        default=[], description="The witnesses' cosignature/v1 verifier keys (JSON list)"
    )
    witness_quorum: int = Field(
        default=0, ge=0, description="k of the k-of-n policy: cosignatures a checkpoint needs"
    )

    @field_validator("origin")
    @classmethod
    def _origin_is_a_key_name(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "+" in value:
            raise ValueError("log_origin must be non-empty, without spaces or '+'")
        return value

    @model_validator(mode="after")
    def _witnesses_pair_up(self) -> LedgerSettings:
        if len(self.witness_urls) != len(self.witness_keys):
            raise ValueError("witness_urls and witness_keys must have the same length")
        if self.witness_quorum > len(self.witness_keys):
            raise ValueError("witness_quorum is larger than the number of witness keys")
        return self


class WitnessSettings(SettingsGroup):
    """The witness role: this process cosigning other logs' checkpoints."""

    name: str = Field(
        default="medtrace-witness",
        validation_alias="witness_name",
        description="This witness's key name (role witness)",
    )
    key_path: Path | None = Field(
        default=None,
        validation_alias="witness_key_path",
        description="This witness's Ed25519 key (PEM), created on first start; default "
        "data_dir/keys/witness.pem",
    )
    state_path: Path | None = Field(
        default=None,
        validation_alias="witness_state_path",
        description="This witness's state (SQLite); default data_dir/witness.db",
    )
    log_keys: list[str] = Field(
        default=[],
        validation_alias="witness_log_keys",
        description="C2SP verifier keys of the logs this witness cosigns (JSON list)",
    )


class CaptureSettings(SettingsGroup):
    """What signed events and readings the capture endpoints take, and when they doubt them."""

    max_capture_batch: int = Field(default=1_000, gt=0, description="Envelopes per capture request")
    replay_window: float = Field(
        default=86_400, gt=0, description="Seconds: older signed events are refused as stale"
    )
    catch_up_window: float = Field(
        default=30 * 86_400,
        gt=0,
        description="Seconds: the bound instead of replay_window for a station outbox that "
        "flags its batch as offline catch-up",
    )
    max_rejects_per_sensor: int = Field(
        default=1_000,
        gt=0,
        description="Refused readings kept per sensor id (the oldest are dropped); those naming "
        "no registered sensor share one such allowance",
    )
    receipt_policy: Literal["refuse", "flag_suspect"] = Field(
        default="refuse",
        description="A receipt of what was not shipped to the receiver: refuse it, or accept "
        "it and flag its units suspect",
    )
    min_transit_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A receipt sooner than this after its shipment (between two sites) is "
        "accepted but suspect; one before its shipment always is",
    )

    @model_validator(mode="after")
    def _catch_up_is_the_longer_bound(self) -> CaptureSettings:
        if self.catch_up_window < self.replay_window:
            raise ValueError("catch_up_window must be at least replay_window")
        return self


class HttpSettings(SettingsGroup):
    """What the HTTP server takes from a client before any route runs: body size, request
    rates, and which proxies may name the client."""

    max_body_bytes: int = Field(
        default=16 * 1024 * 1024,
        gt=0,
        description="Largest request body, refused while it streams, before authentication "
        "(lot registrations and EPCIS documents have their own)",
    )
    rate_limit: float = Field(
        default=100.0,
        ge=0,
        description="Requests per second per API token and API process; 0 turns the limit off",
    )
    rate_burst: int = Field(default=200, gt=0, description="Requests a token may send at once")
    auth_failure_rate: float = Field(
        default=1.0,
        gt=0,
        description="Requests per second and API process whose API token fails "
        "authentication, per client network (IPv4 /24, IPv6 /64), before the network's "
        "requests with a token are refused with 429 (with rate_limit 0, off too)",
    )
    auth_failure_burst: int = Field(
        default=50, gt=0, description="Such failures a client network may have at once"
    )
    trusted_proxies: list[str] = Field(
        default=[],
        description="Addresses or networks (CIDR) of the reverse proxies in front of the API "
        "whose X-Forwarded-For and X-Forwarded-Proto are believed (JSON list); default none: "
        "the client is whoever opened the connection",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {proxy!r} is not an IP address or network"
                ) from exc
        return value


class LotSettings(SettingsGroup):
    """Lot registrations and the documents they carry."""

    document_dir: Path | None = Field(
        default=None, description="Lot documents, by SHA-256; default data_dir/documents"
    )
    max_document_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Per document")
    max_lot_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest lot registration request (its envelope and every document it "
        "names), refused while it streams, before authentication",
    )


class WebSettings(SettingsGroup):
    """The web pages: portal sessions and log-ins, and the public verification page's
    watch for copied labels."""

    session_secret: str = Field(
        default="",
        description="Key that signs the portal's session cookies (default: derived from the log "
        "key, so every API replica accepts them and a restart logs nobody out)",
    )
    login_max_failures: int = Field(
        default=5,
        gt=0,
        description="Failed portal log-ins of one e-mail address per window, after which its "
        "log-ins are refused with 429 until the window has passed",
    )
    login_max_network_failures: int = Field(
        default=50,
        gt=0,
        description="Failed portal log-ins from one client network (IPv4 /24, IPv6 /64) per "
        "window, after which log-ins from it are refused with 429",
    )
    login_failure_window: float = Field(
        default=900, gt=0, description="Seconds of the window failed log-ins are counted in"
    )
    password_hash_workers: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) - 1),
        gt=0,
        description="Password hashes one API process computes at once, off its event loop "
        "(scrypt takes 128 MiB and a core each); default one less than the cores, which "
        "leaves a core to the other requests (tests/bench/bench_login.py)",
    )
    suspect_verify_requests: int = Field(
        default=10, gt=0, description="Public verifications after dispense that make it suspect"
    )
    suspect_verify_places: int = Field(
        default=3, gt=0, description="...coming from at least this many places (networks)"
    )
    suspect_verify_window: float = Field(
        default=7 * 86400.0, gt=0, description="...within this many seconds"
    )
    place_salt: str = Field(
        default="",
        description="Secret salt of the hashed places of public verifications (default: "
        "derived from the log key, so every API replica and every restart hash a network alike)",
    )


class MqttSettings(SettingsGroup):
    """The MQTT broker sensors publish to, and alerts too."""

    host: str = Field(
        default="127.0.0.1",
        validation_alias="mqtt_host",
        description="MQTT broker of sensors and bridge",
    )
    port: int = Field(
        default=1883, gt=0, validation_alias="mqtt_port", description="MQTT broker port"
    )
    version: Literal["5", "3.1.1"] = Field(
        default="5",
        validation_alias="mqtt_version",
        description="MQTT protocol of the bridge: 5, or 3.1.1 for older brokers",
    )


class BridgeSettings(SettingsGroup):
    """The bridge role: relaying sensor readings from the broker into the capture API."""

    token: str = Field(
        default="",
        validation_alias="bridge_token",
        description="API token the bridge captures readings with (role bridge)",
    )
    client_id: str = Field(
        default="medtrace-bridge-1",
        validation_alias="bridge_client_id",
        description="Stable MQTT client id: the broker keeps the bridge's session under it",
    )
    share_group: str = Field(
        default="",
        validation_alias="bridge_share_group",
        description="MQTT 5 shared-subscription group so several bridges split the load "
        "(default: a plain subscription, which survives broker restarts)",
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=1000,
        validation_alias="bridge_batch_size",
        description="Messages per commit",
    )
    batch_wait: float = Field(
        default=0.1,
        ge=0,
        validation_alias="bridge_batch_wait",
        description="Seconds a bridge's batch may wait to fill",
    )
    session_expiry: int = Field(
        default=24 * 3600,
        ge=1,
        validation_alias="bridge_session_expiry",
        description="Seconds the broker keeps the bridge's session",
    )


class ExpirySettings(SettingsGroup):
    """Expiry alerts."""

    warn_days: int = Field(
        default=90,
        ge=0,
        validation_alias="expiry_warn_days",
        description="Expiry alerts this many days ahead",
    )
    check_interval: float = Field(
        default=3600,
        gt=0,
        validation_alias="expiry_check_interval",
        description="Seconds between expiry checks",
    )


class WebhookSettings(SettingsGroup):
    """Delivering alerts and EPCIS subscriptions to subscribers' webhooks."""

    timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias="webhook_timeout",
        description="Seconds one webhook delivery may take in all: DNS, connect, send, answer",
    )
    concurrency: int = Field(
        default=8,
        gt=0,
        validation_alias="webhook_concurrency",
        description="Webhook subscribers served at once in a delivery pass",
    )
    allowed_networks: list[IPvAnyNetwork] = Field(
        default=[],
        validation_alias="webhook_allowed_networks",
        description="Networks (JSON list of CIDRs) webhooks may reach although they are not "
        "public, for receivers on premises; every other loopback, private, link-local, "
        "multicast or reserved address is refused",
    )
    max_attempts: int = Field(
        default=10,
        gt=0,
        validation_alias="webhook_max_attempts",
        description="Tries before a delivery fails",
    )
    interval: float = Field(
        default=15,
        gt=0,
        validation_alias="webhook_interval",
        description="Seconds between webhook passes",
    )
    stream_interval: float = Field(
        default=1.0,
        gt=0,
        validation_alias="webhook_stream_interval",
        description="Seconds between passes that push newly captured events to EPCIS "
        "subscriptions (how soon a partner hears of a shipment)",
    )


class ColdChainSettings(SettingsGroup):
    """Temperature: the default band and gap of readings, and the cold-chain limits no lot
    record gives."""

    temperature_low_c: float = Field(default=2.0, description="Default band when no product")
    temperature_high_c: float = Field(default=8.0, description="profile exists (2–8 °C)")
    temperature_max_gap: float = Field(
        default=900.0, gt=0, description="Seconds without readings that count as a gap"
    )
    max_excursion: float = Field(
        default=60,
        gt=0,
        validation_alias="coldchain_max_excursion",
        description="Minutes one excursion outside the band may last",
    )
    excursion_budget: float = Field(
        default=240,
        gt=0,
        validation_alias="coldchain_excursion_budget",
        description="Minutes outside the band allowed over a unit's life",
    )
    freeze_c: float = Field(
        default=-0.5, validation_alias="coldchain_freeze_c", description="At or below this, frozen"
    )
    max_freeze: float = Field(
        default=60,
        gt=0,
        validation_alias="coldchain_max_freeze",
        description="Minutes frozen that are never excused",
    )
    mkt_limit_c: float = Field(
        default=8.0,
        validation_alias="coldchain_mkt_limit_c",
        description="Highest mean kinetic temperature allowed over the window",
    )
    mkt_window: float = Field(
        default=24,
        gt=0,
        validation_alias="coldchain_mkt_window",
        description="Hours of the mean kinetic temperature window",
    )
    sensor_max_silence: float = Field(
        default=60, gt=0, description="Minutes a bound sensor may send nothing"
    )
    check_interval: float = Field(
        default=300,
        gt=0,
        validation_alias="coldchain_check_interval",
        description="Seconds between cold-chain and sensor-silence checks",
    )


class ReorderSettings(SettingsGroup):
    """Reorder planning from dispense history."""

    lead_time: float = Field(
        default=7, ge=0, validation_alias="reorder_lead_time", description="Days a delivery takes"
    )
    review_period: float = Field(
        default=7,
        ge=0,
        validation_alias="reorder_review_period",
        description="Days between orders",
    )
    service_level: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        validation_alias="reorder_service_level",
        description="Chance of not running out before a delivery",
    )
    history_days: int = Field(
        default=180,
        ge=2,
        validation_alias="reorder_history_days",
        description="Days of dispense history a plan is computed from",
    )
    plan_interval: float = Field(
        default=86_400,
        gt=0,
        validation_alias="reorder_plan_interval",
        description="Seconds between stored reorder plans (nightly)",
    )


class Settings(BaseSettings):
    """medtrace's configuration: where it lives and what it is called here, and one group per
    role. Every field maps to ``MEDTRACE_<FIELD>``, a group's fields as their group says
    (``variables()`` lists them all). pydantic-settings would also take a whole group as JSON
    from ``MEDTRACE_<GROUP>``; nothing documents or sets those."""

    model_config = SettingsConfigDict(env_prefix=_PREFIX, extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=Path("medtrace-data"), description="Where files live")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in data_dir")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of this service; the host of the GS1 Digital Link URIs it prints",
    )
    station_key_dir: Path | None = Field(
        default=None, description="Where `station keygen` writes keys; default data_dir/keys"
    )
    log_format: Literal["json", "text"] = Field(
        default="text", description="Server logs on stderr: JSON lines or plain text"
    )
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    witness: WitnessSettings = Field(default_factory=WitnessSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    lots: LotSettings = Field(default_factory=LotSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    expiry: ExpirySettings = Field(default_factory=ExpirySettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    coldchain: ColdChainSettings = Field(default_factory=ColdChainSettings)
    reorder: ReorderSettings = Field(default_factory=ReorderSettings)

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"sqlite:///{(self.data_dir / 'medtrace.db').resolve()}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_log_key_path(self) -> Path:
        """The log's private key file."""
        return self.ledger.key_path or self.data_dir / "keys" / "log.pem"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_document_dir(self) -> Path:
        """The folder of the content-addressed document store."""
        return self.lots.document_dir or self.data_dir / "documents"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_witness_key_path(self) -> Path:
        """The witness role's private key file."""
        return self.witness.key_path or self.data_dir / "keys" / "witness.pem"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_witness_state_path(self) -> Path:
        """The witness role's state file."""
        return self.witness.state_path or self.data_dir / "witness.db"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_station_key_dir(self) -> Path:
        """The folder for station key files."""
        return self.station_key_dir or self.data_dir / "keys"


class Variable(NamedTuple):
    """One ``MEDTRACE_*`` variable and the field it sets: ``settings.<group>.<attribute>``,
    or ``settings.<attribute>`` for a field outside the groups (group ``None``)."""

    name: str
    group: str | None
    attribute: str
    field: FieldInfo


def variables() -> list[Variable]:
    """Every variable the settings read, in field order: what a deployment may set."""
    found: list[Variable] = []
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, SettingsGroup):
            found += [
                Variable(_variable_name(attribute, inner), name, attribute, inner)
                for attribute, inner in group.model_fields.items()
            ]
        else:
            found.append(Variable(_variable_name(name, field), None, name, field))
    return found


def _variable_name(attribute: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return _PREFIX + (alias if isinstance(alias, str) else attribute).upper()


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
