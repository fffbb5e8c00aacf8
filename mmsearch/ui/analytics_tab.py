"""The Analytics tab: how search is used over the last days (feedback/analytics.py): searches per day, the top
queries, those with no results, only weak matches or no clicks, click-through rate, click positions, latency, and the
online comparison's wins and losses. Query text is shown in tables, as text."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from mmsearch.feedback import analytics
from mmsearch.feedback.access import JUDGING_OFF
from mmsearch.ui.events import Events

LISTS = {
    "top_queries": ("Top queries", ["query", "searches", "clicked"]),
    "no_result_queries": ("No results", ["query", "searches"]),
    "weak_match_queries": ("Only weak matches", ["query", "searches"]),
    "no_click_queries": ("No clicks", ["query", "searches"]),
}


def _figures(found: dict) -> str:
    lat = found["latency_ms"]
    ctr = found["click_through_rate"]
    pos = found["mean_click_position"]
    mixed = found["interleaving"]
    lines = [
        f"**{found['searches']:,}** searches in the last {found['days']:g} days · click-through rate "
        f"**{'-' if ctr is None else f'{ctr:.1%}'}** · {found['clicks']:,} clicks, mean position "
        f"**{'-' if pos is None else f'{pos:.2f}'}** · latency p50 {lat['p50'] or '-'} ms, p95 {lat['p95'] or '-'} ms, "
        f"p99 {lat['p99'] or '-'} ms"
    ]
    if mixed["searches"]:
        p = mixed["p_value"]
        more = mixed["more_searches_needed"]
        lines.append(
            f"Interleaving: {mixed['searches']:,} searches · A (served) won {mixed['wins_a']}, B won "
            f"{mixed['wins_b']}, {mixed['ties']} ties · sign test p = {'-' if p is None else f'{p:.4f}'} · "
            + (
                "a decision at 5% is reached"
                if more == 0
                else "no difference seen yet"
                if more is None
                else f"about {more:,} more searches for a decision at 5%"
            )
        )
    return "\n\n".join(lines)


def _per_day_plot(rows: list[dict]):
    """Searches per day as bars (matplotlib: Gradio's own bar plot drew nothing for a single day)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.4), dpi=100)
    days = [r["day"] for r in rows]
    ax.bar(days, [r["searches"] for r in rows], color="#6366f1")
    ax.set_ylabel("searches")
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    if not rows:
        ax.text(0.5, 0.5, "no searches in these days", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    plt.close(fig)
    return fig


def usage_view(events: Events, days: float, request: gr.Request = None) -> tuple:
    """The tab's outputs for the last ``days``: the figures, the plot per day, the four lists and interleaving."""

    def work():
        s, e = events.feedback.usage(float(days))
        found = analytics.summary(s, e, float(days))
        per_day = _per_day_plot(found["searches_per_day"])
        tables = [pd.DataFrame(found[key], columns=cols) for key, (_, cols) in LISTS.items()]
        mixed = pd.DataFrame(found["interleaving"]["per_query"], columns=["query", "wins_a", "wins_b", "ties"])
        return (_figures(found), per_day, *tables, mixed), []

    return events.run("analytics", request, work, title="Cannot show analytics")


def analytics_tab(events: Events) -> None:
    feedback = events.feedback

    def refresh(days: float, request: gr.Request = None) -> tuple:
        return usage_view(events, days, request)

    with gr.Tab("Analytics", elem_id="mm-analytics") as tab:
        if not feedback.access.enabled:
            gr.Markdown(JUDGING_OFF)
            return
        with gr.Row():
            days = gr.Slider(1, 90, value=7, step=1, label="Days", scale=3)
            button = gr.Button("Refresh", variant="primary", scale=1, elem_id="mm-analytics-refresh")
        figures = gr.Markdown(elem_id="mm-analytics-figures")
        per_day = gr.Plot(label="Searches per day", elem_id="mm-analytics-per-day")
        tables = []
        with gr.Row():
            for title, cols in list(LISTS.values())[:2]:
                tables.append(gr.Dataframe(headers=cols, label=title, interactive=False, wrap=True))
        with gr.Row():
            for title, cols in list(LISTS.values())[2:]:
                tables.append(gr.Dataframe(headers=cols, label=title, interactive=False, wrap=True))
        mixed = gr.Dataframe(
            headers=["query", "wins_a", "wins_b", "ties"], label="Interleaving per query", interactive=False
        )
        outputs = [figures, per_day, *tables, mixed]
        button.click(refresh, days, outputs, api_name="analytics")
        tab.select(refresh, days, outputs, api_visibility="private")  # what it holds, as it opens
