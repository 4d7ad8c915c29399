"""Real `axolotl train` runs on CPU with tiny local models (integration; tens of seconds each)."""

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import ROOT, axolotl_env, free_port, needs_torch, pythonpath, run_train, tiny_config

pytestmark = [needs_torch, pytest.mark.integration]


def losses(out_dir: Path, steps: int) -> list[float]:
    return [e["loss"] for e in log_history(out_dir / f"checkpoint-{steps}") if "loss" in e]


def log_history(checkpoint: Path) -> list[dict]:
    return json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]


def assert_learns(values: list[float]) -> None:
    assert values and all(math.isfinite(v) for v in values), values
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3, f"loss did not fall: {values}"


def prepared_texts(prepared: Path, tokenizer, n: int = 2) -> list[str]:
    from datasets import load_from_disk

    folder = next(p.parent for p in prepared.rglob("dataset_info.json"))
    ds = load_from_disk(str(folder))
    return [tokenizer.decode(ds[i]["input_ids"]) for i in range(n)]


def test_lora_train_learns_and_adapter_loads(tmp_path, tiny_llama):
    cfg = tiny_config(tmp_path, tiny_llama, max_steps=10, learning_rate=0.01, save_strategy="steps", save_steps=10)
    run_train(cfg)
    out = tmp_path / "out"
    assert_learns(losses(out, 10))
    from peft import AutoPeftModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(str(out))
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_full_train_learns_and_model_loads(tmp_path, tiny_llama):
    cfg = tiny_config(tmp_path, tiny_llama, adapter=None, lora_r=None, lora_alpha=None, lora_dropout=None,
                      lora_target_linear=None, max_steps=10, learning_rate=0.002, save_strategy="steps",
                      save_steps=10)
    run_train(cfg)
    out = tmp_path / "out"
    assert_learns(losses(out, 10))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.config.num_hidden_layers == 2


def test_the_shipped_example_format_plugin_trains(tmp_path, tiny_llama, smollm2_tokenizer, tagged_format):
    """examples/cnr-tagged-format, pip-installed as a user would, selected by ``cnr_format``."""
    cfg = tiny_config(tmp_path, tiny_llama, cnr_format="tagged", max_steps=2)
    proc = run_train(cfg, env=axolotl_env(PYTHONPATH=pythonpath(tagged_format)))
    assert "format=tagged" in proc.stdout + proc.stderr
    texts = prepared_texts(tmp_path / "prepared", smollm2_tokenizer)
    assert texts and all(t.count("<critique>\n") == 1 and "\n</critique>\n<revision>\n" in t
                         and "\n</revision>" in t for t in texts)


def zero3_config(tmp_path: Path, tiny_falcon: Path) -> Path:
    ds = json.loads((ROOT / "axolotl_configs" / "deepspeed" / "zero3_bf16.json").read_text())
    # on CPU the HF Trainer counts one process when it fills "auto": let DeepSpeed derive the global batch
    ds.pop("train_batch_size")
    ds["zero_optimization"]["overlap_comm"] = False
    (tmp_path / "ds.json").write_text(json.dumps(ds))
    return tiny_config(tmp_path, tiny_falcon, adapter=None, lora_r=None, lora_alpha=None, lora_dropout=None,
                       lora_target_linear=None, max_steps=2, save_strategy="steps", save_steps=2,
                       deepspeed=str(tmp_path / "ds.json"))


def zero3_env() -> dict[str, str]:
    # gloo's async collectives complete before they return (see tests/gloo_sync/sitecustomize.py)
    return axolotl_env(PYTHONPATH=pythonpath(ROOT / "tests" / "gloo_sync"))


def assert_zero3_step(tmp_path: Path) -> None:
    ckpt = tmp_path / "out" / "checkpoint-2"
    shards = sorted(p.name for p in ckpt.rglob("*optim_states.pt"))
    assert len(shards) == 2 and all("zero_pp_rank_" in s for s in shards), shards  # one ZeRO-3 partition per rank
    steps = [e for e in log_history(ckpt) if "loss" in e]
    # a collective read before it completed shows as a NaN loss (logged as 0.0) or a grad norm of ~1e15
    assert all(math.isfinite(e["loss"]) and e["loss"] > 1 and 0 < e["grad_norm"] < 100 for e in steps), steps
    assert steps[1]["loss"] < steps[0]["loss"], f"loss did not fall: {steps}"
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "out")).config.model_type == "falcon"


def test_zero3_two_ranks_on_cpu(tmp_path, tiny_falcon):
    """A real DeepSpeed ZeRO-3 step: two ranks under torchrun (gloo on CPU), tiny Falcon-40B layout."""
    cfg = zero3_config(tmp_path, tiny_falcon)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]
    run_train(cfg, launcher=torchrun, env=zero3_env())
    assert_zero3_step(tmp_path)


def test_zero3_two_nodes_on_cpu(tmp_path, tiny_falcon):
    """The multi-node launch README documents, proven on CPU: `axolotl preprocess` once, then one
    `torchrun --nnodes 2 --node_rank N` per node with a rendezvous at the first node's address (here
    two processes on 127.0.0.1, one rank each) — the same ZeRO-3 step as two ranks on one node."""
    import subprocess

    cfg = zero3_config(tmp_path, tiny_falcon)
    env = zero3_env()
    prep = subprocess.run([sys.executable, "-m", "axolotl.cli.preprocess", str(cfg)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert prep.returncode == 0, prep.stderr[-4000:]
    port = free_port()
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(rank),
                               "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
                               "-m", "axolotl.cli.train", str(cfg)],
                              cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
             for rank, log in zip((0, 1), logs)]
    try:
        codes = [node.wait(timeout=600) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    assert_zero3_step(tmp_path)


def test_post_train_evaluation_and_axolotl_cnr_eval(tmp_path, tiny_llama):
    """cnr_eval_post_train runs cnr_winrate on the trained adapter; `axolotl cnr-eval` does it later."""
    judge = tmp_path / "oracle.yaml"
    judge.write_text("judge: oracle\nchecker: keywords\n")
    cfg = tiny_config(tmp_path, tiny_llama, max_steps=2, cnr_eval_post_train=True, cnr_eval_iterations=2,
                      cnr_eval_limit=2, cnr_eval_max_gen_toks=16, cnr_eval_judge=str(judge))
    run_train(cfg, env=axolotl_env(CNR_CACHE_DIR=str(tmp_path / "cache")))
    results = tmp_path / "out" / "cnr_eval"
    res = json.loads(next(results.rglob("results_*.json")).read_text())
    assert res["results"]["cnr_winrate"]["n_items,judged"] == 2
    assert "winrate_iter2,judged" in res["results"]["cnr_winrate"]
    # the hf reviser reports no usage: its own tokenizer counts the tokens of every call
    from cnr_plugin.results import lm_eval_accounting

    cost = lm_eval_accounting(next(results.rglob("samples_cnr_winrate_*.jsonl")))["reviser"]
    assert cost["calls"] > 0 and cost["calls_without_usage"] == 0
    assert cost["tokens_in"] > cost["calls"] and cost["tokens_out"] > 0
    assert res["config"]["model_args"]["peft"] == str(tmp_path / "out")
    assert (results / "cnr_winrate.png").stat().st_size > 1000

    import subprocess

    import yaml

    later = yaml.safe_load(cfg.read_text())
    later.update(cnr_eval_output_dir=str(tmp_path / "later"), cnr_eval_iterations=1)
    cfg.write_text(yaml.safe_dump(later))
    axolotl = str(Path(sys.executable).parent / "axolotl")
    proc = subprocess.run([axolotl, "cnr-eval", str(cfg), "--device", "cpu"], cwd=tmp_path, capture_output=True,
                          text=True, env=axolotl_env(CNR_CACHE_DIR=str(tmp_path / "cache")), timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(next((tmp_path / "later").rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    assert "winrate_iter1,judged" in res and "winrate_iter2,judged" not in res


def test_post_train_evaluation_runs_only_after_a_training_that_succeeded(tmp_path, tiny_llama):
    """Axolotl 0.21 calls post_train_unload in a `finally`, after a failed training too: the plugin
    then says in one line why there is no evaluation, and the real error is the one that stands.
    A model an earlier run saved in output_dir does not count as this run's."""
    import subprocess
    from importlib.metadata import version

    judge = tmp_path / "oracle.yaml"
    judge.write_text("judge: oracle\nchecker: keywords\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "adapter_model.safetensors").write_bytes(b"an older run's adapter")
    cfg = tiny_config(tmp_path, tiny_llama, max_steps=3, cnr_eval_post_train=True, cnr_eval_limit=1,
                      cnr_eval_iterations=1, cnr_eval_judge=str(judge),
                      plugins=["cnr_plugin.axolotl.CnRPlugin", "fail_training.FailTraining"])
    env = axolotl_env(CNR_CACHE_DIR=str(tmp_path / "cache"),
                      PYTHONPATH=pythonpath(ROOT / "tests" / "failing_plugin"))
    proc = subprocess.run([sys.executable, "-m", "axolotl.cli.train", str(cfg)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "boom: this training fails on purpose" in out, out[-4000:]
    assert "cnr_winrate on the trained model failed" not in out and "cnr: evaluating the trained model" not in out
    assert not (tmp_path / "out" / "cnr_eval").exists()
    if tuple(int(x) for x in version("axolotl").split(".")[:2]) >= (0, 21):  # 0.19 skips the hook after an error
        assert out.count("cnr: post-train evaluation not run: the training did not finish") == 1, out[-4000:]


def test_records_too_long_are_named_by_file_line_and_too_few_stop_in_one_line(tmp_path, tiny_llama):
    """Before axolotl tokenizes anything: dropped records are named where they are, and when fewer
    than two would remain the run stops with one line (not axolotl's `empty range for randrange()`)."""
    import subprocess

    data = tmp_path / "cnr.jsonl"
    short = {"prompt": "p", "response": "r", "critique": "c", "revision": "v"}
    long = {**short, "response": "word " * 400}
    data.write_text("\n".join(json.dumps(r) for r in (short, long, long)) + "\n")
    cfg = tiny_config(tmp_path, tiny_llama, sequence_len=128, max_steps=1)
    text = cfg.read_text().replace(str(ROOT / "data" / "sample_cnr.jsonl"), str(data))
    cfg.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "axolotl.cli.train", str(cfg)], cwd=tmp_path, env=axolotl_env(),
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"2 of 3 records are longer than sequence_len=128 tokens and axolotl drops them: {data}:2, {data}:3" in out
    assert "cnr: only 1 of 3 CnR records fit in sequence_len=128 tokens and axolotl needs at least 2" in out
    assert "randrange" not in out and not (tmp_path / "prepared").exists() or not any((tmp_path / "prepared").rglob("*.arrow"))


def test_cai_parquet_and_multiturn_jsonl_train_and_evaluate_through_the_mapping(tmp_path, tiny_llama,
                                                                                smollm2_tokenizer):
    """Issue 16's done-when: a CAI-shaped parquet (``cnr_fields: cai``) and a multi-turn jsonl
    (``cnr_format: chat``) each train with `axolotl train` and are evaluated with lm-eval's
    cnr_winrate after training, the responses read through the same mapping."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from test_fields import cai_rows

    from cnr_plugin.records import read_records

    rows = cai_rows(read_records(ROOT / "data" / "sample_cnr.jsonl"))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "cai.parquet")
    judge = tmp_path / "oracle.yaml"
    judge.write_text("judge: oracle\nchecker: keywords\n")
    # the responses file is CAI-shaped too (its critique/revision columns are left out by the map)
    pq.write_table(pa.Table.from_pylist([dict(r, meta={"required": ["the"]}) for r in rows[:2]]),
                   tmp_path / "cai_eval.parquet")
    (tmp_path / "cai").mkdir()
    (tmp_path / "multi").mkdir()
    cai = tiny_config(tmp_path / "cai", tiny_llama, max_steps=2, cnr_fields="cai", cnr_eval_post_train=True,
                      cnr_eval_iterations=1, cnr_eval_limit=2, cnr_eval_max_gen_toks=16,
                      cnr_eval_judge=str(judge), cnr_eval_responses=str(tmp_path / "cai_eval.parquet"))
    _set_data(cai, tmp_path / "cai.parquet")
    run_train(cai, env=axolotl_env(CNR_CACHE_DIR=str(tmp_path / "cache")))
    texts = prepared_texts(tmp_path / "cai" / "prepared", smollm2_tokenizer)
    assert all("### Critique:\n" in t and rows[0]["critic_prompt"] not in t for t in texts)
    res = json.loads(next((tmp_path / "cai" / "out" / "cnr_eval").rglob("results_*.json")).read_text())
    assert res["results"]["cnr_winrate"]["n_items,judged"] == 2

    multi = tiny_config(tmp_path / "multi", tiny_llama, max_steps=2, cnr_format="chat", cnr_eval_post_train=True,
                        cnr_eval_iterations=1, cnr_eval_limit=2, cnr_eval_max_gen_toks=16, cnr_eval_judge=str(judge),
                        cnr_eval_responses=str(ROOT / "eval_tasks" / "sample_multiturn_responses.jsonl"))
    _set_data(multi, ROOT / "data" / "sample_multiturn.jsonl")
    run_train(multi, env=axolotl_env(CNR_CACHE_DIR=str(tmp_path / "cache")))
    texts = prepared_texts(tmp_path / "multi" / "prepared", smollm2_tokenizer, n=10)
    assert any("Tokyo and Kyoto" in t and "<|im_start|>assistant\nTake a domestic flight" in t for t in texts)
    out = tmp_path / "multi" / "out" / "cnr_eval"
    res = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    assert res["n_items,judged"] == 2
    sample = json.loads(next(out.rglob("samples_cnr_winrate_*.jsonl")).read_text().splitlines()[0])
    assert json.loads(sample["doc"]["conversation"])[0]["content"] == "I'm planning a trip to Japan in April."


def _set_data(cfg_path: Path, data: Path) -> None:
    import yaml

    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["datasets"][0].update(path=str(data), ds_type="parquet" if data.suffix == ".parquet" else "json")
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
