"""The settings' groups read the same flat ``MEDTRACE_*`` variables as ever.

Operators, compose files and deployments name the variables, so grouping the fields
(``settings.mqtt.host``) must change no name, default or error. The tests walk the model's
fields, so a field added later is covered without touching them.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
from pydantic import IPvAnyNetwork, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from medtrace.config import Settings, SettingsGroup, Variable, variables

# Every variable and its default as the flat settings had them; password_hash_workers
# defaults to one less than the cores and is checked apart.
DEFAULTS: dict[str, object] = {
    "MEDTRACE_ENVIRONMENT": "development",
    "MEDTRACE_DATA_DIR": Path("medtrace-data"),
    "MEDTRACE_DATABASE_URL": "",
    "MEDTRACE_PUBLIC_URL": "http://127.0.0.1:8000",
    "MEDTRACE_LOG_ORIGIN": "127.0.0.1/medtrace",
    "MEDTRACE_LOG_KEY_PATH": None,
    "MEDTRACE_STATION_KEY_DIR": None,
    "MEDTRACE_BATCH_INTERVAL": 1.0,
    "MEDTRACE_BATCH_SIZE": 10000,
    "MEDTRACE_MAX_CAPTURE_BATCH": 1000,
    "MEDTRACE_REPLAY_WINDOW": 86400.0,
    "MEDTRACE_MAX_REJECTS_PER_SENSOR": 1000,
    "MEDTRACE_CATCH_UP_WINDOW": 2592000.0,
    "MEDTRACE_MAX_BODY_BYTES": 16777216,
    "MEDTRACE_RATE_LIMIT": 100.0,
    "MEDTRACE_RATE_BURST": 200,
    "MEDTRACE_AUTH_FAILURE_RATE": 1.0,
    "MEDTRACE_AUTH_FAILURE_BURST": 50,
    "MEDTRACE_TRUSTED_PROXIES": [],
    "MEDTRACE_LOGIN_MAX_FAILURES": 5,
    "MEDTRACE_LOGIN_MAX_NETWORK_FAILURES": 50,
    "MEDTRACE_LOGIN_FAILURE_WINDOW": 900.0,
    "MEDTRACE_LOG_FORMAT": "text",
    "MEDTRACE_RUN_SEQUENCER": True,
    "MEDTRACE_EXPIRY_WARN_DAYS": 90,
    "MEDTRACE_WEBHOOK_TIMEOUT": 10.0,
    "MEDTRACE_WEBHOOK_CONCURRENCY": 8,
    "MEDTRACE_WEBHOOK_ALLOWED_NETWORKS": [],
    "MEDTRACE_WEBHOOK_MAX_ATTEMPTS": 10,
    "MEDTRACE_DOCUMENT_DIR": None,
    "MEDTRACE_MAX_DOCUMENT_BYTES": 20971520,
    "MEDTRACE_MAX_LOT_BODY_BYTES": 67108864,
    "MEDTRACE_EXPIRY_CHECK_INTERVAL": 3600.0,
    "MEDTRACE_WEBHOOK_INTERVAL": 15.0,
    "MEDTRACE_WEBHOOK_STREAM_INTERVAL": 1.0,
    "MEDTRACE_WITNESS_URLS": [],
    "MEDTRACE_WITNESS_KEYS": [],
    "MEDTRACE_WITNESS_QUORUM": 0,
    "MEDTRACE_WITNESS_NAME": "medtrace-witness",
    "MEDTRACE_WITNESS_KEY_PATH": None,
    "MEDTRACE_WITNESS_STATE_PATH": None,
    "MEDTRACE_WITNESS_LOG_KEYS": [],
    "MEDTRACE_MQTT_HOST": "127.0.0.1",
    "MEDTRACE_MQTT_PORT": 1883,
    "MEDTRACE_MQTT_VERSION": "5",
    "MEDTRACE_BRIDGE_TOKEN": "",
    "MEDTRACE_BRIDGE_CLIENT_ID": "medtrace-bridge-1",
    "MEDTRACE_BRIDGE_SHARE_GROUP": "",
    "MEDTRACE_BRIDGE_BATCH_SIZE": 500,
    "MEDTRACE_BRIDGE_BATCH_WAIT": 0.1,
    "MEDTRACE_BRIDGE_SESSION_EXPIRY": 86400,
    "MEDTRACE_TEMPERATURE_LOW_C": 2.0,
    "MEDTRACE_TEMPERATURE_HIGH_C": 8.0,
    "MEDTRACE_TEMPERATURE_MAX_GAP": 900.0,
    "MEDTRACE_RECEIPT_POLICY": "refuse",
    "MEDTRACE_MIN_TRANSIT_SECONDS": 60.0,
    "MEDTRACE_SUSPECT_VERIFY_REQUESTS": 10,
    "MEDTRACE_SUSPECT_VERIFY_PLACES": 3,
    "MEDTRACE_SUSPECT_VERIFY_WINDOW": 604800.0,
    "MEDTRACE_PLACE_SALT": "",
    "MEDTRACE_SESSION_SECRET": "",
    "MEDTRACE_COLDCHAIN_MAX_EXCURSION": 60.0,
    "MEDTRACE_COLDCHAIN_EXCURSION_BUDGET": 240.0,
    "MEDTRACE_COLDCHAIN_FREEZE_C": -0.5,
    "MEDTRACE_COLDCHAIN_MAX_FREEZE": 60.0,
    "MEDTRACE_COLDCHAIN_MKT_LIMIT_C": 8.0,
    "MEDTRACE_COLDCHAIN_MKT_WINDOW": 24.0,
    "MEDTRACE_SENSOR_MAX_SILENCE": 60.0,
    "MEDTRACE_COLDCHAIN_CHECK_INTERVAL": 300.0,
    "MEDTRACE_REORDER_LEAD_TIME": 7.0,
    "MEDTRACE_REORDER_REVIEW_PERIOD": 7.0,
    "MEDTRACE_REORDER_SERVICE_LEVEL": 0.95,
    "MEDTRACE_REORDER_HISTORY_DAYS": 180,
    "MEDTRACE_REORDER_PLAN_INTERVAL": 86400.0,
}


FIELDS = sorted(variables())


def _value(settings: Settings, group: str | None, attribute: str) -> object:
    return getattr(getattr(settings, group) if group else settings, attribute)


def _sample(field: FieldInfo) -> tuple[str, object]:
    """A valid value other than the field's default: as the variable spells it, as parsed.

    Lists hold one loopback address, which passes as a proxy, a witness URL or a key alike
    (and pairs the witness lists up); numbers move within their bounds.
    """
    default = field.get_default(call_default_factory=True)
    annotation = field.annotation
    if annotation is bool:
        return str(not default).lower(), not default
    if get_origin(annotation) is Literal:
        choice = next(c for c in get_args(annotation) if c != default)
        return str(choice), choice
    if annotation is int:
        assert isinstance(default, int)
        return str(default + 1), default + 1
    if annotation is float:
        assert isinstance(default, int | float)
        return str(default / 2), default / 2
    if annotation is str:
        return "sample", "sample"
    if annotation in (Path, Path | None):
        return "/sample/path", Path("/sample/path")
    if annotation == list[str]:
        return '["127.0.0.1"]', ["127.0.0.1"]
    if annotation == list[IPvAnyNetwork]:
        return '["10.0.0.0/8"]', [ipaddress.ip_network("10.0.0.0/8")]
    raise AssertionError(f"no sample value for {annotation}: add one here")


@pytest.fixture(autouse=True)
def _no_medtrace_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from the defaults, whatever the shell running it exports."""
    for variable, _, _, _ in FIELDS:
        monkeypatch.delenv(variable, raising=False)


def test_every_variable_of_the_flat_settings_is_read_and_no_other() -> None:
    """Each group is a settings class of its own, read from the same variables."""
    for name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            assert issubclass(group, SettingsGroup), f"{name}: a group reads MEDTRACE_*"
    assert [variable for variable, _, _, _ in FIELDS] == sorted(
        [*DEFAULTS, "MEDTRACE_PASSWORD_HASH_WORKERS"]
    )


def test_the_defaults_are_unchanged() -> None:
    settings = Settings()
    for variable, group, attribute, _ in FIELDS:
        if variable != "MEDTRACE_PASSWORD_HASH_WORKERS":
            assert _value(settings, group, attribute) == DEFAULTS[variable], variable
    assert settings.web.password_hash_workers >= 1


@pytest.mark.parametrize(
    ("variable", "group", "attribute", "field"), FIELDS, ids=[v for v, *_ in FIELDS]
)
def test_a_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    group: str | None,
    attribute: str,
    field: FieldInfo,
) -> None:
    spelled, parsed = _sample(field)
    before = _value(Settings(), group, attribute)
    monkeypatch.setenv(variable, spelled)
    if variable == "MEDTRACE_WITNESS_QUORUM":
        # A quorum needs that many witnesses.
        monkeypatch.setenv("MEDTRACE_WITNESS_URLS", '["https://witness.example/"]')
        monkeypatch.setenv("MEDTRACE_WITNESS_KEYS", '["witness+1+key"]')
    if variable in {"MEDTRACE_WITNESS_URLS", "MEDTRACE_WITNESS_KEYS"}:
        # Either list alone does not pair up: give both.
        monkeypatch.setenv("MEDTRACE_WITNESS_URLS", spelled)
        monkeypatch.setenv("MEDTRACE_WITNESS_KEYS", spelled)
    after = _value(Settings(), group, attribute)
    assert after == parsed != before


RENAMED = [v for v in FIELDS if v.name != f"MEDTRACE_{v.attribute.upper()}"]


@pytest.mark.parametrize("variable", RENAMED, ids=[v.name for v in RENAMED])
def test_a_field_named_otherwise_answers_to_its_variable_only(
    monkeypatch: pytest.MonkeyPatch, variable: Variable
) -> None:
    """``MEDTRACE_HOST`` is no new name for ``MEDTRACE_MQTT_HOST``."""
    before = _value(Settings(), variable.group, variable.attribute)
    monkeypatch.setenv(f"MEDTRACE_{variable.attribute.upper()}", _sample(variable.field)[0])
    assert _value(Settings(), variable.group, variable.attribute) == before


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("MEDTRACE_MQTT_PORT", "port", "mqtt_port"),
        ("MEDTRACE_MQTT_PORT", "0", "mqtt_port"),
        ("MEDTRACE_RATE_BURST", "many", "rate_burst"),
        ("MEDTRACE_REORDER_SERVICE_LEVEL", "1", "reorder_service_level"),
        ("MEDTRACE_LOG_FORMAT", "xml", "log_format"),
        ("MEDTRACE_LOG_ORIGIN", "two words", "log_origin"),
        ("MEDTRACE_TRUSTED_PROXIES", '["proxy"]', "trusted_proxies"),
        ("MEDTRACE_WEBHOOK_ALLOWED_NETWORKS", '["intranet"]', "webhook_allowed_networks"),
        ("MEDTRACE_WITNESS_QUORUM", "1", "witness_quorum"),
        ("MEDTRACE_CATCH_UP_WINDOW", "60", "catch_up_window"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    """The error names the variable without its MEDTRACE_ prefix, as the flat settings did."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=named):
        Settings()


def test_resolved_paths_follow_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_log_key_path == tmp_path / "keys" / "log.pem"
    assert settings.resolved_witness_key_path == tmp_path / "keys" / "witness.pem"
    assert settings.resolved_witness_state_path == tmp_path / "witness.db"
    assert settings.resolved_document_dir == tmp_path / "documents"
    assert settings.resolved_station_key_dir == tmp_path / "keys"
