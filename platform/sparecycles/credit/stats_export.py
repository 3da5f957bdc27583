"""Daily statistics files in the format BOINC statistics sites read (db_dump), plus JSON.

    user.gz  <users><user><id/><name/><create_time/><total_credit/><expavg_credit/>
             <expavg_time/><teamid/></user>…</users>
    team.gz  <teams><team><id/><name/><userid/><total_credit/><expavg_credit/>
             <expavg_time/><create_time/><nusers/><description/></team>…</teams>
    host.gz  <hosts><host><id/><userid/><total_credit/><expavg_credit/><expavg_time/>
             <p_ncpus/><m_nbytes/><os_name/><create_time/></host>…</hosts>
    tables.xml  counts and the export time
Each also as <name>.json.gz (a JSON array of the same fields). Anonymous
volunteers appear as "Anonymous" and hosts carry no identifying details.
Files are written to a temporary name and renamed, so readers never see half a file.
"""

import datetime as dt
import gzip
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import Sum

from sparecycles.volunteers.models import Device, Team, Volunteer

from .averages import HALF_LIFE_S
from .models import MICRO, CreditGrant, CreditTotals
from .selectors import row_of


def stats_dir() -> Path:
    return Path(settings.SPARECYCLES["STATS_DIR"])
CHUNK = 2000


def _xml(tag: str, fields: dict) -> str:
    body = "".join(f" <{k}>{escape(str(v))}</{k}>\n" for k, v in fields.items() if v is not None)
    return f"<{tag}>\n{body}</{tag}>\n"


def _totals(row: CreditTotals | None) -> dict:
    """BOINC's total and average as of expavg_time (an owner without a row has none)."""
    if row is None:
        return {"total_credit": 0.0, "expavg_credit": 0.0, "expavg_time": 0}
    return {"total_credit": round(row.credit_micro / MICRO, 6),
            "expavg_credit": round(row.rac, 6), "expavg_time": round(row.rac_time or 0, 3)}


def user_rows() -> Iterator[dict]:
    # A volunteer merged into an account is listed as that account, never on its own.
    for v in (Volunteer.objects.select_related("credit").filter(merged_into__isnull=True)
              .order_by("pk").iterator(
            chunk_size=CHUNK)):
        yield {"id": v.pk, "name": v.public_name, "create_time": int(v.created_at.timestamp()),
               **_totals(row_of(v)), "teamid": v.team_id or 0}


def team_rows() -> Iterator[dict]:
    for t in Team.objects.select_related("credit").order_by("pk").iterator(chunk_size=CHUNK):
        yield {"id": t.pk, "name": t.name, "userid": t.founder_id or 0, **_totals(row_of(t)),
               "create_time": int(t.created_at.timestamp()), "nusers": t.member_count,
               "description": t.description}


def host_rows() -> Iterator[dict]:
    now = time.time()
    totals = dict(CreditGrant.objects.filter(reversal__isnull=True).values("device_id")
                  .annotate(s=Sum("amount_micro")).values_list("device_id", "s"))
    for d in Device.objects.order_by("pk").iterator(chunk_size=CHUNK):
        caps = d.capabilities or {}
        yield {"id": d.pk, "userid": d.volunteer_id,
               "total_credit": round((totals.get(d.pk) or 0) / MICRO, 6),
               "expavg_credit": round(device_rac(device_id=d.pk, now=now), 6),
               "expavg_time": round(now, 3), "p_ncpus": caps.get("cores", 1),
               "m_nbytes": int(caps.get("memory_mb") or 0) * 2**20,
               "os_name": "mobile" if caps.get("mobile") else "browser",
               "create_time": int(d.created_at.timestamp())}


def device_rac(*, device_id: int, now: float) -> float:
    """RAC of a device from its grants of the last ten half-lives (continuous BOINC average)."""
    since = now - 10 * HALF_LIFE_S
    rate = math.log(2) / HALF_LIFE_S
    total = 0.0
    for amount, granted in CreditGrant.objects.filter(
            device_id=device_id, granted_at__gte=_dt(since),
            reversal__isnull=True).values_list("amount_micro", "granted_at"):
        total += amount / MICRO * math.exp(-(now - granted.timestamp()) * rate)
    return total * rate * 86400


def _dt(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _write(path: Path, chunks: Iterator[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as out:
        for chunk in chunks:
            out.write(chunk)
    os.replace(tmp, path)


def _json_array(rows: Iterator[dict]) -> Iterator[str]:
    yield "["
    for i, row in enumerate(rows):
        yield ("," if i else "") + json.dumps(row, separators=(",", ":"))
    yield "]\n"


def stats_export(directory: Path | None = None) -> dict[str, int]:
    """Write user, team and host files (XML and JSON, gzip) and tables.xml; returns counts."""
    directory = directory or stats_dir()
    directory.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, plural, rows in (("user", "users", user_rows), ("team", "teams", team_rows),
                               ("host", "hosts", host_rows)):
        count = 0

        def xml(rows=rows, name=name, plural=plural):
            nonlocal count
            yield f"<{plural}>\n"
            for row in rows():
                count += 1
                yield _xml(name, row)
            yield f"</{plural}>\n"

        _write(directory / f"{name}.gz", xml())
        _write(directory / f"{name}.json.gz", _json_array(rows()))
        counts[plural] = count
    tables = _xml("tables", {"update_time": int(time.time()), "nusers_total": counts["users"],
                             "nteams_total": counts["teams"], "nhosts_total": counts["hosts"]})
    tmp = directory / "tables.xml.tmp"
    tmp.write_text(tables)
    os.replace(tmp, directory / "tables.xml")
    return counts
