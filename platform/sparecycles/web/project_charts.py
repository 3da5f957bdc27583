"""A project's progress over time as SVG coordinates, computed on the server.

The template draws a polyline from these numbers: no chart library and no
script, so the chart works under the strict CSP and with JavaScript off.
"""

import datetime as dt

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 32


def _label(moment: dt.datetime, span: dt.timedelta) -> str:
    if span > dt.timedelta(days=3):
        return moment.strftime("%Y-%m-%d")
    if span > dt.timedelta(hours=12):
        return moment.strftime("%m-%d %H:%M")
    if span > dt.timedelta(minutes=30):
        return moment.strftime("%H:%M")
    return moment.strftime("%H:%M:%S")


def compact(value: int) -> str:
    """1234 -> "1.2k", 100000 -> "100k": axis labels stay short on a phone."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return str(value)


def progress_chart(series: list[tuple[dt.datetime, int]], *, total: int) -> dict | None:
    """Cumulative validated work units against time, scaled to the project's total."""
    if len(series) < 2:
        return None
    start, end = series[0][0], series[-1][0]
    span = max(end - start, dt.timedelta(seconds=1))
    top = max(total, series[-1][1], 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(moment: dt.datetime) -> float:
        return round(LEFT + (moment - start) / span * plot_w, 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - value / top * plot_h, 1)

    line = [(x(moment), y(value)) for moment, value in series]
    area = [(line[0][0], y(0)), *line, (line[-1][0], y(0))]
    # Odd ticks are "minor": a phone shows only the first, middle and last.
    x_ticks = [{"x": x(start + span * i / 4), "label": _label(start + span * i / 4, span),
                "minor": i % 2 == 1} for i in range(5)]
    y_ticks = [{"y": y(round(top * i / 4)), "label": compact(round(top * i / 4)),
                "minor": i % 2 == 1} for i in range(5)]
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "points": " ".join(f"{px},{py}" for px, py in line),
        "area": " ".join(f"{px},{py}" for px, py in area),
        "x_ticks": x_ticks, "y_ticks": y_ticks,
        "last": {"x": line[-1][0], "y": line[-1][1], "value": series[-1][1]},
        "summary": f"{series[-1][1]:,} of {total:,} work units validated between "
                   f"{start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC",
    }
