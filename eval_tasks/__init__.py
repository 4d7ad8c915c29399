"""Shipped inside the wheel as cnr_plugin.eval_tasks (see cnr_plugin/resources.py)."""
