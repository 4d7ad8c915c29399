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

from cnr_plugin.errors import CnRError


class SyntheticTaskError(CnRError, ValueError):
    """Synthetic-task settings that cannot be met (more items than a family has distinct prompts)."""


FRUITS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "orange", "peach", "pear", "plum"]
TOPICS = {"the sea": ("blue", "water"), "a forest": ("green", "tree"), "the city": ("busy", "car"),
          "winter": ("cold", "snow"), "a library": ("quiet", "book"), "the desert": ("hot", "sand")}
WORDS = ["river", "garden", "window", "planet", "rocket", "candle", "guitar", "island", "silver", "thunder",
         "meadow", "harbor", "pencil", "lantern", "velvet", "marble", "falcon", "copper", "orchard", "compass",
         "blanket", "canyon", "feather", "glacier", "hammer", "jungle", "kettle", "ladder", "magnet", "needle",
         "oyster", "pillow", "quartz", "ribbon", "saddle", "tunnel", "violin", "walnut", "yogurt", "zipper"]
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
    n = rng.randint(2, 6)
    other, other2 = sorted(rng.sample(FRUITS, 2))
    picks = rng.sample([f for f in FRUITS if f not in (other, other2)], n + 2)
    prompt = f"List exactly {n} fruits other than {other} and {other2}, one per line, nothing else."
    checks: list[dict] = [{"kind": "n_lines", "n": n}, {"kind": "lines_from", "words": FRUITS},
                          {"kind": "absent", "word": other}, {"kind": "absent", "word": other2}]
    good = "\n".join(picks[:n])
    return prompt, checks, good, ["\n".join(picks[: n + 1]), ", ".join(picks[:n]),
                                  "\n".join(picks[: n - 1] + ["carrot"]), "\n".join(picks[: n - 1] + [other])]


def _sentence(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    topic = rng.choice(sorted(TOPICS))
    need, avoid = TOPICS[topic]
    k = rng.randint(2, 40)
    prompt = (f"Write one sentence about {topic} that uses the word '{need}', mentions the number {k}, and does "
              f"not use the word '{avoid}'.")
    checks = [{"kind": "contains", "word": need}, {"kind": "absent", "word": avoid}, {"kind": "one_sentence"},
              {"kind": "contains", "word": str(k)}]
    good = f"For {k} hours {topic} felt {need} and still."
    return prompt, checks, good, [f"For {k} hours {topic} was full of {avoid}.",
                                  f"For {k} hours {topic} felt {need}. The {avoid} was everywhere.",
                                  f"{topic.capitalize()} felt {need} and still. It was lovely.",
                                  f"For hours {topic} felt {need} and still."]


def _caps(rng: random.Random) -> tuple[str, list[dict], str, list[str]]:
    w1, w2 = rng.sample(WORDS, 2)
    words = f"{w1} {w2}"
    prompt = f"Write the words '{words}' in capital letters, nothing else."
    return prompt, [{"kind": "equals", "value": words.upper()}], words.upper(), [
        words, words.title(), f"{words.upper()} are the words.", f"{w1.upper()} {w2}"]


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


def _describe(check: dict[str, Any], met: bool = False) -> str:
    """A constraint in plain words: what the response must do, or (``met``) what it does."""
    value, n, word = check.get("value"), check.get("n"), check.get("word")
    must, does = {
        "equals": (f"the answer must be exactly {value}", f"the answer is exactly {value}"),
        "n_lines": (f"it must have exactly {n} lines", f"it has exactly {n} lines"),
        "lines_from": ("every line must be one fruit name", "every line is one fruit name"),
        "contains": (f"it must use the word '{word}'", f"it uses the word '{word}'"),
        "absent": (f"it must not use the word '{word}'", f"it does not use the word '{word}'"),
        "one_sentence": ("it must be exactly one sentence", "it is exactly one sentence"),
        "json_keys": (f"it must be exactly the JSON object {json.dumps(value)}",
                      f"it is exactly the JSON object {json.dumps(value)}"),
    }[check["kind"]]
    return does if met else must


def critique(response: str, meta: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Pros and cons of a response against its constraints, in plain words."""
    bad = failed(response, meta)
    good = [c for c in meta["checks"] if c not in bad]
    pros = [f"Correct: {_describe(c, met=True)}." for c in good] or ["It answers the prompt directly."]
    cons = [f"Wrong: {_describe(c)}." for c in bad]
    return pros, cons


def two_faults(good: str, faulty: list[str]) -> tuple[str, str] | None:
    """A response with two faults and a revision that fixes only one of them, as people often
    revise: for sorting (wrong order and wrong separator -> right order, wrong separator) and for
    arithmetic (wrong number in a sentence -> right number in a sentence). None for other tasks."""
    if re.fullmatch(r"\d+(, \d+)+", good):  # sorting
        nums = good.split(", ")
        return " ".join(reversed(nums)), " ".join(nums)
    if re.fullmatch(r"-?\d+", good) and faulty and re.fullmatch(r"-?\d+", faulty[0]):  # arithmetic
        return f"The answer is {faulty[0]}.", f"The answer is {good}."
    return None


def _quota(n: int, k: int, i: int) -> int:
    return n // k + (1 if i < n % k else 0)


def make_splits(out_dir: str | Path, n_train: int = 1000, n_val: int = 100, n_test: int = 100,
                seed: int = 0, right_share: float = 0.15, partial_share: float = 0.0,
                families: list[str] | None = None, held_out: str | None = None) -> dict[str, Path]:
    """Write ``train.jsonl`` (CnR records), ``val_responses.jsonl`` and ``test_responses.jsonl``
    (prompt + faulty response + meta with its ``family``); no prompt appears in two splits, and
    every split holds the task families in equal shares (stratified). The data levers
    (``right_share``, ``partial_share``) change the training records only, from their own random
    stream, so the same seed gives the same prompts and the same test set whatever the levers.
    ``held_out``: that family is left out of training and is the whole test set."""
    tasks = {fn.__name__.lstrip("_"): fn for fn in TASKS}
    names = families or sorted(tasks)
    rng = random.Random(seed)
    pools: dict[str, list[dict[str, Any]]] = {}
    for f_index, name in enumerate(names):
        if held_out and name == held_out:
            need = n_test
        else:
            k = len([n for n in names if n != held_out])
            i = [n for n in names if n != held_out].index(name)
            need = _quota(n_train, k, i) + _quota(n_val, k, i) + (0 if held_out else _quota(n_test, len(names), f_index))
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(need * 200):
            prompt, checks, good, faulty = tasks[name](rng)
            seen.setdefault(prompt, {"prompt": prompt, "checks": checks, "good": good, "faulty": faulty})
            if len(seen) >= need:
                break
        if len(seen) < need:
            raise SyntheticTaskError(f"family {name}: only {len(seen)} distinct prompts for {need} items")
        pool = list(seen.values())
        rng.shuffle(pool)
        pools[name] = pool
    train, val, test = [], [], []
    trained = [n for n in names if n != held_out]
    for i, name in enumerate(trained):
        pool, a, b = pools[name], _quota(n_train, len(trained), i), _quota(n_val, len(trained), i)
        train += pool[:a]
        val += pool[a:a + b]
        test += pool[a + b:] if not held_out else []
    if held_out:
        test = pools[held_out][:n_test]
    levers = random.Random(f"{seed}-levers")
    eval_rng = random.Random(f"{seed}-eval")
    for split, rows in (("train", train), ("val", val), ("test", test)):
        for it in rows:
            name = next(n for n, p in pools.items() if it in p)
            it["meta"] = {"checks": it["checks"], "family": name}
            it["correct"] = it["good"]
            if split == "train":
                right = levers.random() < right_share
                it["response"], it["revision"] = (it["good"], it["good"]) if right else \
                    (levers.choice(it["faulty"]), it["good"])
                pair = two_faults(it["good"], it["faulty"]) if not right and levers.random() < partial_share else None
                if pair is not None:  # the record teaches one step of two; the next iteration takes the other
                    it["response"], it["revision"] = pair
            else:  # evaluation starts from a faulty response, as the paper's other systems' outputs
                it["response"] = eval_rng.choice(it["faulty"])
    order = random.Random(f"{seed}-order")
    for rows in (train, val, test):  # mixed families in every split, so `limit` takes all of them
        order.shuffle(rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.jsonl", "val": out / "val_responses.jsonl", "test": out / "test_responses.jsonl"}
    with paths["train"].open("w") as f:
        for i, it in enumerate(train):
            pros, cons = critique(it["response"], it["meta"])
            f.write(json.dumps({"id": f"t{i:04d}", "prompt": it["prompt"], "response": it["response"], "pros": pros,
                                "cons": cons, "revision": it["revision"], "meta": it["meta"]}) + "\n")
    for split, rows in (("val", val), ("test", test)):
        with paths[split].open("w") as f:
            for i, it in enumerate(rows):
                f.write(json.dumps({"id": f"{split[0]}{i:04d}", "prompt": it["prompt"], "response": it["response"],
                                    "meta": it["meta"]}) + "\n")
    return paths

