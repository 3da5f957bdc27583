"""The dashboard's credit-over-time chart as SVG coordinates, computed on the server.

No chart library and no script: the template draws bars (credit granted each day) and a
line (total credit at the end of each day) from these numbers, so the chart works under
our strict CSP and with JavaScript off. The viewBox is phone-sized; it scales up.
"""

import datetime as dt

from sparecycles.credit.models import MICRO
from sparecycles.credit.templatetags.credit_format import format_credit

WIDTH, HEIGHT = 360, 180
TOP, BOTTOM = 10, 24
CHAR_W = 6.2  # px per character of a 10-px label: the side margins fit their labels


def compact(value: float) -> str:
    """12_345.6 -> "12.3k", 0.5 -> "0.5", 0.000031 -> "0.000031" (axis labels only)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    if value and abs(value) < 0.01:
        return format_credit(value)
    return f"{value:.3g}"


def credit_chart(days: list[tuple[dt.date, int]], *, total_micro: int) -> dict | None:
    """Bars for `days` [(date, micro-credit granted that day)], oldest first, and the
    running total that ends at `total_micro`. None when there is nothing to draw."""
    if not days or not any(amount for _, amount in days):
        return None
    top_day = max(amount for _, amount in days)
    running = total_micro - sum(amount for _, amount in days)
    totals = []
    for _, amount in days:
        running += amount
        totals.append(running)
    top_total = max(max(totals), 1)
    day_labels = [compact(top_day * i / 2 / MICRO) for i in range(3)]
    total_labels = [compact(top_total * i / 2 / MICRO) for i in range(3)]
    left = round(8 + CHAR_W * max(map(len, day_labels)))
    right = round(8 + CHAR_W * max(map(len, total_labels)))
    plot_w, plot_h = WIDTH - left - right, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bottom = TOP + plot_h

    def y(value: int, top: int) -> float:
        return round(bottom - value / top * plot_h, 1)

    bars = []
    for i, (day, amount) in enumerate(days):
        height = round(amount / top_day * plot_h, 1)
        bars.append({"x": round(left + i * slot + slot * 0.15, 1), "y": round(bottom - height, 1),
                     "width": round(slot * 0.7, 1), "height": height, "date": day,
                     "credit": amount / MICRO, "total": totals[i] / MICRO})
    line = " ".join(f"{round(left + (i + 0.5) * slot, 1)},{y(t, top_total)}"
                    for i, t in enumerate(totals))
    label_every = max(1, len(days) // 4)
    return {
        "width": WIDTH, "height": HEIGHT, "left": left, "right": WIDTH - right,
        "top": TOP, "bottom": bottom, "bars": bars, "line": line,
        "x_labels": [{"x": round(left + (i + 0.5) * slot, 1), "label": day.strftime("%b %-d")}
                     for i, (day, _) in enumerate(days) if i % label_every == 0],
        "day_ticks": [{"y": y(top_day * i // 2, top_day), "label": day_labels[i]}
                      for i in range(3)],
        "total_ticks": [{"y": y(top_total * i // 2, top_total), "label": total_labels[i]}
                        for i in range(3)],
        "label_y": HEIGHT - 6,
        "right_label_x": WIDTH - right + 4,
        "left_label_x": left - 4,
    }
