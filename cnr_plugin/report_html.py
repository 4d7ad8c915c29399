"""``cnr report --html``: one self-contained static page (no network, no CDN) for one run or several.

The page holds the table (raw and length-controlled win rates with intervals, and where the
verdicts carried probabilities the probability-weighted rate beside the one read from letters;
parse failures, failed and unparsed judgments), the plot (an inline PNG), and every item: the
prompt, the original, each iteration's critique and revision with a word diff against the text it
revised, and the verdicts in both orders with the judge's raw replies. Filters (won, lost, tied,
not judged, no usable revision) and a text search run in the page's own few lines of JavaScript; the counts
per outcome come from the same judgments as the table, so they add up to its ``n judged``.

It reads lm-eval output folders (``results_*.json`` with ``samples_cnr_winrate_*.jsonl``, written
with ``--log_samples``) and ``cnr judge`` output folders (``cnr_results.json`` with ``samples.jsonl``).
"""

from __future__ import annotations

import base64
import difflib
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .formats.base import prompt_text
from .results import NO_REVISION, OUTCOMES, Run, counts, item_outcomes, letter_winrate, no_revision, outcome, read_items
from .results import read_runs, samples_file


@dataclass
class RunItems:
    run: Run
    items: list[dict[str, Any]] = field(default_factory=list)


def load(paths: list[str | Path]) -> list[RunItems]:
    return [RunItems(run, read_items(s) if (s := samples_file(run.source)) else []) for run in read_runs(paths)]


def word_diff(before: str, after: str) -> str:
    a, b = before.split(" "), after.split(" ")
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f"<del>{html.escape(' '.join(a[i1:i2]))}</del>")
        if j2 > j1:
            parts.append(f"<ins>{html.escape(' '.join(b[j1:j2]))}</ins>")
    return " ".join(parts)


def _plot_png(runs: list[Run]) -> str:
    from .report import plot

    buf = io.BytesIO()
    plot(runs, buf)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(v: float | None) -> str:
    return "–" if v is None or v != v else f"{v:.3f}"


def _table(runs: list[RunItems]) -> str:
    head = ("<tr><th>run</th><th>iteration</th><th>win rate [95% CI]</th><th>LC win rate [95% CI]</th>"
            "<th>from letters</th>" + "".join(f"<th>{o}</th>" for o in OUTCOMES) + "</tr>")
    rows = []
    for ri in runs:
        for it, (wr, lo, hi) in sorted(ri.run.points.items()):
            lc = ri.run.lc.get(it)
            c = counts(ri.items, it)
            lw = letter_winrate(ri.items, it)
            rows.append(
                f"<tr data-run='{html.escape(ri.run.name)}' data-iteration='{it}'><td>{html.escape(ri.run.name)}</td>"
                f"<td>{it}</td><td>{_fmt(wr)} [{_fmt(lo)}, {_fmt(hi)}]</td>"
                f"<td>{_fmt(lc[0]) + f' [{_fmt(lc[1])}, {_fmt(lc[2])}]' if lc else '–'}</td>"
                f"<td>{_fmt(lw) if lw is not None else '–'}</td>"
                + "".join(f"<td class='n-{o.replace(' ', '-')}'>{c[o]}</td>" for o in OUTCOMES) + "</tr>")
    return f"<table id='summary'>{head}{''.join(rows)}</table>"


def _text_metrics_table(runs: list[RunItems]) -> str:
    """The judge's own figures of the texts by iteration (judge: ifeval: IFEval's accuracies)."""
    from .report import text_metric_rows

    rows = text_metric_rows([ri.run for ri in runs])
    if not rows:
        return ""
    width = max(len(cells) for _, _, cells in rows)
    head = ("<tr><th>run</th><th>figure</th><th>original</th>" +
            "".join(f"<th>iteration {k}</th>" for k in range(1, width)) + "</tr>")
    body = "".join(f"<tr><td>{html.escape(run)}</td><td>{html.escape(label)}</td>" +
                   "".join(f"<td>{html.escape(c)}</td>" for _, c in cells) + "</tr>" for run, label, cells in rows)
    return f"<h2>Instruction following</h2><table id='text-metrics'>{head}{body}</table>"


def _judge_table(runs: list[RunItems]) -> str:
    """How each run's judge behaved and what it cost (cnr_plugin.report.judge_rows)."""
    from .report import JUDGE_COLUMNS, judge_rows

    rows = judge_rows([ri.run for ri in runs])
    if not rows:
        return ""
    head = "<tr><th>judge of run</th>" + "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in JUDGE_COLUMNS) + "</tr>"
    body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
                   for name, cells in rows)
    return ("<h2>The judge</h2><p>consistent: the same text preferred in both position orders (1 = always); "
            "position A: decisive verdicts naming the text shown first (0.5 = no position bias); longer: decisive "
            "verdicts picking the longer text; ties and unparsed: shares of verdicts; calls, cached, tokens and "
            f"cost (at the judge's price) for the run.</p><table id='judge'>{head}{body}</table>")


def _verdict(v: dict[str, Any], shown_first: str) -> str:
    probs = v.get("probs")
    p = f" P(A)={probs['A']:.2f} P(B)={probs['B']:.2f} P(tie)={probs['tie']:.2f}" if probs else ""
    return (f"<div class='verdict'>{shown_first} shown as A: <b>{html.escape(str(v.get('winner')))}</b> "
            f"({html.escape(v.get('status', ''))}){p} <code>{html.escape(v.get('raw') or v.get('error') or '')}</code>"
            "</div>")


def _item(run: str, it: dict[str, Any]) -> str:
    prompt = prompt_text(it["prompt"])
    outcomes = item_outcomes(it)
    attrs = " ".join(f"data-o{k}='{o}'" for k, o in outcomes.items())
    norev = " ".join(f"data-n{s['iteration']}='1'" for s in it.get("steps", []) if no_revision(s))
    judgments = {(j["iteration"], j["against"]): j for j in it.get("judgments", [])}
    steps = []
    for s in it.get("steps", []):
        k = s["iteration"]
        j = judgments.get((k, "original"))
        verdicts = (_verdict(j["forward"], "revision") + _verdict(j["backward"], "original")) if j else ""
        score = f"score {_fmt(j['score'])} ({outcome(j['score'], j['status'])})" if j else "not judged"
        if s.get("stopped"):
            body = "<p class='muted'>stopped: not sent to the reviser again</p>"
        else:
            body = (f"<h5>critique</h5><pre>{html.escape(s.get('critique') or '(none)')}</pre>"
                    f"<h5>revision {f'({NO_REVISION}: the previous text is kept)' if s.get('revision') is None else ''}"
                    f"</h5><pre class='diff'>{word_diff(s.get('response', ''), s.get('result', ''))}</pre>")
        steps.append(f"<div class='step'><h4>iteration {k} — {score}"
                     f"{' — ' + html.escape(s['stop_signal']) + ' stop' if s.get('stop_signal') else ''}"
                     f"{' — rejected by the judge' if s.get('accepted') is False else ''}</h4>{body}{verdicts}</div>")
    return (f"<details class='item' data-run='{html.escape(run)}' {attrs} {norev}>"
            f"<summary><b>{html.escape(str(it['id']))}</b> {html.escape(prompt[:120])}</summary>"
            f"<h4>prompt</h4><pre>{html.escape(prompt)}</pre>"
            f"<h4>original response</h4><pre>{html.escape(it['response'])}</pre>{''.join(steps)}</details>")


STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}pre{white-space:pre-wrap;
background:#f6f6f6;padding:6px;margin:4px 0}del{background:#fdd}ins{background:#dfd;text-decoration:none}
.item{border:1px solid #ddd;margin:6px 0;padding:4px 8px}.muted{color:#777}.verdict{font-size:12px;margin:2px 0}
#controls button{margin-right:4px}#controls button.on{font-weight:bold;background:#def}"""

SCRIPT = """const st={o:'all',q:'',run:'',k:document.getElementById('iteration').value};
function apply(){let n=0;for(const d of document.querySelectorAll('details.item')){let ok=(!st.run||d.dataset.run===st.run);
if(ok&&st.o!=='all'){ok=st.o==='no usable revision'?d.hasAttribute('data-n'+st.k):d.getAttribute('data-o'+st.k)===st.o;}
if(ok&&st.q){ok=d.textContent.toLowerCase().includes(st.q);}d.style.display=ok?'':'none';if(ok)n++;}
document.getElementById('shown').textContent=n;}
for(const b of document.querySelectorAll('#controls button')){b.onclick=()=>{st.o=b.dataset.o;
for(const x of document.querySelectorAll('#controls button'))x.classList.toggle('on',x===b);apply();};}
document.getElementById('q').oninput=e=>{st.q=e.target.value.toLowerCase();apply();};
document.getElementById('iteration').onchange=e=>{st.k=e.target.value;apply();};
const r=document.getElementById('run');if(r)r.onchange=e=>{st.run=e.target.value;apply();};apply();"""


def render(paths: list[str | Path], title: str = "CnR results") -> str:
    runs = load(paths)
    iterations = sorted({k for ri in runs for k in ri.run.points})
    last = iterations[-1] if iterations else 1
    run_select = ("<select id='run'><option value=''>all runs</option>" + "".join(
        f"<option>{html.escape(ri.run.name)}</option>" for ri in runs) + "</select>") if len(runs) > 1 else ""
    controls = ("<div id='controls'>" + run_select + " iteration <select id='iteration'>" + "".join(
        f"<option{' selected' if k == last else ''}>{k}</option>" for k in iterations) + "</select> " + "".join(
        f"<button data-o='{o}'{' class=on' if o == 'all' else ''}>{o}</button>"
        for o in ("all", *OUTCOMES)) +
        " <input id='q' placeholder='search text' size='28'> <span id='shown'></span> shown</div>")
    items = "".join(_item(ri.run.name, it) for ri in runs for it in ri.items)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p>Win rate: the share of items whose revision the judge prefers to the original, in both position "
            "orders (a tie is half). LC: controlled for length (a logistic model on the length difference, read "
            "off at equal length). Won, tied, lost and not judged (a failed or unparsed verdict) add up to the items "
            f"of the iteration; {NO_REVISION} counts generations the loop could not read a revision from (it kept "
            "the text, which is judged as well).</p>"
            f"{_table(runs)}{_text_metrics_table(runs)}{_judge_table(runs)}<p><img alt='win rate by iteration' src='data:image/png;base64,{_plot_png([r.run for r in runs])}'>"
            f"</p><h2>Items</h2>{controls}{items}<script>{SCRIPT}</script></body></html>")


def write(paths: list[str | Path], out: str | Path, title: str = "CnR results") -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(paths, title), encoding="utf-8")
    return out
