"""Packing efficiency: the share of non-pad tokens with axolotl's `sample_packing: true` (its own
MultipackBatchSampler on our strategy's token lengths) and without packing, on the shipped
sample records and on 1000 synthetic records. Exits 1 if packing is below 95 %.

    python benchmarks/packing.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import saved_tokenizer, synthetic_records, write_result  # noqa: E402


def lengths(records: list[dict], tok_dir: Path) -> np.ndarray:
    from transformers import AutoTokenizer

    from cnr_plugin.axolotl.strategy import CnRStrategy
    from cnr_plugin.plugins import get_format

    strategy = CnRStrategy(get_format("plain"), AutoTokenizer.from_pretrained(str(tok_dir)), sequence_len=10**6)
    keys = sorted({k for r in records for k in r})
    out = []
    for i in range(0, len(records), 1000):
        chunk = records[i:i + 1000]
        out += [len(x) for x in strategy.tokenize_prompt({k: [r.get(k) for r in chunk] for k in keys})["input_ids"]]
    return np.array(out)


def packed(lens: np.ndarray, seq_len: int, mbs: int) -> float:
    from axolotl.utils.samplers.multipack import MultipackBatchSampler
    from torch.utils.data import SequentialSampler

    sampler = MultipackBatchSampler(SequentialSampler(range(len(lens))), batch_size=mbs, batch_max_len=seq_len,
                                    lengths=lens, bin_size=200, drop_last=False, num_processes=1)
    return sampler.efficiency()


def unpacked(lens: np.ndarray, mbs: int) -> float:
    """Dynamic padding to the longest row of each micro-batch (axolotl without pad_to_sequence_len)."""
    slots = sum(mbs * lens[i:i + mbs].max() for i in range(0, len(lens), mbs))
    return float(lens.sum() / slots)


def main() -> int:
    from cnr_plugin.records import read_records
    from cnr_plugin.resources import data_path

    sample = [r.model_dump(exclude_none=True) for r in read_records(data_path("sample_cnr.jsonl"))]
    sets = {"sample (34)": sample, "synthetic (1000)": synthetic_records(1000)}
    ok, out = True, []
    with tempfile.TemporaryDirectory() as d:
        tok = saved_tokenizer(Path(d) / "tok")
        print(f"{'data':<18} {'seq_len':>7} {'mean len':>8} {'packed':>7} {'unpacked':>9} {'pad to seq_len':>14}")
        for name, rows in sets.items():
            lens = lengths(rows, tok)
            for seq_len, mbs in ((1024, 2), (2048, 1)):
                eff = packed(lens[lens <= seq_len], seq_len, mbs)
                print(f"{name:<18} {seq_len:>7} {lens.mean():>8.0f} {eff:>6.1%} {unpacked(lens, mbs):>9.1%} "
                      f"{lens.mean() / seq_len:>14.1%}")
                ok &= eff >= 0.95
                out.append({"data": name, "sequence_len": seq_len, "micro_batch_size": mbs,
                            "mean_length": float(lens.mean()), "packed": eff, "unpacked": unpacked(lens, mbs),
                            "padded_to_sequence_len": float(lens.mean() / seq_len), "met": eff >= 0.95})
    print("goal: packed >= 95 % non-pad tokens:", "met" if ok else "MISSED")
    write_result("packing", {}, out, "packed >= 95 % non-pad tokens", ok, seeds={"synthetic_records": 0})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
