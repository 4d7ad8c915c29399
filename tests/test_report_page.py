"""`cnr report --html` in a real browser (issue 15): the page loads offline, a filter shows the number
of items the table counts, an item opens. Runs in .venv-annotate (Playwright drives Debian Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import missing

CHROMIUM = "/usr/bin/chromium"
CNR = str(Path(sys.executable).parent / "cnr")


def make_run(tmp: Path) -> Path:
    """A two-iteration `cnr revise`-shaped run judged by the oracle with `cnr judge`."""
    base, revised = [], []
    for i in range(12):
        original = f"{i + 5}, 3, 1"
        base.append({"id": f"q{i}", "prompt": f"Sort ascending: {i + 5}, 3, 1", "response": original,
                     "meta": {"reference": f"1, 3, {i + 5}"}})
        first = f"1, 3, {i + 5}" if i % 3 else None  # every third item: no usable revision
        second = f"1, 3, {i + 5}" if i % 4 else "1, 3"  # every fourth: a right answer broken again
        steps = [{"iteration": 1, "response": original, "generation": "g", "critique": "Cons:\n- not sorted",
                  "revision": first, "problem": None if first else "no revision", "result": first or original},
                 {"iteration": 2, "response": first or original, "generation": "g", "critique": "Cons:\n- none",
                  "revision": second, "problem": None, "result": second}]
        revised.append({**base[-1], "steps": steps, "final": second})
    (tmp / "base.jsonl").write_text("".join(json.dumps(r) + "\n" for r in base))
    (tmp / "revised.jsonl").write_text("".join(json.dumps(r) + "\n" for r in revised))
    (tmp / "judge.yaml").write_text("judge: oracle\nchecker: reference\n")
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp / "cache"))
    for cmd in (["judge", tmp / "base.jsonl", tmp / "revised.jsonl", "--judge", tmp / "judge.yaml", "--out",
                 tmp / "judged", "--name", "scripted reviser"],
                ["report", tmp / "judged", "--html", tmp / "page.html"]):
        proc = subprocess.run([CNR, *map(str, cmd)], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
    return tmp / "page.html"


def table_counts(page: str, iteration: int) -> dict[str, int]:
    row = re.search(rf"<tr data-run='[^']*' data-iteration='{iteration}'>(.*?)</tr>", page).group(1)
    return {k: int(re.search(rf"class='n-{k.replace(' ', '-')}'>(\d+)<", row).group(1))
            for k in ("won", "tied", "lost", "not judged", "no usable revision")}


def test_results_page_in_a_browser(tmp_path):
    if not Path(CHROMIUM).exists():
        missing("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    path = make_run(tmp_path)
    text = path.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch: no CDN, no fonts
    counts = table_counts(text, 2)
    assert counts["won"] + counts["tied"] + counts["lost"] == 12
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        context = browser.new_context(viewport={"width": 1200, "height": 1400}, offline=True)
        page = context.new_page()
        page.goto(path.as_uri())
        assert page.locator("details.item").count() == 12
        assert page.locator("#shown").inner_text() == "12"
        for outcome, key in (("won", "won"), ("lost", "lost"), ("tied", "tied")):
            page.get_by_role("button", name=outcome, exact=True).click()
            assert page.locator("#shown").inner_text() == str(counts[key]), outcome
            assert page.locator("details.item:visible").count() == counts[key]
        page.select_option("#iteration", "1")
        page.get_by_role("button", name="no usable revision").click()
        assert page.locator("#shown").inner_text() == str(table_counts(text, 1)["no usable revision"]) == "4"
        page.get_by_role("button", name="all").click()
        page.fill("#q", "q7")
        assert page.locator("#shown").inner_text() == "1"
        item = page.locator("details.item:visible").first
        item.locator("summary").click()
        assert item.locator("h4", has_text="iteration 2").is_visible()
        assert item.locator("ins").first.is_visible()  # the diff shows what the revision added
        page.fill("#q", "")
        page.screenshot(path=str(tmp_path / "report_page.png"), full_page=False)
        browser.close()
    shot = os.environ.get("CNR_REPORT_SCREENSHOT")
    if shot:
        shutil.copy(tmp_path / "report_page.png", shot)


@pytest.mark.parametrize("iteration", [1, 2])
def test_page_counts_match_the_judgments(tmp_path, iteration):
    path = make_run(tmp_path)
    judgments = [json.loads(line) for line in (tmp_path / "judged" / "judgments.jsonl").read_text().splitlines()]
    scores = [j["score"] for j in judgments if j["iteration"] == iteration]
    counts = table_counts(path.read_text(), iteration)
    assert counts["won"] == sum(s > 0.5 for s in scores) and counts["lost"] == sum(s < 0.5 for s in scores)
    assert counts["tied"] == sum(s == 0.5 for s in scores)
