"""What the start-up hook costs every Python process of an environment (issue 31 §6).

``pip install cnr-plugin`` puts one file in site-packages, ``cnr_plugin_lm_eval.pth``, and Python runs
its line in every interpreter it starts there: pytest workers, pip, notebooks. This measures that line
alone. Two throw-away virtual environments (``python -m venv --without-pip``) see the same installed
packages through a path line (a path line adds the folder to ``sys.path`` without running the ``.pth``
files in it); one of them also gets the hook's ``.pth``. Each interpreter runs ``-c pass``, alternating,
``--runs`` times; the figures are the medians, and the hook's own import time from ``-X importtime``.

Goal: the hook adds at most 5 ms (and at most 1.1x the start-up without it), and it imports nothing
of lm-eval, pluggy, pydantic or the rest of the package until lm-eval itself is imported.

    python benchmarks/startup_cost.py            # in the environment to measure (.venv)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

PTH = "cnr_plugin_lm_eval.pth"
#: modules the hook must not bring into a process that never imports lm-eval
HEAVY = ("lm_eval", "pluggy", "pydantic", "yaml", "numpy", "torch", "transformers", "openai", "cnr_plugin.plugins",
         "cnr_plugin.evaluation", "cnr_plugin.judges", "importlib.abc", "importlib.resources", "typing")


def venv(folder: Path, site: Path, with_hook: bool) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    purelib = Path(subprocess.run([str(folder / "bin" / "python"), "-c", "import sysconfig; print(sysconfig."
                                   "get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "0_installed.pth").write_text(f"{site}\n")  # before the hook: .pth files run in name order
    if with_hook:
        (purelib / PTH).write_text((site / PTH).read_text())
    return folder / "bin" / "python"


def once(python: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(python), "-c", "pass"], check=True)
    return time.perf_counter() - t0


def imported(python: Path) -> list[str]:
    out = subprocess.run([str(python), "-c", "import sys; print('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True).stdout.split()
    return out


def import_ms(python: Path, modules: set[str]) -> float:
    """What importing ``modules`` cost one start-up, by ``-X importtime`` (the sum of their own times)."""
    err = subprocess.run([str(python), "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
    own = [line.split("|") for line in err.splitlines() if line.startswith("import time:") and "|" in line]
    return sum(int(p[0].split(":")[1]) for p in own if p[2].strip() in modules and p[0].split(":")[1].strip().isdigit()) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / PTH).exists():
        sys.exit(f"{site / PTH} is missing: install cnr-plugin into this environment first")
    with tempfile.TemporaryDirectory() as tmp:
        bare = venv(Path(tmp) / "without", site, with_hook=False)
        hooked = venv(Path(tmp) / "with", site, with_hook=True)
        for python in (bare, hooked):  # warm the file cache
            once(python)
        times: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(args.runs):
            times["without"].append(once(bare))
            times["with"].append(once(hooked))
        before, after = set(imported(bare)), set(imported(hooked))
        added = sorted(after - before)
        heavy = sorted(m for m in added if any(m == h or m.startswith(h + ".") for h in HEAVY))
        hook_ms = statistics.median(import_ms(hooked, set(added)) for _ in range(10))
    without = statistics.median(times["without"]) * 1000
    with_hook = statistics.median(times["with"]) * 1000
    added_ms = with_hook - without
    ratio = with_hook / without
    met = added_ms <= 5.0 and ratio <= 1.1 and not heavy
    rows = [{"case": "python -c pass", "without_hook_ms": round(without, 1), "with_hook_ms": round(with_hook, 1),
             "added_ms": round(added_ms, 1), "ratio": round(ratio, 3), "hook_import_ms": round(hook_ms, 2),
             "modules_added": len(added), "heavy_modules_added": heavy, "met": met}]
    print(f"python -c pass: {without:.1f} ms without the hook, {with_hook:.1f} ms with it "
          f"(+{added_ms:.1f} ms, {ratio:.3f}x); its imports {hook_ms:.2f} ms ({len(added)} modules)"
          f"{'; heavy: ' + ', '.join(heavy) if heavy else ''}")
    write_result("startup_cost", vars(args), rows, goal="the hook adds <= 5 ms and <= 1.1x, imports nothing heavy",
                 met=met, extra={"modules_added": added})


if __name__ == "__main__":
    main()
