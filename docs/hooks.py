"""MkDocs hook: the figures of results/ are part of the site without being copied into docs/.

A page links them as ``figures/<path under results/>``; the files stay where the benchmark scripts
write them, so a re-run of a benchmark updates the site and nothing drifts.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]


def on_files(files: Files, config) -> Files:
    for png in sorted((ROOT / "results").rglob("*.png")):
        rel = png.relative_to(ROOT / "results").as_posix()
        files.append(File.generated(config, f"figures/{rel}", abs_src_path=str(png)))
    return files
