"""The miniature CnR reproduction on IFEval (issue 25): a verifier nobody here wrote, real model
responses, instruction types never trained on. On a 2-core CPU.

1. Prompts: a base task (a genre and a topic; train and test topics disjoint) plus 1-3 instructions
   whose text is written by IFEval's own registry (``build_description``, seeded), combined only
   where the registry's INSTRUCTION_CONFLICTS allows.
2. Original responses: SmolLM2-135M-Instruct (greedy, chat template) answers every prompt.
3. Training records: the critique comes from IFEval's checker (pros: instructions followed; cons:
   each one not followed, in words); the revision from deterministic per-instruction fixers
   (:data:`FIXERS`), kept only if the checker says it follows every instruction. Besides the
   records that fix everything: records that fix one con at a time (a chain of steps, each one
   record), and records of a text that already follows everything, left as it is.
4. ``axolotl train`` the reviser (LoRA, the mini-reproduction config); ``lm_eval --tasks
   cnr_winrate`` with ``judge: ifeval`` on 200 held-out prompts, 5 iterations, the untrained model
   as control on the same items (one solved example before each request); IFEval's prompt- and
   instruction-level accuracy per iteration, paired differences, per instruction type.
5. Levers and generalisation: ``stop_when: no_cons``; a held-out-type run (train on the types in
   TRAIN_TYPES only, test on HELD_OUT_TYPES only).

    python benchmarks/ifeval_mini.py [--test 200] [--train-prompts 400] [--iterations 5] [--steps 120]

Writes results/ifeval_mini/summary.json (provenance, every figure), the prompts with the model's
responses and the training records (gzip), and each run's lm-eval samples (gzip) beside it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import policy_mini as pm  # noqa: E402
import reproduce_mini as rm  # noqa: E402
from _common import write_jsonl, write_jsonl_gz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

GENRES = ("Write a short story about {}.", "Write a short poem about {}.", "Write a product description for {}.",
          "Explain {} to a ten-year-old.", "Write the opening of a blog post about {}.", "Give some advice about {}.",
          "Write a short email to a friend about {}.", "Describe {} in a few sentences.")
TOPICS = ("a lighthouse", "the first day of school", "a rainy city", "a lost cat", "coffee", "mountain hiking",
          "a robot gardener", "the ocean at night", "a bakery", "learning to swim", "a train journey",
          "an old library", "winter mornings", "a birthday party", "a desert", "recycling", "a museum visit",
          "a broken phone", "a village market", "honey bees", "the moon", "a football match", "a new neighbour",
          "a thunderstorm", "saving money", "a chess game", "a volcano", "a summer camp", "a bicycle", "tea",
          "a job interview", "a garden in spring", "space travel", "a snowman", "a fishing trip", "a piano lesson",
          "a haunted house", "a science fair", "a lemonade stand", "an island", "a kite", "a dentist visit",
          "a forest fire", "a street musician", "a hot air balloon", "a pizza", "a rainy weekend", "a dragon",
          "a city park", "a homework deadline", "sunflowers", "a power cut", "a camping tent", "a lost wallet",
          "a wedding", "a dog show", "the internet", "a night sky", "a cooking class", "a river")

#: the instruction types with a deterministic fixer, in the order fixers are applied (structure
#: first, then what is added at the start or the end, then what changes every character)
FIX_ORDER = ("keywords:forbidden_words", "length_constraints:number_words", "keywords:frequency",
             "keywords:existence", "detectable_content:number_placeholders",
             "detectable_format:number_highlighted_sections", "detectable_format:number_bullet_lists",
             "length_constraints:number_paragraphs", "detectable_format:multiple_sections", "detectable_format:title",
             "combination:repeat_prompt", "detectable_format:constrained_response", "detectable_content:postscript",
             "startend:end_checker", "change_case:english_lowercase", "change_case:english_capital",
             "punctuation:no_comma", "detectable_format:json_format", "startend:quotation")
#: the held-out-type run: train on these, test on the others
HELD_OUT_TYPES = ("change_case:english_capital", "startend:quotation", "detectable_content:postscript",
                  "detectable_content:number_placeholders", "detectable_format:multiple_sections",
                  "detectable_format:constrained_response")
TRAIN_TYPES = tuple(t for t in FIX_ORDER if t not in HELD_OUT_TYPES)
#: IFEval's types with no fixer here (the reviser never sees a record of them; no test prompt uses them)
NOT_FIXED = ("language:response_language", "keywords:letter_frequency", "length_constraints:nth_paragraph_first_word",
             "combination:two_responses")
#: the types IFEval's checkers cannot check offline (nltk punkt data): cnr_plugin.judges.ifeval.NEEDS_PUNKT
PLACEHOLDERS = ("name", "date", "place", "time", "address", "phone")


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", text) if p.strip()]
    return [re.sub(r"^(\*+|-|SECTION \d+|Section \d+)\s*", "", p).strip() for p in parts if p.strip("*- ")] or [text]


def groups(text: str, n: int) -> list[str]:
    """``text``'s sentences in ``n`` non-empty groups (padded where there are fewer sentences)."""
    s = sentences(text)
    s += ["There is more to say."] * max(0, n - len(s))
    size, extra = divmod(len(s), n)
    out, i = [], 0
    for g in range(n):
        take = size + (1 if g < extra else 0)
        out.append(" ".join(s[i:i + take]))
        i += take
    return out


def _word(w: str) -> str:
    return r"\b" + re.escape(w) + r"\b"


def _frequency(t: str, kw: dict, c: dict) -> str:
    word, n, relation = kw["keyword"], kw["frequency"], kw["relation"]
    have = len(re.findall(_word(word), t, flags=re.IGNORECASE))
    if relation == "at least":
        return t + "".join(f" It is about {word}." for _ in range(max(0, n - have)))
    keep = [0]

    def drop(m: re.Match) -> str:
        keep[0] += 1
        return m.group(0) if keep[0] < n else "it"
    return re.sub(_word(word), drop, t, flags=re.IGNORECASE)


def _existence(t: str, kw: dict, c: dict) -> str:
    missing = [k for k in kw["keywords"] if not re.search(_word(k), t, flags=re.IGNORECASE)]
    return t + (f" It also brings to mind {' and '.join(missing)}." if missing else "")


def _placeholders(t: str, kw: dict, c: dict) -> str:
    need = kw["num_placeholders"] - len(re.findall(r"\[.*?\]", t))
    return t + (" Details: " + " ".join(f"[{p}]" for p in (PLACEHOLDERS * 3)[:need]) + "." if need > 0 else "")


def _highlights(t: str, kw: dict, c: dict) -> str:
    s = sentences(t)
    n = kw["num_highlights"]
    s += ["Note."] * max(0, n - len(s))
    return " ".join(f"*{x}*" if i < n else x for i, x in enumerate(s))


FIXERS: dict[str, Callable[[str, dict, dict], str]] = {
    "keywords:forbidden_words": lambda t, kw, c: re.sub(
        "|".join(_word(w) for w in kw["forbidden_words"]) + r"\s?", "", t, flags=re.IGNORECASE),
    "length_constraints:number_words": lambda t, kw, c: " ".join(t.split()[:max(5, kw["num_words"] - 20)]),
    "keywords:frequency": _frequency,
    "keywords:existence": _existence,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:number_bullet_lists": lambda t, kw, c: "\n".join(
        "* " + g for g in groups(t, kw["num_bullets"])),
    "length_constraints:number_paragraphs": lambda t, kw, c: "\n***\n".join(groups(t, kw["num_paragraphs"])),
    "detectable_format:multiple_sections": lambda t, kw, c: "\n\n".join(
        f"{kw['section_spliter']} {i + 1}\n{g}" for i, g in enumerate(groups(t, kw["num_sections"]))),
    "detectable_format:title": lambda t, kw, c: f"<<{c['title']}>>\n{t}",
    "combination:repeat_prompt": lambda t, kw, c: f"{kw['prompt_to_repeat']}\n{t}",
    "detectable_format:constrained_response": lambda t, kw, c: f"{t}\nMy answer is maybe.",
    "detectable_content:postscript": lambda t, kw, c: f"{t}\n\n{kw['postscript_marker']} Thank you for reading.",
    "startend:end_checker": lambda t, kw, c: f"{t.rstrip()}\n{kw['end_phrase']}",
    "change_case:english_lowercase": lambda t, kw, c: t.lower(),
    "change_case:english_capital": lambda t, kw, c: t.upper(),
    "punctuation:no_comma": lambda t, kw, c: re.sub(r"\s*,", "", t),
    "detectable_format:json_format": lambda t, kw, c: json.dumps({"answer": t}),
    "startend:quotation": lambda t, kw, c: '"' + t.strip().strip('"') + '"',
}
assert set(FIXERS) == set(FIX_ORDER)


def requirement(iid: str, kw: dict) -> str:
    """What an instruction asks for, in a few words (the critique's pros and cons)."""
    k = kw
    return {
        "keywords:forbidden_words": lambda: f"none of the words {', '.join(k.get('forbidden_words', []))}",
        "length_constraints:number_words": lambda: f"{k.get('relation')} {k.get('num_words')} words",
        "keywords:frequency": lambda: f"the word '{k.get('keyword')}' {k.get('relation')} {k.get('frequency')} times",
        "keywords:existence": lambda: f"the keywords {', '.join(k.get('keywords', []))}",
        "detectable_content:number_placeholders": lambda: f"at least {k.get('num_placeholders')} placeholders "
                                                          "in square brackets",
        "detectable_format:number_highlighted_sections": lambda: f"at least {k.get('num_highlights')} sections "
                                                                 "highlighted with *",
        "detectable_format:number_bullet_lists": lambda: f"exactly {k.get('num_bullets')} bullet points",
        "length_constraints:number_paragraphs": lambda: f"exactly {k.get('num_paragraphs')} paragraphs divided by ***",
        "detectable_format:multiple_sections": lambda: f"{k.get('num_sections')} sections, each starting with "
                                                       f"{k.get('section_spliter')} and its number",
        "detectable_format:title": lambda: "a title in double angular brackets",
        "combination:repeat_prompt": lambda: "the request repeated word for word first",
        "detectable_format:constrained_response": lambda: "one of the answers 'My answer is yes.', 'My answer is "
                                                          "no.', 'My answer is maybe.'",
        "detectable_content:postscript": lambda: f"a postscript at the end starting with {k.get('postscript_marker')}",
        "startend:end_checker": lambda: f"the exact final phrase \"{k.get('end_phrase')}\"",
        "change_case:english_lowercase": lambda: "only lowercase letters",
        "change_case:english_capital": lambda: "only capital letters",
        "punctuation:no_comma": lambda: "no commas at all",
        "detectable_format:json_format": lambda: "the whole answer wrapped in JSON",
        "startend:quotation": lambda: "the whole answer wrapped in double quotation marks",
    }[iid]()


def build_prompts(rng: random.Random, topics: list[str], types: tuple[str, ...], n: int, prefix: str) -> list[dict]:
    """``n`` IFEval-style rows (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``), each a base
    task from ``topics`` plus 1-3 non-conflicting instructions of ``types`` written by the registry."""
    from cnr_plugin.judges.ifeval import checkers

    reg = checkers().registry
    rows: list[dict] = []
    seen: set[tuple] = set()
    while len(rows) < n:
        topic, genre = rng.choice(topics), rng.choice(GENRES)
        base = genre.format(topic)
        chosen: list[str] = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            free = [t for t in types if t not in chosen and all(
                t not in reg.INSTRUCTION_CONFLICTS.get(c, set()) and c not in reg.INSTRUCTION_CONFLICTS.get(t, set())
                for c in chosen)]
            if free:
                chosen.append(rng.choice(free))
        key = (base, tuple(sorted(chosen)))
        if key in seen:
            continue
        seen.add(key)
        texts, kwargs = [base], []
        for iid in chosen:
            inst = reg.INSTRUCTION_DICT[iid](iid)
            random.seed(rng.random())  # build_description draws from the module's random: seeded from ours
            given = {"prompt_to_repeat": base} if iid == "combination:repeat_prompt" else \
                {"num_words": rng.randint(25, 45), "relation": "less than"} if iid == "length_constraints:number_words" \
                else {}
            texts.append(inst.build_description(**given))
            kwargs.append({k: v for k, v in (inst.get_instruction_args() or {}).items() if v is not None})
        rows.append({"key": f"{prefix}{len(rows):04d}", "prompt": " ".join(texts), "instruction_id_list": chosen,
                     "kwargs": kwargs, "topic": topic, "base": base})
    return rows


def all_prompts(seed: int, n_train: int, n_test: int, n_held: int) -> tuple[list[str], list[dict], list[dict],
                                                                             list[dict]]:
    """The run's train topics and its train, test and held-out-type prompts, drawn from ``seed``
    (train and test topics disjoint; the lever runs rebuild the same test prompts this way)."""
    rng = random.Random(seed)
    topics = list(TOPICS)
    rng.shuffle(topics)
    train_topics, test_topics = topics[:30], topics[30:]
    train_rows = build_prompts(rng, train_topics, FIX_ORDER, n_train, "train")
    test_rows = build_prompts(rng, test_topics, FIX_ORDER, n_test, "test")
    held_rows = build_prompts(rng, test_topics, HELD_OUT_TYPES, n_held, "heldtype")
    assert not {r["base"] for r in train_rows} & {r["base"] for r in test_rows + held_rows}
    return train_topics, train_rows, test_rows, held_rows


class Checker:
    """IFEval's strict test through the ifeval judge (lm-eval's checkers, never copied)."""

    def __init__(self) -> None:
        from cnr_plugin.judges import load_judge_config, make_judge
        from cnr_plugin.judges.ifeval import IFEvalJudge

        made = make_judge(load_judge_config("ifeval"))
        assert isinstance(made, IFEvalJudge)
        self.judge: IFEvalJudge = made

    def follows(self, row: dict, text: str) -> list[bool]:
        return self.judge.follows(row["prompt"], text, meta(row), loose=False)


def trained_once(n: int, steps: int, data: Path, base: Path, tag: str, full: bool = False) -> Path:
    """``reproduce_mini.train``, skipped where this very training (records, steps, LoRA or full,
    base model) already finished: a re-run of the script then costs its evaluations' cached
    generations only."""
    import hashlib

    stamp = {"records": hashlib.sha256(data.read_bytes()).hexdigest(), "n": n, "steps": steps, "full": full,
             "base": str(base)}
    out = rm.RUNS / f"trained-{n}-{tag}"
    done = out.with_name(out.name + ".done.json")  # beside, not inside: the folder's files are the cache key
    weights = out / ("model.safetensors" if full else "adapter_model.safetensors")
    if done.exists() and json.loads(done.read_text()) == stamp and weights.exists():
        print(f"   {out.name}: trained already ({steps} steps on these {n} records)", flush=True)
        return out
    out = rm.train(n, steps, data, base, full=full, tag=tag)
    done.write_text(json.dumps(stamp))
    return out


def meta(row: dict) -> dict:
    return {"instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"]}


def fix(row: dict, text: str, which: list[str]) -> str:
    ctx = {"title": row["topic"].removeprefix("a ").removeprefix("an ").removeprefix("the ").title()}
    for iid in FIX_ORDER:
        if iid in which:
            text = FIXERS[iid](text, row["kwargs"][row["instruction_id_list"].index(iid)], ctx)
    return text


def critique(row: dict, followed: list[bool]) -> tuple[list[str], list[str]]:
    pairs = list(zip(row["instruction_id_list"], row["kwargs"], followed))
    pros = [f"It has {requirement(i, k)}, as asked." for i, k, ok in pairs if ok] or ["It answers the request."]
    cons = [f"It must have {requirement(i, k)}." for i, k, ok in pairs if not ok]
    return pros, cons


def records(rows: list[dict], check: Checker, rng: random.Random, chain_share: float, right_share: float) -> tuple[
        list[dict], dict]:
    """Training records from the model's responses (see the module's docstring) and what was kept."""
    out: list[dict] = []
    counts = {"prompts": len(rows), "full": 0, "one_con_steps": 0, "already_right": 0, "not_fixable": 0}

    def record(row: dict, response: str, followed: list[bool], revision: str) -> dict:
        pros, cons = critique(row, followed)
        return {"id": f"{row['key']}-{len(out) + len(chain)}", "prompt": row["prompt"], "response": response, "pros": pros,
                "cons": cons, "revision": revision, "meta": meta(row)}

    for row in rows:
        chain: list[dict] = []  # one con at a time: this prompt's steps
        response = row["response"]
        followed = check.follows(row, response)
        if all(followed):
            out.append(record(row, response, followed, response))
            counts["already_right"] += 1
            continue
        fixed = fix(row, response, [i for i, ok in zip(row["instruction_id_list"], followed) if not ok])
        if not all(check.follows(row, fixed)):
            counts["not_fixable"] += 1
            continue
        if rng.random() < chain_share and sum(not ok for ok in followed) > 1:
            text, now = response, followed
            for _ in range(len(followed) + 1):  # one con at a time, in the fixers' order; each step one record
                if all(now):
                    break
                first = next(i for i in FIX_ORDER if i in row["instruction_id_list"]
                             and not now[row["instruction_id_list"].index(i)])
                step = fix(row, text, [first])
                after = check.follows(row, step)
                if not after[row["instruction_id_list"].index(first)] or any(a < b for a, b in zip(after, now)):
                    # this fixer alone breaks another instruction: this step fixes all that is left
                    step = fix(row, text, [i for i, ok in zip(row["instruction_id_list"], now) if not ok])
                    after = check.follows(row, step)
                chain.append(record(row, text, now, step))
                text, now = step, after
            if not all(now):
                chain = []
        if chain:
            out += chain
            counts["one_con_steps"] += len(chain)
            chain = []
        else:
            out.append(record(row, response, followed, fixed))
            counts["full"] += 1
        if rng.random() < right_share:  # the fixed text, critiqued and left as it is
            out.append(record(row, fixed, check.follows(row, fixed), fixed))
            counts["already_right"] += 1
    rng.shuffle(out)
    counts["records"] = len(out)
    return out, counts


def answered(rows: list[dict], base: Path, cache: Path) -> list[dict]:
    """The rows with SmolLM2's greedy responses (kept in ``cache``: a re-run answers nothing twice)."""
    done = {r["key"]: r["response"] for r in map(json.loads, cache.read_text().splitlines())} if cache.exists() else {}
    todo = [r for r in rows if r["key"] not in done]
    if todo:
        for r, text in zip(todo, pm.answer(base, None, todo)):
            done[r["key"]] = text or "(no answer)"
        write_jsonl(cache, [{"key": k, "response": v} for k, v in done.items()])
    return [{**r, "response": done[r["key"]]} for r in rows]


def responses_file(rows: list[dict], path: Path) -> Path:
    return write_jsonl(path, [{"id": r["key"], "prompt": r["prompt"], "response": r["response"],
                               "meta": meta(r)} for r in rows])


def figures(result: dict, iterations: int) -> dict:
    """Per iteration: win rate and interval (from 1), IFEval's four accuracies (from 0, the originals)."""
    res = json.loads(next(Path(result["results_dir"]).rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    out: dict[int, dict] = {}
    for k in range(iterations + 1):
        e = {m: res.get(f"ifeval_{m}_iter{k},judged") for m in ("prompt_strict", "inst_strict", "prompt_loose",
                                                                  "inst_loose")}
        if k:
            e |= {"winrate": result[f"iter{k}"]["winrate"], "ci95": result[f"iter{k}"]["ci95"],
                  "stopped": res.get(f"stopped_iter{k},judged", 0.0)}
        out[k] = e
    return out


def per_item(rows: list[dict], check: Checker, iterations: int) -> dict[str, dict[int, list[bool]]]:
    """Each item's strict follow list at every iteration (0 = the original response)."""
    from cnr_plugin.results import item_from_lm_eval

    out = {}
    for s in rows:
        it = item_from_lm_eval(s)
        row = {"prompt": it["prompt"], **it["meta"]}
        texts = {0: it["response"]} | {st["iteration"]: st["result"] for st in it["steps"]}
        out[it["id"]] = {k: check.follows(row, texts[k]) for k in range(iterations + 1) if k in texts}
    return out


def by_type(follow: dict[str, dict[int, list[bool]]], ids: dict[str, list[str]], iterations: int) -> dict[str, dict]:
    """Per instruction type: how many test instructions, and the share followed at iteration 0 and after each."""
    acc: dict[str, dict[int, list[bool]]] = {}
    for item, by_k in follow.items():
        for k, fl in by_k.items():
            for iid, ok in zip(ids[item], fl):
                acc.setdefault(iid, {}).setdefault(k, []).append(ok)
    return {iid: {"n": len(v[0]), **{str(k): round(sum(v[k]) / len(v[k]), 3) for k in range(iterations + 1) if k in v}}
            for iid, v in sorted(acc.items())}


def why(rows: list[dict], follow: dict[str, dict[int, list[bool]]]) -> dict[str, dict]:
    """What each iteration did, to say why a curve rises or does not: of the items, the share whose
    text the step changed; of those the checker says still miss an instruction before the step, the
    share whose critique names no con (the reviser believes it is done), names a con but leaves the
    text unchanged, changes it and fixes it, or changes it and still misses one. ``follow``:
    :func:`per_item` of the same rows (the step's input is the text of the iteration before)."""
    from cnr_plugin.formats.base import says_no_cons
    from cnr_plugin.results import item_from_lm_eval

    out: dict[int, dict[str, int]] = {}
    for s in rows:
        it = item_from_lm_eval(s)
        for st in it["steps"]:
            k = st["iteration"]
            c = out.setdefault(k, dict.fromkeys(
                ("items", "changed", "failing_before", "says_no_cons", "con_named_text_unchanged", "fixed",
                 "changed_still_failing"), 0))
            c["items"] += 1
            c["changed"] += st["result"] != st["response"]
            if all(follow[it["id"]][k - 1]):
                continue
            c["failing_before"] += 1
            if st["result"] == st["response"]:
                c["says_no_cons" if says_no_cons(st.get("critique")) else "con_named_text_unchanged"] += 1
            else:
                c["fixed" if all(follow[it["id"]][k]) else "changed_still_failing"] += 1
    return {str(k): {"items": v["items"], "changed": round(v["changed"] / v["items"], 3),
                     "failing_before": v["failing_before"],
                     **{x: round(v[x] / max(1, v["failing_before"]), 3) for x in
                        ("says_no_cons", "con_named_text_unchanged", "fixed", "changed_still_failing")}}
            for k, v in sorted(out.items())}


def kept_samples(results: Path, run: dict) -> list[dict]:
    """A run's samples as kept beside its summary (``reproduce_mini.keep_samples``), read back in
    lm-eval's sample shape (``doc``, ``filtered_resps``)."""
    with gzip.open(results / run["samples"], "rt") as f:
        return [{"doc": r["doc"], "filtered_resps": r["resps"]} for r in map(json.loads, f)]


def judge_file() -> Path:
    """The judge YAML of every IFEval run here (``judge: ifeval``), written into the working folder."""
    path = rm.RUNS / "ifeval.yaml"
    path.write_text("judge: ifeval\n")
    return path


def analyse(results: Path) -> None:
    """Add :func:`why` for every run to ``summary.json`` from the samples kept beside it (run at the
    end of a run; ``--analyse`` alone re-derives it from the kept samples without generating)."""
    from cnr_plugin.provenance import provenance

    path = results / "summary.json"
    summary = json.loads(path.read_text())
    summary["analysis_provenance"] = provenance({"analyse": True, "results": str(results)}, {}, repo=ROOT)
    check = Checker()
    for run in summary["runs"].values():
        rows = kept_samples(results, run)
        last = max(int(k) for k in run["iterations"])
        follow = per_item(rows, check, last)
        run["why"] = why(rows, follow)
        run["rise_after_1"] = paired(follow, follow, last, 1)  # the same items at the last iteration vs at 1
    path.write_text(json.dumps(summary, indent=2))


def paired(follow_a: dict, follow_b: dict, k: int, k_b: int | None = None) -> dict:
    """Paired difference of prompt-level strict accuracy, a at iteration ``k`` minus b at ``k_b``
    (default ``k``), over the items both have."""
    from cnr_plugin.evaluation import paired_difference

    k_b = k if k_b is None else k_b
    return paired_difference({i: float(all(v[k])) for i, v in follow_a.items() if k in v},
                             {i: float(all(v[k_b])) for i, v in follow_b.items() if k_b in v})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--test", type=int, default=200, help="held-out prompts (test topics, every fixable type)")
    ap.add_argument("--held-out-test", type=int, default=100, help="prompts of the held-out types only")
    ap.add_argument("--train-prompts", type=int, default=400)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--held-out-iterations", type=int, default=3)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--held-out-steps", type=int, default=60, help="training steps of the held-out-type reviser")
    ap.add_argument("--chain-share", type=float, default=0.5, help="share of prompts taught one con at a time")
    ap.add_argument("--right-share", type=float, default=0.2, help="share of fixed texts also taught as 'leave it'")
    ap.add_argument("--max-gen-toks", type=int, default=192)
    ap.add_argument("--response-toks", type=int, default=80, help="the original responses' length limit")
    ap.add_argument("--skip", nargs="*", default=[], choices=["stop-lever", "held-out-types"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--analyse", action="store_true", help="only add the per-iteration diagnosis to an existing "
                    "summary.json, from its kept samples")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "ifeval_mini")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "ifeval_mini")
    rm.add_model_args(ap)
    a = ap.parse_args()
    if a.analyse:
        analyse(a.results)
        return 0
    rm.MAX_GEN_TOKS, pm.MAX_NEW_TOKENS, rm.DEVICE = a.max_gen_toks, a.response_toks, a.device
    rm.use_workdir(a.workdir.resolve())
    t0 = time.time()
    from cnr_plugin.judges.ifeval import NEEDS_PUNKT, uncheckable
    from cnr_plugin.provenance import provenance

    started = provenance(vars(a), {"prompts": a.seed, "records": a.seed, "axolotl": 42}, repo=ROOT)
    timing: dict[str, int] = {}
    check = Checker()
    judge = judge_file()
    base = rm.base_model(a.base)

    _train_topics, train_rows, test_rows, held_rows = all_prompts(a.seed, a.train_prompts, a.test, a.held_out_test)

    print(f"== SmolLM2-135M-Instruct answers {len(train_rows) + len(test_rows) + len(held_rows)} prompts", flush=True)
    t = time.time()
    answers = answered(train_rows + test_rows + held_rows, base, rm.RUNS / "answers.jsonl")
    timing["answer"] = round(time.time() - t)
    train_rows = answers[:len(train_rows)]
    test_rows = answers[len(train_rows):len(train_rows) + len(test_rows)]
    held_rows = answers[len(train_rows) + len(test_rows):]
    data = rm.RUNS / "data"
    data.mkdir(exist_ok=True)
    test_file = responses_file(test_rows, data / "test_responses.jsonl")
    held_file = responses_file(held_rows, data / "held_out_type_responses.jsonl")

    recs, counts = records(train_rows, check, random.Random(f"{a.seed}-records"), a.chain_share, a.right_share)
    write_jsonl(data / "train.jsonl", recs)
    only_a = [r for r in train_rows if set(r["instruction_id_list"]) <= set(TRAIN_TYPES)]
    recs_a, counts_a = records(only_a, check, random.Random(f"{a.seed}-records"), a.chain_share, a.right_share)
    write_jsonl(data / "train_train_types.jsonl", recs_a)
    print(f"   records: {counts}; train types only: {counts_a}", flush=True)

    runs: dict[str, dict] = {}
    follow: dict[str, dict] = {}
    ids = {r["key"]: r["instruction_id_list"] for r in test_rows + held_rows}
    samples_dir = a.results / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)

    def evaluate(name: str, model_args: str, path: Path, n: int, iterations: int, fewshot: int,
                 stop_when: str = "never") -> None:
        t = time.time()
        result = rm.evaluate(name, model_args, path, n, iterations, fewshot, stop_when, judge=judge)
        timing[f"eval-{name}"] = round(time.time() - t)
        rows = rm.samples(Path(result["results_dir"]))
        follow[name] = per_item(rows, check, iterations)
        runs[name] = {"iterations": figures(result, iterations), "n_items": result["n_items"],
                      "n_revision_parse_failures": result["n_revision_parse_failures"],
                      "by_type": by_type(follow[name], ids, iterations), "stop_when": stop_when, "fewshot": fewshot}
        rm.keep_samples(rows, samples_dir / f"{name}.jsonl.gz")
        runs[name]["samples"] = f"samples/{name}.jsonl.gz"
        write_summary()

    def write_summary() -> None:
        for name, run in runs.items():
            control = "control-held-out-types" if name.endswith("held-out-types") else "control"
            if name != control and control in follow:
                its = run["iterations"]
                run["prompt_strict_minus_control"] = {k: paired(follow[name], follow[control], k) for k in its
                                                      if k in next(iter(follow[control].values()))}
        summary = {
            "provenance": started,
            "question": "does a SmolLM2-135M reviser trained on CnR records whose critiques come from IFEval's checkers "
                        "make real model responses follow IFEval's instructions better, iteration after iteration, than "
                        "the untrained model as reviser on the same items; and on instruction types it never trained on?",
            "judge": "ifeval (lm-eval's IFEval checkers, strict), both position orders",
            "ci_method": rm.CI_METHOD, "types": {"fixed_and_tested": list(FIX_ORDER), "held_out": list(HELD_OUT_TYPES),
                                                  "train_types_of_held_out_run": list(TRAIN_TYPES),
                                                  "no_fixer": list(NOT_FIXED), "need_punkt": list(NEEDS_PUNKT),
                                                  "uncheckable_here": sorted(uncheckable())},
            "records": counts, "records_train_types": counts_a, "runs": runs, "timing_s": timing,
            "data": "data.jsonl.gz (beside this file): every prompt with its instructions and the model's response; "
                    "train_records.jsonl.gz: the training records"}
        (a.results / "summary.json").write_text(json.dumps(summary, indent=2))

    a.results.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(a.results / "data.jsonl.gz", ({"split": r["key"].rstrip("0123456789"), **r}
                                                  for r in train_rows + test_rows + held_rows))
    write_jsonl_gz(a.results / "train_records.jsonl.gz", recs)

    print("== the reviser: axolotl train on the CnR records", flush=True)
    t = time.time()
    reviser = trained_once(len(recs), a.steps, data / "train.jsonl", base, "ifeval")
    timing["train"] = round(time.time() - t)
    control = f"inner=hf,pretrained={base}"
    evaluate("trained", f"{control},peft={reviser}", test_file, len(test_rows), a.iterations, 0)
    evaluate("control", control, test_file, len(test_rows), a.iterations, 1)
    if "stop-lever" not in a.skip:
        evaluate("trained-stop-no-cons", f"{control},peft={reviser}", test_file, len(test_rows), a.iterations, 0,
                 stop_when="no_cons")
    if "held-out-types" not in a.skip:
        t = time.time()
        reviser_a = trained_once(len(recs_a), a.held_out_steps, data / "train_train_types.jsonl", base,
                                 "ifeval-train-types")
        timing["train-train-types"] = round(time.time() - t)
        evaluate("trained-held-out-types", f"{control},peft={reviser_a}", held_file, len(held_rows),
                 a.held_out_iterations, 0)
        evaluate("control-held-out-types", control, held_file, len(held_rows), a.held_out_iterations, 1)
    timing["total"] = round(time.time() - t0)
    write_summary()
    analyse(a.results)
    for name, run in runs.items():
        its = run["iterations"]
        print(name, " ".join(f"it{k}: ps {e['prompt_strict']:.3f}" + (f" wr {e['winrate']:.3f}" if k else "")
                             for k, e in its.items()))
    print(f"run time {timing['total']} s -> {a.results / 'summary.json'}")
    shutil.rmtree(rm.RUNS / "prepared", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
