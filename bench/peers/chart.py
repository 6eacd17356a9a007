"""The peer benchmark's PNG: throughput per mix and contender, and what each MO costs in CPU.

Two panels side by side, because each answers a different question: msgs/s (who is fastest on
this box) and CPU-seconds per million MOs (how many cores a given MO rate needs, on any box).
Linear axes with the value on every bar: on a log axis the 40x gap between the ceiling and faust
would look like a small step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {
    "ceiling": "#9e9e9e",
    "classifier": "#1f77b4",
    "classifier-x2": "#aec7e8",
    "quix": "#ff7f0e",
    "faust": "#2ca02c",
}
LABELS = {
    "ceiling": "ceiling: aiokafka + orjson",
    "classifier": "optout classifier",
    "classifier-x2": "optout classifier, 2 processes",
    "quix": "Quix Streams app",
    "faust": "faust-streaming agent",
}


def draw(doc: dict[str, Any], path: Path) -> str | None:
    """Write the chart to ``path``; the reason when it cannot (matplotlib missing), else ``None``."""
    # The ignores: matplotlib is in the bench extra only, and `make lint` runs mypy without it.
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")  # no display: render to a file only
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]')"

    mixes = [m for m in doc["mixes"] if m["contenders"]]
    names = [n for n in COLORS if any(n in m["contenders"] for m in mixes)]
    fig, (rate_ax, cpu_ax) = plt.subplots(1, 2, figsize=(13, 5.6), layout="constrained")
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(mixes))]
        for ax, key, fmt in ((rate_ax, "msgs_per_s", _thousands), (cpu_ax, "cpu_s_per_million", _one)):
            values = [(m["contenders"].get(name) or {}).get(key) or 0 for m in mixes]
            bars = ax.bar(xs, values, width, label=LABELS[name], color=COLORS[name])
            ax.bar_label(bars, [fmt(v) if v else "" for v in values], fontsize=7, padding=2)
    titles = [f"{m['title']}\n{m['keyword_ratio']:.0%} keywords" for m in mixes]
    for ax, title in (
        (rate_ax, "Throughput, msgs/s (higher is better)"),
        (cpu_ax, "Worker CPU-seconds per million MOs (lower is better)"),
    ):
        ax.set_xticks(range(len(mixes)), titles)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.margins(y=0.12)
    rate_ax.yaxis.set_major_formatter(lambda value, _: _thousands(value) if value else "0")
    # Below both panels: inside one it would sit on the tallest bars.
    fig.legend(*rate_ax.get_legend_handles_labels(), loc="outside lower center", ncols=len(names), fontsize=9)
    m = doc["machine"]
    fig.suptitle(
        f"optout-worker vs stream-framework peers: {doc['messages_per_mix']:,} MOs per mix, "
        f"{doc['partitions']} partitions, median of {doc['repeats']} run(s); nproc {m['nproc']}, "
        f"{m['broker'].split(' (')[0]} broker on the same machine",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _thousands(value: float) -> str:
    return f"{value / 1000:,.0f}k" if value >= 10_000 else f"{value / 1000:,.1f}k"


def _one(value: float) -> str:
    return f"{value:,.1f}"
