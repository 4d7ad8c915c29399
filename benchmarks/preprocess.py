"""Preprocessing throughput: our strategy vs axolotl's `alpaca` vs the raw fast tokenizer.

Both strategies go through axolotl's own dataset preparation (`load_datasets`, as `axolotl
preprocess` runs it: multiprocessing, length filter, saving), on the same records (alpaca gets
instruction = prompt + response, output = critique + revision). The raw bound is one batched
`tokenizer(texts)` call on our rendered texts. Prints records/s and tokens/s and the ratios;
exits 1 if ours is below 1.0x alpaca or 0.8x raw (records/s).

    python benchmarks/preprocess.py [--records 100000] [--scaling]

The goal is judged at --records (default 100k, where axolotl's fixed costs — worker start-up,
the length filter, saving — are amortized as they are on real data sets); --scaling adds 1k and
10k, where those fixed costs dominate both strategies.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import saved_tokenizer, synthetic_records, write_jsonl, write_result  # noqa: E402

os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def config(tmp: Path, tok: Path, data: Path, ds_type: str, name: str) -> Path:
    cfg = {"base_model": str(tok), "tokenizer_config": str(tok), "sequence_len": 2048, "val_set_size": 0,
           "datasets": [{"path": str(data), "ds_type": "json", "type": ds_type}],
           "dataset_prepared_path": str(tmp / f"prep-{name}"), "output_dir": str(tmp / f"out-{name}"),
           "micro_batch_size": 1, "num_epochs": 1, "learning_rate": 1e-4, "bf16": False, "fp16": False,
           "dataset_num_proc": os.cpu_count()}
    if ds_type.startswith("cnr_plugin"):
        cfg["plugins"] = ["cnr_plugin.axolotl.CnRPlugin"]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def prepare(cfg_path: Path) -> tuple[float, int]:
    from axolotl.cli.args import PreprocessCliArgs
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets

    cfg = load_cfg(str(cfg_path))
    t0 = time.perf_counter()
    meta = load_datasets(cfg=cfg, cli_args=PreprocessCliArgs())
    elapsed = time.perf_counter() - t0
    return elapsed, sum(len(x) for x in meta.train_dataset["input_ids"])


def raw(tok_dir: Path, rows: list[dict]) -> tuple[float, int]:
    from transformers import AutoTokenizer

    from cnr_plugin.plugins import get_format
    from cnr_plugin.records import CnRRecord

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    fmt = get_format("plain")
    texts = [r.input + r.target for r in (fmt.render_record(CnRRecord(**row)) for row in rows)]
    t0 = time.perf_counter()
    ids = tok(texts)["input_ids"]
    return time.perf_counter() - t0, sum(map(len, ids))


def measure(n: int, tmp: Path, tok: Path) -> dict[str, tuple[float, int]]:
    rows = synthetic_records(n)
    cnr = write_jsonl(tmp / f"cnr-{n}.jsonl", rows)
    alpaca = write_jsonl(tmp / f"alpaca-{n}.jsonl", [{"instruction": f"{r['prompt']}\n\n{r['response']}", "input": "",
                                                     "output": f"{r['critique']}\n\n{r['revision']}"} for r in rows])
    return {"cnr": prepare(config(tmp, tok, cnr, "cnr_plugin.axolotl.strategy", f"cnr-{n}")),
            "alpaca": prepare(config(tmp, tok, alpaca, "alpaca", f"alpaca-{n}")),
            "raw": raw(tok, rows)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--scaling", action="store_true", help="also 1k and 10k records")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default results/benchmarks/preprocess.json)")
    a = ap.parse_args()
    sizes = sorted({1_000, 10_000, a.records}) if a.scaling else [a.records]
    ok, rows = True, []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        tok = saved_tokenizer(tmp / "tok")
        print(f"{'records':>8} {'what':<8} {'seconds':>8} {'records/s':>10} {'tokens/s':>11} {'vs alpaca':>9} {'vs raw':>7}")
        for n in sizes:
            m = measure(n, tmp, tok)
            for name in ("cnr", "alpaca", "raw"):
                t, toks = m[name]
                print(f"{n:>8} {name:<8} {t:>8.2f} {n / t:>10.0f} {toks / t:>11.0f} "
                      f"{m['alpaca'][0] / t:>8.2f}x {m['raw'][0] / t:>6.2f}x")
            vs_alpaca, vs_raw = m["alpaca"][0] / m["cnr"][0], m["raw"][0] / m["cnr"][0]
            met = vs_alpaca >= 1.0 and vs_raw >= 0.8
            if n == a.records and not met:
                ok = False
            rows.append({"records": n, **{f"{k}_records_per_s": n / m[k][0] for k in ("cnr", "alpaca", "raw")},
                         "vs_alpaca": vs_alpaca, "vs_raw": vs_raw, "met": met, "judged": n == a.records})
    print("goal: cnr >= 1.0x alpaca and >= 0.8x raw tokenizer (records/s):", "met" if ok else "MISSED")
    write_result("preprocess", vars(a), rows, f"at {a.records} records: ours >= 1.0x alpaca and >= 0.8x the raw "
                 "tokenizer (records/s); smaller sizes are shown, not judged", ok, out=a.out,
                 seeds={"synthetic_records": 0})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
