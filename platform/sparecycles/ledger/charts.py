"""The supply and emission schedule as SVG coordinates, computed on the server.

No chart library and no script: the template draws polylines from these
numbers, so the chart works under a strict CSP and with JavaScript off.
"""

import datetime as dt

from .canonical import from_us
from .units import MICRO

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 14, 34


def compact_tokens(micro: int) -> str:
    """14_400_000_000 µ -> "14.4k"; 21e12 µ -> "21M" (axis labels only)."""
    tokens = micro / MICRO
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(tokens) >= size:
            return f"{tokens / size:.3g}{suffix}"
    return f"{tokens:.3g}"


def _date_label(moment: dt.datetime, span: dt.timedelta) -> str:
    if span > dt.timedelta(days=3 * 365):
        return str(moment.year)
    if span > dt.timedelta(days=3):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%m-%d %H:%M")


def schedule_chart(points: list[dict], *, now_us: int, max_supply_micro: int) -> dict | None:
    """Coordinates for two panels: total supply over time, and emission per epoch."""
    if len(points) < 2:
        return None
    start, end = points[0]["start_us"], points[-1]["start_us"]
    end = max(end + (end - start) // 20, now_us)
    span_us = max(end - start, 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(us: int) -> float:
        return round(LEFT + (us - start) / span_us * plot_w, 1)

    top_supply = max(max_supply_micro, points[-1]["supply_before"], 1)
    top_emission = max(max(p["emission"] for p in points), 1)

    def y(value: int, top: int) -> float:
        return round(TOP + plot_h - value / top * plot_h, 1)

    supply = [(x(p["start_us"]), y(p["supply_before"], top_supply)) for p in points]
    supply.append((x(end), supply[-1][1]))
    steps = []
    for here, there in zip(points, points[1:] + [{"start_us": end}], strict=False):
        level = y(here["emission"], top_emission)
        steps += [(x(here["start_us"]), level), (x(there["start_us"]), level)]
    span = from_us(end) - from_us(start)
    ticks = [start + span_us * i // 4 for i in range(5)]
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
        "bottom": TOP + plot_h,
        "supply_points": " ".join(f"{a},{b}" for a, b in supply),
        "emission_points": " ".join(f"{a},{b}" for a, b in steps),
        "emission_area": " ".join(f"{a},{b}" for a, b in
                                  [(x(start), TOP + plot_h), *steps, (x(end), TOP + plot_h)]),
        "cap_y": y(max_supply_micro, top_supply),
        "now_x": x(min(max(now_us, start), end)),
        "now_label_x": x(min(max(now_us, start), end)) + 4,
        "x_ticks": [{"x": x(t), "label": _date_label(from_us(t), span)} for t in ticks],
        "supply_ticks": [{"y": y(top_supply * i // 4, top_supply),
                          "label": compact_tokens(top_supply * i // 4)} for i in range(5)],
        "emission_ticks": [{"y": y(top_emission * i // 4, top_emission),
                            "label": compact_tokens(top_emission * i // 4)} for i in range(5)],
    }
