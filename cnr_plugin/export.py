"""Close the loop: a run's revisions and verdicts become training data for the policy (``cnr export``).

From any run :mod:`cnr_plugin.results` reads (a ``cnr judge`` folder, an lm-eval ``cnr_winrate``
output folder written with ``--log_samples``, or ``cnr revise`` output), optionally with people's
verdicts (``cnr annotate compare pull``), two files in the shapes axolotl and TRL train on:

* ``sft.jsonl``: ``{"messages": [system?, the prompt's turns, {"role": "assistant", "content":
  revision}], "meta": {...}}`` — axolotl's ``type: chat_template`` and TRL's SFT trainer read it;
  the revision is chosen by ``sft`` (``last``: the last revision the loop accepted; ``best``: the
  iteration the judge scored highest against the original, only if it won);
* ``preferences.jsonl``: ``{"prompt": [system?, turns...], "chosen": [{"role": "assistant", ...}],
  "rejected": [...], "meta": {...}}`` — TRL's conversational preference shape, and axolotl's DPO
  ``chat_template.default`` with ``field_messages: prompt``. A pair is made from a comparison of a
  revision with its original only where the verdict is decisive in both position orders (people's
  verdicts, where they judged the pair, decide instead: a majority that is not a tie), never from a
  text and itself; with probability verdicts the margin (|score - 0.5| x 2) is kept.

Every row keeps its item id, iteration and judge in ``meta``; ``export_counts.json`` says how many
items and pairs were kept and why the others were dropped, with the rules and the provenance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .errors import CnRError


class ExportError(CnRError):
    """A source that cannot be exported."""


class ExportRules(BaseModel):
    """What is kept (every rule is an option; the defaults drop what a user would not train on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sft: Literal["last", "best"] = Field("last", description="the SFT target: the last accepted revision, or the "
                                         "iteration the judge scored highest (only a win)")
    pairs: Literal["all", "last"] = Field("all", description="preference pairs from every iteration's comparison "
                                          "with the original, or from the last iteration only")
    min_margin: float = Field(0.0, ge=0, le=1, description="probability verdicts: drop pairs whose margin "
                              "|score - 0.5| x 2 is below this")


def conversation(item: Mapping[str, Any]) -> list[dict[str, str]]:
    """The prompt of an item as chat messages: its system text, then its turns (a text prompt is one user turn)."""
    prompt, system = item["prompt"], item.get("system")
    turns = [{"role": t["role"], "content": t["content"]} for t in prompt] if isinstance(prompt, list) else [
        {"role": "user", "content": prompt}]
    if system is not None and not any(t["role"] == "system" for t in turns):
        turns.insert(0, {"role": "system", "content": system})
    return turns


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft_row(item: Mapping[str, Any], rules: ExportRules, judge: str, source: str
            ) -> tuple[dict[str, Any] | None, str]:
    """The item's SFT row, or None and why it was dropped."""
    steps = [s for s in item.get("steps", []) if s.get("revision") is not None and s.get("accepted") is not False]
    if not steps:
        return None, "no usable revision"
    if rules.sft == "last":
        step = steps[-1]
    else:
        scores = {j["iteration"]: j["score"] for j in item.get("judgments", [])
                  if j["against"] == "original" and j["status"] == "ok" and j["score"] is not None}
        judged = [s for s in steps if s["iteration"] in scores]
        if not judged:
            return None, "not judged"
        step = max(judged, key=lambda s: (scores[s["iteration"]], -s["iteration"]))
        if scores[step["iteration"]] <= 0.5:
            return None, "no revision won against the original"
    if step["revision"] == item["response"]:
        return None, "revision identical to the original"
    return {"messages": conversation(item) + _assistant(step["revision"]),
            "meta": {"id": str(item["id"]), "iteration": int(step["iteration"]), "rule": rules.sft,
                     "judge": judge if rules.sft == "best" else None, "source": source}}, "kept"


def _decisive(judgment: Mapping[str, Any]) -> str | None:
    """'revision' or 'original' where both orders prefer the same text, else None."""
    fwd, bwd = judgment.get("forward") or {}, judgment.get("backward") or {}
    if fwd.get("winner") == "A" and bwd.get("winner") == "B":
        return "revision"
    if fwd.get("winner") == "B" and bwd.get("winner") == "A":
        return "original"
    return None


def preference_rows(item: Mapping[str, Any], rules: ExportRules, judge: str, source: str,
                    people: Mapping[str, Sequence[str]] | None = None) -> list[tuple[dict[str, Any] | None, str]]:
    """The item's preference pairs (each with why it was kept or dropped), one per comparison of an
    iteration's text with the original."""
    results = {s["iteration"]: s["result"] for s in item.get("steps", [])}
    judgments = {j["iteration"]: j for j in item.get("judgments", []) if j.get("against") == "original"}
    iterations = sorted(results)
    if rules.pairs == "last":
        iterations = iterations[-1:]
    out: list[tuple[dict[str, Any] | None, str]] = []
    for k in iterations:
        text, original = results[k], item["response"]
        margin, by = None, judge
        labels = (people or {}).get(f"{item['id']}@{k}")
        if text == original:
            out.append((None, "identical texts"))
            continue
        made = k  # the iteration that wrote this text: later ones without a new revision keep it
        while made > 1 and results.get(made - 1) == text:
            made -= 1
        if labels:  # people judged this pair: their majority decides
            by = "people"
            votes = Counter(labels)
            top, n = votes.most_common(1)[0]
            if top == "tie" or list(votes.values()).count(n) > 1:
                out.append((None, "people tied or split"))
                continue
            better = "revision" if top == "win" else "original"
        else:
            j = judgments.get(k)
            if j is None:
                out.append((None, "no verdict"))
                continue
            if j["status"] != "ok":
                out.append((None, "not judged (failed or unparsed verdict)"))
                continue
            decided = _decisive(j)
            if decided is None:
                fwd, bwd = j["forward"].get("winner"), j["backward"].get("winner")
                out.append((None, "tie" if fwd == bwd == "tie" else "position orders disagree"))
                continue
            better = decided
            if "probs" in j["forward"] and j.get("score") is not None:
                margin = abs(j["score"] - 0.5) * 2
                if margin < rules.min_margin:
                    out.append((None, f"margin below {rules.min_margin}"))
                    continue
        chosen, rejected = (text, original) if better == "revision" else (original, text)
        out.append(({"prompt": conversation(item), "chosen": _assistant(chosen), "rejected": _assistant(rejected),
                     "meta": {"id": str(item["id"]), "iteration": int(made), "judged_at": int(k), "judge": by,
                              "margin": margin,
                              "chosen_is": better, "source": source}}, "kept"))
    return out


def export(items: Sequence[Mapping[str, Any]], rules: ExportRules, *, judge: str, source: str,
           people: Mapping[str, Sequence[str]] | None = None
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """SFT rows, preference rows and the counts (kept, and dropped by reason) of ``items``.

    A pair that occurs twice (an item whose text did not change between iterations gives the same
    pair again) is kept once: the dedupe key is the whole pair (prompt, chosen, rejected)."""
    import json

    sft, prefs, seen = [], [], set()
    sft_counts: Counter[str] = Counter()
    pair_counts: Counter[str] = Counter()
    for item in items:
        row, why = sft_row(item, rules, judge, source)
        sft_counts[why] += 1
        if row is not None:
            sft.append(row)
        for pair, why in preference_rows(item, rules, judge, source, people):
            if pair is not None:
                key = json.dumps([pair["prompt"], pair["chosen"], pair["rejected"]], sort_keys=True)
                if key in seen:
                    why, pair = "duplicate pair", None
                seen.add(key)
            pair_counts[why] += 1
            if pair is not None:
                prefs.append(pair)
    counts = {"items": len(items),
              "sft": {"kept": sft_counts.pop("kept", 0), "dropped": dict(sorted(sft_counts.items()))},
              "preferences": {"kept": pair_counts.pop("kept", 0), "dropped": dict(sorted(pair_counts.items()))}}
    return sft, prefs, counts


def judge_of(path: Path) -> str:
    """The judge a run used, as its results name it (a ``cnr judge`` summary, or lm-eval's run options)."""
    import json

    from .results import ResultsError, read_json_object

    folder = path if path.is_dir() else path.parent
    summary = folder / "cnr_results.json"
    if summary.is_file():
        judge = read_json_object(summary).get("judge")
        return str(judge.get("judge", "judge")) if isinstance(judge, dict) else "judge"
    found = sorted(folder.rglob("samples_cnr_winrate_*.jsonl"))
    if found:
        first = found[-1].read_text(errors="replace").split("\n", 1)[0]
        if first.strip():
            try:
                run = json.loads(json.loads(first)["doc"]["cnr_run"])
                spec = run.get("judge", "default")
            except (ValueError, KeyError, TypeError, AttributeError):
                raise ResultsError(f"{found[-1]}:1: field 'doc.cnr_run': not the run options cnr_winrate writes "
                                   "(a JSON object in a string)") from None
            return spec if isinstance(spec, str) else str(spec.get("judge", "judge"))
    return "none"


def export_run(source: str | Path, out: str | Path, rules: ExportRules, *, human: str | Path | None = None,
               argv: Sequence[str] = ()) -> dict[str, Any]:
    """Read ``source`` (and people's verdicts), write ``sft.jsonl``, ``preferences.jsonl`` and
    ``export_counts.json`` in ``out``; returns the counts."""
    from .provenance import provenance
    from .results import ResultsError, read_human_labels, read_items, write_json, write_jsonl

    source, out = Path(source), Path(out)
    try:
        items = read_items(source)
    except (ResultsError, FileNotFoundError, KeyError) as exc:
        raise ExportError(f"{source}: not a run cnr export can read (a `cnr judge` folder, an lm-eval output "
                          f"folder with --log_samples, or `cnr revise` output): {exc}") from None
    people = read_human_labels(Path(human)) if human is not None else None
    if rules.min_margin > 0 and not any("probs" in j["forward"] for it in items for j in it["judgments"]):
        raise ExportError(f"--min-margin {rules.min_margin}: {source} holds no probability verdicts (its judge answered "
                          "A, B or tie, which have no margin); judge with `verdict: probability`, or leave "
                          "--min-margin out")
    if not any(it.get("steps") for it in items):
        raise ExportError(f"{source}: no revisions in it: not a run cnr export can read (a `cnr judge` folder, an "
                          "lm-eval output folder with --log_samples, or `cnr revise` output)")
    sft, prefs, counts = export(items, rules, judge=judge_of(source), source=str(source), people=people)
    write_jsonl(out / "sft.jsonl", sft)
    write_jsonl(out / "preferences.jsonl", prefs)
    counts = {**counts, "rules": rules.model_dump(), "source": str(source), "human": str(human) if human else None,
              "files": {"sft": str(out / "sft.jsonl"), "preferences": str(out / "preferences.jsonl")},
              "provenance": provenance({"argv": list(argv), **rules.model_dump()}, {}, repo=Path.cwd())}
    write_json(out / "export_counts.json", counts)
    return counts
