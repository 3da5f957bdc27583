"""The volunteer page's per-device settings as an account keeps them (static/volunteer/
settings.js is the browser's side): validated strictly here, because the body comes from a
client. A logged-in volunteer's settings follow them to a new browser."""

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_BODY_BYTES = 4096
# A pause runs at most a week ahead (the page offers 1 h, 4 h and "until tomorrow").
MAX_PAUSE_AHEAD_MS = 7 * 24 * 3600 * 1000
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")  # fullmatch: "$" allows a "\n"


class ComputeSettings(BaseModel):
    """Every field as settings.js's normalizeSettings stores it; nothing else is accepted."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    workers: Annotated[int, Field(ge=1, le=1024)]
    duty: Annotated[int, Field(ge=10, le=100, multiple_of=5)]
    background: bool
    chargingOnly: bool  # noqa: N815 -- the browser's names, as stored there
    minBattery: Annotated[int, Field(ge=0, le=95, multiple_of=5)]  # noqa: N815
    pauseOnMetered: bool  # noqa: N815
    wakeLock: bool  # noqa: N815
    pauseUntil: Annotated[int, Field(ge=0, le=2**53)] = 0  # noqa: N815 -- ms since 1970
    scheduleOn: bool = False  # noqa: N815
    scheduleFrom: str = "22:00"  # noqa: N815
    scheduleTo: str = "07:00"  # noqa: N815
    batteryHoldMin: Annotated[int, Field(ge=0, le=60, multiple_of=5)] = 10  # noqa: N815
    pressure: bool = False

    @field_validator("scheduleFrom", "scheduleTo")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError("must be a time of day as HH:MM (00:00 to 23:59)")
        return value


class SettingsError(ValueError):
    def __init__(self, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.fields = fields or {}


def compute_settings_check(raw: object, *, now_ms: int) -> dict:
    """The settings as stored, or SettingsError naming every bad field."""
    if not isinstance(raw, dict):
        raise SettingsError("Send the settings as a JSON object.")
    try:
        settings = ComputeSettings.model_validate(raw)
    except ValidationError as exc:
        fields: dict[str, list[str]] = {}
        for error in exc.errors()[:20]:
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            fields.setdefault(name[:60], []).append(error["msg"])
        raise SettingsError("Some settings are not valid: "
                            + "; ".join(f"{k}: {v[0]}" for k, v in fields.items()),
                            fields) from None
    if settings.pauseUntil > now_ms + MAX_PAUSE_AHEAD_MS:
        raise SettingsError("A pause may last at most a week.",
                            {"pauseUntil": ["at most a week from now"]})
    return settings.model_dump()
