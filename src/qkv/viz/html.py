"""Self-contained HTML pages: images inlined as base64 PNG, every piece of text HTML-escaped,
no scripts, no network -- a page can be mailed, archived or opened from disk."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from html import escape

from matplotlib.figure import Figure

from qkv.viz.recurrent_walkthrough import RecurrentWalkthrough
from qkv.viz.walkthrough import Walkthrough

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; line-height: 1.45; }
h1, h2, h3 { font-weight: 600; } table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.15em 0.5em; text-align: right; } th { background: #f3f3f3; }
td.tok, th.tok { text-align: left; font-family: monospace; } img { max-width: 100%; }
.vec { font-family: monospace; font-size: 0.85em; word-break: normal; overflow-wrap: normal; } .muted { color: #777; }
.bar { display: inline-block; height: 0.8em; background: #3b7dd8; }
"""


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def img(fig: Figure, alt: str, dpi: int = 100) -> str:
    """An ``<img>`` with the figure inlined as a base64 data URI."""
    data = base64.b64encode(figure_png(fig, dpi)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, body: str) -> str:
    """A whole HTML document; ``body`` must already be HTML (build it from escaped pieces)."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]], tok_cols: Sequence[int] = ()) -> str:
    """An HTML table; every cell is escaped (floats printed with 4 decimals)."""

    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else escape(str(v))

    head = "".join(f"<th{' class=tok' if i in tok_cols else ''}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=tok' if i in tok_cols else ''}>{cell(v)}</td>" for i, v in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def vector(values: Sequence[float], limit: int = 16) -> str:
    vals = list(values)
    text = ", ".join(f"{v:+.4f}" for v in vals[:limit]) + (", …" if len(vals) > limit else "")
    return f'<span class="vec">[{escape(text)}]</span> <span class="muted">({len(vals)} numbers)</span>'


def walkthrough_html(w: Walkthrough) -> str:
    """The walkthrough as an HTML fragment."""
    s = w.step
    rows = []
    for j, tok in enumerate(w.key_tokens):
        ok = bool(s.allowed[j])
        weight = float(s.weights[j])
        bar = f'<span class="bar" style="width:{weight * 12:.2f}em"></span>'
        rows.append(
            "<tr>"
            + f"<td>{j}</td><td class=tok>{escape(tok)}</td>"
            + (
                f"<td>{float(s.dots[j]):.4f}</td><td>{float(s.scaled[j]):.4f}</td>"
                if ok
                else '<td class="muted">masked</td><td></td>'
            )
            + f"<td>{weight:.4f}</td><td class=tok>{bar}</td></tr>"
        )
    scores = (
        "<table><thead><tr><th>j</th><th class=tok>key token</th><th>q·k<sub>j</sub></th>"
        "<th>÷ √d<sub>k</sub></th><th>softmax weight</th><th class=tok></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    notes = "".join(f"<p class=muted>{escape(n)}</p>" for n in w.notes)
    return (
        f"<h2>{escape(w.kind)} attention · layer {w.layer} · head {w.head} of {len(w.heads)} · "
        f"query token {w.token} <code>{escape(w.query_tokens[w.token])}</code></h2>"
        f"<ol><li>input vector <i>x</i>: {vector(w.x.tolist())}</li>"
        f"<li>query <i>q = x·W<sub>Q</sub> + b<sub>Q</sub></i>: {vector(s.q.tolist())}</li>"
        f"<li>every key <i>k<sub>j</sub></i> and value <i>v<sub>j</sub></i> from the key tokens' vectors "
        f"(key/value head {s.kv_head})</li>"
        f"<li>scores <i>q·k<sub>j</sub></i>, scaled by 1/√{w.d_k} = {w.scale:.5f}, softmax:{scores}</li>"
        f"<li>head output <i>Σ<sub>j</sub> w<sub>j</sub> v<sub>j</sub></i>: {vector(s.output.tolist())}</li>"
        f"<li>concatenation of the {len(w.heads)} heads: {vector(w.concat.tolist())}</li>"
        f"<li>output projection <i>concat·W<sub>O</sub> + b<sub>O</sub></i>: {vector(w.out.tolist())}</li></ol>"
        f"<p>Checked against the model's forward pass: max |difference| = {w.max_abs_error:.2e}.</p>{notes}"
    )


def recurrent_html(w: RecurrentWalkthrough) -> str:
    """The walkthrough of a recurrent (Bahdanau / Luong) attention as an HTML fragment."""
    rows = []
    for j, tok in enumerate(w.key_tokens):
        weight = float(w.weights[j])
        bar = f'<span class="bar" style="width:{weight * 12:.2f}em"></span>'
        score = f"{float(w.scores[j]):.4f}" if bool(w.allowed[j]) else "masked"
        rows.append(
            f"<tr><td>{j}</td><td class=tok>{escape(tok)}</td><td>{score}</td><td>{weight:.4f}</td>"
            f"<td class=tok>{bar}</td></tr>"
        )
    steps = [
        f"<li>query <i>s</i>, {escape(w.query_name)}: {vector(w.query.tolist())}</li>",
        f"<li>keys = values <i>h<sub>j</sub></i>: the encoder states of the {len(w.key_tokens)} source tokens</li>",
    ]
    if w.projected_query is not None:
        steps.append(f"<li><i>W s</i>: {vector(w.projected_query.tolist())}</li>")
        steps.append(
            "<li>for every source token: <i>U h<sub>j</sub> + b</i>, add <i>W s</i>, tanh, "
            "dot product with <i>v</i></li>"
        )
    steps.append(
        "<li>scores and softmax:<table><thead><tr><th>j</th><th class=tok>source token</th><th>score</th>"
        "<th>weight</th><th class=tok></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></li>"
    )
    steps.append(f"<li>context <i>c = Σ<sub>j</sub> w<sub>j</sub> h<sub>j</sub></i>: {vector(w.context.tolist())}</li>")
    return (
        f"<h2>{escape(w.title)} · query token {w.token} <code>{escape(w.query_tokens[w.token])}</code></h2>"
        f"<ol>{''.join(steps)}</ol>"
        f"<p>Checked against the model's forward pass: max |difference| = {w.max_abs_error:.2e}.</p>"
    )
