"""Label Studio round trip with a real server: `cnr annotate push|pull` through the API, and a real
browser (Playwright driving Debian Chromium) writing a critique and a revision that then train."""

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, free_port, missing

pytestmark = [pytest.mark.annotate, pytest.mark.integration]
pytest.importorskip("label_studio_sdk", reason="the annotate environment (.venv-annotate) runs these tests")

CNR = str(Path(sys.executable).parent / "cnr")
EMAIL, PASSWORD = "annotator@example.com", "cnr-test-" + secrets.token_hex(4)
CHROMIUM = "/usr/bin/chromium"
TRAIN_PY = ROOT / ".venv" / "bin" / "python"  # the axolotl environment trains the pulled record


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    exe = shutil.which("label-studio", path=str(Path(sys.executable).parent))
    if exe is None:
        missing("needs a Label Studio server (pip install label-studio; scripts/install.sh does)")
    data, port, token = tmp_path_factory.mktemp("ls-data"), free_port(), secrets.token_hex(20)
    env = dict(os.environ, LABEL_STUDIO_USERNAME=EMAIL, LABEL_STUDIO_PASSWORD=PASSWORD,
               LABEL_STUDIO_USER_TOKEN=token, LATEST_VERSION_CHECK="false", COLLECT_ANALYTICS="false",
               SENTRY_DSN="", FRONTEND_SENTRY_DSN="")
    log = open(data / "server.log", "w")
    proc = subprocess.Popen([exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
                             "--data-dir", str(data), "--enable-legacy-api-token"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0, deadline = time.time(), time.time() + 240
    while True:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("Label Studio did not start:\n" + (data / "server.log").read_text()[-3000:]) from None
            time.sleep(1)
    print(f"\nLabel Studio up in {time.time() - t0:.0f} s")
    yield {"url": url, "token": token, "env": dict(os.environ, LABEL_STUDIO_URL=url, LABEL_STUDIO_API_KEY=token)}
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@contextlib.contextmanager
def logged_in_page(label_studio):
    """A Chromium page logged in to the test server as the annotator."""
    if not Path(CHROMIUM).exists():
        missing("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(label_studio["url"] + "/user/login/")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        try:
            yield page
        finally:
            browser.close()

def cnr(ls, *args):
    return subprocess.run([CNR, *map(str, args)], capture_output=True, text=True, env=ls["env"], timeout=300)


def responses(tmp_path, n=3) -> Path:
    from cnr_plugin.resources import eval_tasks_path

    path = tmp_path / "responses.jsonl"
    path.write_text("".join(eval_tasks_path("sample_responses.jsonl").read_text().splitlines(True)[:n]))
    return path


def textarea(name: str, text: str) -> dict:
    return {"from_name": name, "to_name": "response", "type": "textarea", "value": {"text": [text]}}


def test_push_is_idempotent_and_pull_returns_what_was_written(tmp_path, label_studio):
    from label_studio_sdk import LabelStudio

    path = responses(tmp_path)
    t0 = time.time()
    first = cnr(label_studio, "annotate", "push", path, "--project", "api round trip")
    assert first.returncode == 0, first.stderr
    assert "3 tasks imported, 0 already there" in first.stdout
    again = cnr(label_studio, "annotate", "push", path, "--project", "api round trip")
    assert "0 tasks imported, 3 already there" in again.stdout
    ls = LabelStudio(base_url=label_studio["url"], api_key=label_studio["token"])
    project = next(p for p in ls.projects.list() if p.title == "api round trip")
    tasks = {t.data["cnr_id"]: t for t in ls.tasks.list(project=project.id, fields="all")}
    assert sorted(tasks) == ["r01", "r02", "r03"]

    written = {
        "r01": ("Pros: answers directly.\nCons: Ag is silver; gold is Au.", "The chemical symbol for gold is Au."),
        "r02": ("Pros: names an ocean.\nCons: the Pacific is the largest.", "The Pacific Ocean is the largest."),
    }
    for rid, (crit, rev) in written.items():
        ls.annotations.create(id=tasks[rid].id, result=[textarea("critique", crit), textarea("revision", rev)])
    # a second annotation of r02 (newer), an empty critique and a skip on r03
    ls.annotations.create(id=tasks["r02"].id, result=[textarea("critique", "Cons: wrong ocean."),
                                                      textarea("revision", "It is the Pacific Ocean.")])
    ls.annotations.create(id=tasks["r03"].id, result=[textarea("critique", " "), textarea("revision", "Eight legs.")])
    ls.annotations.create(id=tasks["r03"].id, result=[], was_cancelled=True)

    pulled = cnr(label_studio, "annotate", "pull", "--project", "api round trip", "--out", tmp_path / "cnr.jsonl")
    assert pulled.returncode == 0, pulled.stderr
    print(f"push x2 + 5 annotations + pull: {time.time() - t0:.1f} s")
    warnings = pulled.stderr.splitlines()
    assert any("(id r03)" in w and "empty critique" in w for w in warnings)
    assert any("(id r03)" in w and "skipped by annotator" in w for w in warnings)
    from cnr_plugin.records import read_records

    records = {r.id: r for r in read_records(tmp_path / "cnr.jsonl")}
    assert sorted(records) == ["r01", "r02"]
    assert (records["r01"].critique, records["r01"].revision) == written["r01"]
    assert records["r02"].revision == "It is the Pacific Ocean."  # policy latest: the newer annotation
    assert records["r01"].meta["annotator"] and records["r01"].meta["required"] == ["Au"]
    everyone = cnr(label_studio, "annotate", "pull", "--project", "api round trip", "--policy", "all",
                   "--out", tmp_path / "all.jsonl")
    assert everyone.returncode == 0, everyone.stderr
    assert len(read_records(tmp_path / "all.jsonl")) == 3  # r01 once, r02 twice
    strict = cnr(label_studio, "annotate", "pull", "--project", "api round trip", "--strict",
                 "--out", tmp_path / "strict.jsonl")
    assert strict.returncode == 1


def test_browser_annotation_pulls_and_trains(tmp_path, label_studio):
    path = responses(tmp_path, n=1)
    assert cnr(label_studio, "annotate", "push", path, "--project", "browser").returncode == 0
    from label_studio_sdk import LabelStudio

    ls = LabelStudio(base_url=label_studio["url"], api_key=label_studio["token"])
    project = next(p for p in ls.projects.list() if p.title == "browser")
    task = next(iter(ls.tasks.list(project=project.id)))
    critique = "Pros: one short sentence.\nCons: Ag is the symbol of silver; gold is Au."
    revision = "The chemical symbol for gold is Au."
    t0 = time.time()
    with logged_in_page(label_studio) as page:
        page.goto(f"{label_studio['url']}/projects/{project.id}/data?task={task.id}")
        box = page.locator("textarea[name=critique]")
        box.wait_for(timeout=60_000)
        box.click()
        box.press_sequentially(critique)  # typed key by key, as a person would (React sees every key)
        box.press("Shift+Enter")
        box.wait_for(state="detached", timeout=10_000)  # the one allowed submission is in: the box closes
        rev = page.locator("textarea[name=revision]")
        rev.click()
        rev.press("Control+a")
        rev.press_sequentially(revision)
        rev.press("Shift+Enter")
        rev.wait_for(state="detached", timeout=10_000)
        page.screenshot(path=str(tmp_path / "labeling_page.png"))
        page.get_by_role("button", name="Submit").click()
        deadline = time.monotonic() + 60  # poll the server for the submitted annotation, no fixed wait
        while not list(ls.annotations.list(id=task.id)):
            assert time.monotonic() < deadline, "the submitted annotation never reached Label Studio"
            time.sleep(0.2)
    print(f"browser annotation: {time.time() - t0:.1f} s")
    shot = os.environ.get("CNR_SCREENSHOT")
    if shot:
        shutil.copy(tmp_path / "labeling_page.png", shot)
    pulled = cnr(label_studio, "annotate", "pull", "--project", "browser", "--out", tmp_path / "cnr.jsonl")
    assert pulled.returncode == 0, pulled.stderr
    from cnr_plugin.records import read_records

    (record,) = read_records(tmp_path / "cnr.jsonl")
    assert (record.critique, record.revision, record.id) == (critique, revision, "r01")

    # the record trains one step with the CPU config (in the axolotl environment)
    if not TRAIN_PY.exists():
        missing("needs the axolotl environment .venv (scripts/install.sh)")
    model = tmp_path / "tiny"
    subprocess.run([str(TRAIN_PY), "-m", "cnr_plugin.cli", "models", "tiny", str(model)], check=True,
                   capture_output=True)
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / "cnr-tiny-cpu.yaml").read_text())
    cfg.update(base_model=str(model), max_steps=1, micro_batch_size=1, output_dir=str(tmp_path / "out"),
               dataset_prepared_path=str(tmp_path / "prep"))
    cfg["datasets"][0]["path"] = str(tmp_path / "cnr.jsonl")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1")
    train = subprocess.run([str(TRAIN_PY), "-m", "axolotl.cli.train", str(tmp_path / "cfg.yaml")], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_compare_round_trip_in_the_browser(tmp_path, label_studio):
    """`cnr annotate compare push`, a person choosing in Chromium, `pull`: the choice is mapped back
    through the recorded sides, and the agreement with the judge is what the choices say."""
    import json

    # `cnr revise`-shaped revisions plus the judge's verdicts: an lm-eval samples file
    out = tmp_path / "eval" / "model"
    out.mkdir(parents=True)
    items = [("r01", "What is the chemical symbol for gold?", "The chemical symbol for gold is Ag.",
              "The chemical symbol for gold is Au.", 1.0),
             ("r02", "Name the largest ocean on Earth.", "The Atlantic Ocean is the largest ocean.",
              "The Pacific Ocean is the largest ocean.", 1.0)]
    with (out / "samples_cnr_winrate_2026.jsonl").open("w") as f:
        for item_id, prompt, original, revision, score in items:
            resp = {"steps": [{"iteration": 1, "result": revision}],
                    # score 1.0: the revision won both position orders (forward: A = revision)
                    "judgments": [{"iteration": 1, "against": "original", "score": score, "status": "ok",
                                   "forward": {"winner": "A", "status": "ok"},
                                   "backward": {"winner": "B", "status": "ok"}}]}
            f.write(json.dumps({"doc": {"id": item_id, "prompt": prompt, "response": original, "conversation": ""},
                                "filtered_resps": [json.dumps(resp)]}) + "\n")
    sides = tmp_path / "sides.json"
    proc = cnr(label_studio, "annotate", "compare", "push", tmp_path / "eval", "--project", "compare", "--sides", sides)
    assert proc.returncode == 0 and "2 pairs imported" in proc.stdout, proc.stderr
    again = cnr(label_studio, "annotate", "compare", "push", tmp_path / "eval", "--project", "compare", "--sides", sides)
    assert "0 pairs imported, 2 already there" in again.stdout  # idempotent
    recorded = json.loads(sides.read_text())["pairs"]
    from label_studio_sdk import LabelStudio

    ls = LabelStudio(base_url=label_studio["url"], api_key=label_studio["token"])
    project = next(p for p in ls.projects.list() if p.title == "compare")
    tasks = {t.data["cnr_pair"]: t for t in ls.tasks.list(project=project.id, fields="all")}
    for key, t in tasks.items():  # the page never says which side is the revision
        assert set(t.data) == {"cnr_pair", "prompt", "response_a", "response_b"}
        rev = next(i[3] for i in items if f"{i[0]}@1" == key)
        assert t.data["response_" + recorded[key]["revision_side"].lower()] == rev
    # the person prefers the revision of r01 (whichever side it is on) and calls r02 a tie
    first = tasks["r01@1"]
    pick = recorded["r01@1"]["revision_side"]
    with logged_in_page(label_studio) as page:
        for task_obj, choice, reason in ((first, pick, "names the right symbol"), (tasks["r02@1"], "Tie", "")):
            page.goto(f"{label_studio['url']}/projects/{project.id}/data?task={task_obj.id}")
            option = page.locator(f".lsf-choice__checkbox input[name='{choice}']")
            option.wait_for(state="attached", timeout=60_000)
            option.check()
            if reason:
                box = page.locator("textarea[name=reason]")
                box.click()
                box.press_sequentially(reason)
                box.press("Shift+Enter")
                box.wait_for(state="detached", timeout=10_000)
                page.screenshot(path=str(tmp_path / "compare_page.png"))
            page.get_by_role("button", name="Submit").click()
            deadline = time.monotonic() + 60
            while not list(ls.annotations.list(id=task_obj.id)):
                assert time.monotonic() < deadline, "the submitted choice never reached Label Studio"
                time.sleep(0.2)
    shot = os.environ.get("CNR_COMPARE_SCREENSHOT")
    if shot:
        shutil.copy(tmp_path / "compare_page.png", shot)
    pulled = cnr(label_studio, "annotate", "compare", "pull", "--project", "compare", "--sides", sides,
                 "--out", tmp_path / "eval")
    assert pulled.returncode == 0, pulled.stderr
    result = json.loads((tmp_path / "eval" / "human_results.json").read_text())
    (row,) = result["rows"]
    # r01: win, r02: tie -> 0.75; the judge said win, win: agreement 1 of 2, without ties 1 of 1
    assert (row["n_pairs"], row["winrate"], row["judge_winrate_same_pairs"]) == (2, 0.75, 1.0)
    agr = row["human_vs_judge"]
    assert (agr["percent"], agr["percent_without_ties"], agr["n_without_ties"]) == (0.5, 1.0, 1)
    judgments = [json.loads(line) for line in (tmp_path / "eval" / "human_judgments.jsonl").read_text().splitlines()]
    assert {(j["pair"], j["label"], j["reason"]) for j in judgments} == {("r01@1", "win", "names the right symbol"),
                                                                        ("r02@1", "tie", "")}
    assert "human win rate 0.750" in pulled.stdout


def test_model_assisted_push_offers_a_draft_and_pull_measures_the_edits(tmp_path, label_studio, llama_server):
    """`cnr annotate push --draft-*`: a served reviser (SmolLM2 under llama.cpp, one solved example)
    drafts critique and revision; they arrive as the task's prediction, and the pulled record says
    how far the annotator moved from the draft."""
    import json

    from label_studio_sdk import LabelStudio

    path = responses(tmp_path, n=3)
    env = dict(label_studio["env"], CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([CNR, "annotate", "push", str(path), "--project", "drafts", "--draft-base-url",
                           llama_server.base_url, "--draft-model", "smollm2", "--draft-fewshot", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    ls = LabelStudio(base_url=label_studio["url"], api_key=label_studio["token"])
    project = next(p for p in ls.projects.list() if p.title == "drafts")
    tasks = [t for t in ls.tasks.list(project=project.id, fields="all")]
    drafted = [t for t in tasks if t.data.get("draft_model") == "smollm2"]
    assert drafted, proc.stdout + proc.stderr  # at least one generation parsed into a draft
    assert f"{len(drafted)} with a draft from smollm2" in proc.stdout
    task = drafted[0]
    (pred,) = list(ls.predictions.list(task=task.id))
    texts = {r["from_name"]: r["value"]["text"][0] for r in pred.result}
    assert texts == {"critique": task.data["draft_critique"], "revision": task.data["draft_revision"]}
    # the labeling page opens with the draft filled in (the project's model version is the draft's)
    with logged_in_page(label_studio) as page:
        page.goto(f"{label_studio['url']}/projects/{project.id}/data?task={task.id}")
        page.get_by_text(texts["revision"].strip().splitlines()[0][:40]).first.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "draft_page.png"))
    # the annotator keeps the draft critique and adds eight characters to the revision
    ls.annotations.create(id=task.id, result=[textarea("critique", texts["critique"]),
                                               textarea("revision", texts["revision"] + " Thanks.")])
    pulled = cnr(label_studio, "annotate", "pull", "--project", "drafts", "--out", tmp_path / "cnr.jsonl")
    assert pulled.returncode == 0, pulled.stderr
    (record,) = [json.loads(line) for line in (tmp_path / "cnr.jsonl").read_text().splitlines()]
    assert record["meta"]["draft"] == {"model": "smollm2", "critique_edit_distance": 0,
                                       "revision_edit_distance": len(" Thanks."), "changed": True}
