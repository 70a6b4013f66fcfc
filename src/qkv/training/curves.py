"""Learning curves from a run's metrics.jsonl: training loss and validation metric against step.

A pure function (records in, figure out) so the CLI, the comparison report and the docs can all use it.
"""

from __future__ import annotations

from typing import Any


def learning_curve(
    records: list[dict[str, Any]],
    metric: str,
    title: str = "",
    reference: float | None = None,
    reference_label: str = "published",
):
    """Figure with the training loss (left axis) and validation ``metric`` (right axis) per step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    train = [r for r in records if r.get("split") == "train"]
    valid = [r for r in records if r.get("split") == "valid" and metric in r]
    fig = Figure(figsize=(7, 4), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", lw=1, label="train loss")
    if "loss" in (valid[0] if valid else {}):
        ax.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", color="tab:cyan", label="valid loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    if metric != "loss" and valid:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in valid], [r[metric] for r in valid], "s-", color="tab:red", label=f"valid {metric}")
        if reference is not None:
            ax2.axhline(reference, color="tab:red", ls="--", lw=1, label=f"{reference_label} {metric} {reference}")
        ax2.set_ylabel(f"valid {metric}", color="tab:red")
        handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    else:
        if reference is not None:
            ax.axhline(reference, color="tab:red", ls="--", lw=1, label=f"{reference_label} {reference}")
        handles = ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
