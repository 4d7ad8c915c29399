"""Built-in plugins, registered by :mod:`cnr_plugin.plugins` exactly like outside ones."""
