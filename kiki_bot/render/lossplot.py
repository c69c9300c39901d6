"""A dependency-free SVG of the training and validation loss, for the review PR and the Hub upload."""

from __future__ import annotations

from xml.sax.saxutils import escape

W, H, PAD = 480, 200, 32
BLOCKS = "▁▂▃▄▅▆▇█"


def _points(series: list[tuple[int, float]], x_max: int, lo: float, hi: float) -> str:
    span = (hi - lo) or 1.0
    return " ".join(f"{PAD + (W - 2 * PAD) * x / max(x_max, 1):.1f},{H - PAD - (H - 2 * PAD) * (y - lo) / span:.1f}"
                    for x, y in series)


def svg(train: list[tuple[int, float]], val: list[tuple[int, float]], title: str) -> str:
    values = [y for _, y in train + val] or [0.0]
    lo, hi = min(values), max(values)
    x_max = max([x for x, _ in train + val] or [1])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">'
            f'<rect width="{W}" height="{H}" fill="white"/>'
            f'<text x="{PAD}" y="18" font-family="sans-serif" font-size="12">{escape(title)}</text>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{_points(train, x_max, lo, hi)}"/>'
            f'<polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="{_points(val, x_max, lo, hi)}"/>'
            f'<text x="{PAD}" y="{H - 8}" font-family="sans-serif" font-size="11">iterations 0–{x_max}; '
            f'loss {lo:.3f}–{hi:.3f}; blue train, orange validation</text></svg>\n')


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(BLOCKS[round((v - lo) / span * (len(BLOCKS) - 1))] for v in values)
