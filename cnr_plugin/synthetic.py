"""A verifiable instruction task for measuring CnR without people or an LLM judge.

Every prompt carries checkable constraints (an arithmetic answer, a list length, required and
forbidden words, capital letters, a JSON shape, an ordering). :func:`score` counts the
constraints a response satisfies; with ``judge: oracle`` and ``checker: cnr_plugin.synthetic:score``
the built-in oracle judge (a pluggy judge like any other) prefers the response that satisfies more.

:func:`make_splits` writes train / validation / test sets that never share a prompt:
CnR training records (a faulty first response, a critique naming what is right and what is
wrong, a correct revision) and, for evaluation, (prompt, faulty response) pairs.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRUITS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"]
TOPICS = {"the sea": ("blue", "water"), "a forest": ("green", "tree"), "the city": ("busy", "car"),
          "winter": ("cold", "snow"), "a library": ("quiet", "book"), "the desert": ("hot", "sand")}
WORDS = ["river", "garden", "window", "planet", "rocket", "candle", "guitar", "island", "silver", "thunder"]
NAMES = ["Ann", "Bob", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]


# ---- constraints: (kind, params) -> satisfied? -------------------------------------------------

def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


CHECKS: dict[str, Callable[[str, dict[str, Any]], bool]] = {
    "equals": lambda r, p: r.strip().rstrip(".") == str(p["value"]),
    "n_lines": lambda r, p: len(_lines(r)) == p["n"],
    "lines_from": lambda r, p: bool(_lines(r)) and all(x.lower().strip("-* ") in p["words"] for x in _lines(r)),
    "contains": lambda r, p: re.search(rf"\b{re.escape(p['word'])}\b", r.lower()) is not None,
    "absent": lambda r, p: re.search(rf"\b{re.escape(p['word'])}\b", r.lower()) is None,
    "one_sentence": lambda r, p: len(re.findall(r"[.!?](\s|$)", r.strip())) == 1 and r.strip()[-1:] in ".!?",
    "json_keys": lambda r, p: _json_ok(r, p),
}


def _json_ok(response: str, p: dict[str, Any]) -> bool:
    try:
        obj = json.loads(response.strip())
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj == p["value"]


def score(prompt: str, response: str, meta: dict[str, Any]) -> float:
    """Constraints satisfied (the oracle checker)."""
    return float(sum(CHECKS[c["kind"]](response, c) for c in meta.get("checks", [])))


def failed(response: str, meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in meta["checks"] if not CHECKS[c["kind"]](response, c)]


# ---- tasks: prompt, constraints, correct answer, faulty answers ---------------------------------

def _arith(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    op = rng.choice(["+", "-", "*"])
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    prompt = f"What is {a} {op} {b}? Answer with the number only."
    wrong = value + rng.choice([-10, -2, -1, 1, 2, 10])
    return prompt, [{"kind": "equals", "value": value}], str(value), [
        str(wrong), f"The answer is {value}.", f"{a} {op} {b} = {wrong}"]


def _fruits(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    n = rng.randint(2, 5)
    picks = rng.sample(FRUITS, n + 2)
    prompt = f"List exactly {n} fruits, one per line, nothing else."
    checks: list[dict] = [{"kind": "n_lines", "n": n}, {"kind": "lines_from", "words": FRUITS}]
    good = "\n".join(picks[:n])
    return prompt, checks, good, ["\n".join(picks[: n + 1]), ", ".join(picks[:n]),
                                  "\n".join(picks[: n - 1] + ["carrot"])]


def _sentence(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    topic = rng.choice(sorted(TOPICS))
    need, avoid = TOPICS[topic]
    prompt = (f"Write one sentence about {topic} that uses the word '{need}' and does not use the word "
              f"'{avoid}'.")
    checks = [{"kind": "contains", "word": need}, {"kind": "absent", "word": avoid}, {"kind": "one_sentence"}]
    good = f"On a calm day {topic} feels {need} and still."
    return prompt, checks, good, [f"On a calm day {topic} is full of {avoid}.",
                                  f"On a calm day {topic} feels {need}. The {avoid} is everywhere.",
                                  f"{topic.capitalize()} feels {need} and still. It is lovely."]


def _caps(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    word = rng.choice(WORDS)
    prompt = f"Write the word '{word}' in capital letters, nothing else."
    return prompt, [{"kind": "equals", "value": word.upper()}], word.upper(), [
        word, word.capitalize(), f"{word.upper()} is the word."]


def _json(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    name, age = rng.choice(NAMES), rng.randint(18, 90)
    prompt = (f'Return only a JSON object with the keys "name" and "age" for a person called {name} who is '
              f"{age} years old; age is a number.")
    value = {"name": name, "age": age}
    return prompt, [{"kind": "json_keys", "value": value}], json.dumps(value), [
        json.dumps({"name": name, "age": str(age)}), json.dumps({"name": name}),
        f"{{name: {name}, age: {age}}}"]


def _sort(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    nums = rng.sample(range(1, 100), rng.randint(3, 6))
    prompt = f"Sort these numbers from smallest to largest, comma separated: {', '.join(map(str, nums))}"
    good = ", ".join(map(str, sorted(nums)))
    wrong = sorted(nums, reverse=True)
    swapped = sorted(nums)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    return prompt, [{"kind": "equals", "value": good}], good, [
        ", ".join(map(str, wrong)), ", ".join(map(str, swapped)), " ".join(map(str, sorted(nums)))]


TASKS = [_arith, _fruits, _sentence, _caps, _json, _sort]


def _describe(check: dict[str, Any]) -> str:
    kind = check["kind"]
    return {"equals": f"the answer must be exactly {check.get('value')}",
            "n_lines": f"it must have exactly {check.get('n')} lines",
            "lines_from": "every line must be one fruit name",
            "contains": f"it must use the word '{check.get('word')}'",
            "absent": f"it must not use the word '{check.get('word')}'",
            "one_sentence": "it must be exactly one sentence",
            "json_keys": f"it must be exactly the JSON object {json.dumps(check.get('value'))}"}[kind]


def critique(response: str, meta: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Pros and cons of a response against its constraints, in plain words."""
    bad = failed(response, meta)
    good = [c for c in meta["checks"] if c not in bad]
    pros = [f"Correct that {_describe(c).replace('must be', 'is').replace('must ', '')}." for c in good] \
        or ["It answers the prompt directly."]
    cons = [f"Wrong: {_describe(c)}." for c in bad]
    return pros, cons


def make_item(rng: random.Random, right_share: float = 0.15) -> dict[str, Any]:
    prompt, checks, good, faulty = rng.choice(TASKS)(rng)
    meta = {"checks": checks}
    assert score(prompt, good, meta) == len(checks), (prompt, good)
    for bad in faulty:
        assert score(prompt, bad, meta) < len(checks), (prompt, bad)
    # some first answers are already right: their records teach a critique with no cons
    # ("Cons: - none") and a revision equal to the response, which is what stop_when reads
    response = good if rng.random() < right_share else rng.choice(faulty)
    return {"prompt": prompt, "response": response, "correct": good, "faulty": faulty, "meta": meta}


def make_splits(out_dir: str | Path, n_train: int = 1000, n_val: int = 100, n_test: int = 100,
                seed: int = 0, right_share: float = 0.15) -> dict[str, Path]:
    """Write ``train.jsonl`` (CnR records), ``val_responses.jsonl`` and ``test_responses.jsonl``
    (prompt + faulty response + meta); no prompt appears in two splits."""
    rng = random.Random(seed)
    items: dict[str, dict[str, Any]] = {}
    need = n_train + n_val + n_test
    for _ in range(need * 200):
        item = make_item(rng, right_share)
        items.setdefault(item["prompt"], item)
        if len(items) >= need:
            break
    if len(items) < need:
        raise ValueError(f"only {len(items)} distinct prompts could be made for {need} items")
    order = list(items.values())
    rng.shuffle(order)
    train, val, test = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:need]
    for item in test + val:  # evaluation starts from a faulty response, as the paper's other systems
        if score(item["prompt"], item["response"], item["meta"]) == len(item["meta"]["checks"]):
            item["response"] = rng.choice(item["faulty"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.jsonl", "val": out / "val_responses.jsonl", "test": out / "test_responses.jsonl"}
    with paths["train"].open("w") as f:
        for i, it in enumerate(train):
            pros, cons = critique(it["response"], it["meta"])
            f.write(json.dumps({"id": f"t{i:04d}", "prompt": it["prompt"], "response": it["response"], "pros": pros,
                                "cons": cons, "revision": it["correct"], "meta": it["meta"]}) + "\n")
    for split, rows in (("val", val), ("test", test)):
        with paths[split].open("w") as f:
            for i, it in enumerate(rows):
                f.write(json.dumps({"id": f"{split[0]}{i:04d}", "prompt": it["prompt"], "response": it["response"],
                                    "meta": it["meta"]}) + "\n")
    return paths

