"""Shipped inside the wheel as cnr_plugin.data (see cnr_plugin/resources.py)."""
