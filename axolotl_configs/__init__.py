"""Shipped inside the wheel as cnr_plugin.axolotl_configs (see cnr_plugin/resources.py)."""
