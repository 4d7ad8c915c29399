"""People in the loop, through Label Studio: collecting critiques and revisions
(:mod:`.collect`, ``cnr annotate push|pull``, with model drafts) and judging revisions pairwise
(:mod:`.compare`, ``cnr annotate compare push|pull``). Needs ``pip install "cnr-plugin[annotate]"``."""
