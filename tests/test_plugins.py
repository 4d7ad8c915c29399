import sys

import pytest
from conftest import ROOT

from cnr_plugin import plugins

FIXTURE = ROOT / "tests" / "plugin_fixture"


@pytest.fixture
def installed_plugin(monkeypatch):
    """The test plugin on sys.path: importlib.metadata sees its dist-info like any installed package."""
    monkeypatch.syspath_prepend(str(FIXTURE))
    plugins.reset()
    yield
    sys.modules.pop("cnr_brackets", None)
    plugins.reset()


def test_builtins_register_like_plugins():
    plugins.reset()
    assert {"plain", "chat"} <= set(plugins.get_formats())
    names = [p["name"] for p in plugins.plugin_versions()]
    assert "cnr_plugin.default_plugins.formats" in names


def test_entry_point_plugin_is_loaded(installed_plugin):
    fmt = plugins.get_format("brackets")
    rendered = fmt.render("p", "r", "c", "v")
    assert fmt.parse(rendered.target).revision == "v"
    assert {"name": "brackets", "distribution": "cnr-brackets", "version": "0.1"} in plugins.plugin_versions()


def test_cnr_load_plugins_pins_outside_plugins(installed_plugin, monkeypatch):
    monkeypatch.setenv("CNR_LOAD_PLUGINS", "")
    plugins.reset()
    with pytest.raises(plugins.PluginError, match="unknown CnR format 'brackets'"):
        plugins.get_format("brackets")
    monkeypatch.setenv("CNR_LOAD_PLUGINS", "brackets,missing")
    plugins.reset()
    with pytest.raises(plugins.PluginError, match="not installed: missing"):
        plugins.get_formats()


def test_duplicate_names_are_an_error(installed_plugin):
    from cnr_plugin.formats.plain import PlainFormat

    class Impostor:
        @plugins.hookspecs.hookimpl
        def register_formats(self, register):
            register(PlainFormat())

    plugins.register(Impostor(), name="impostor")
    with pytest.raises(plugins.PluginError, match="'plain' is registered twice"):
        plugins.get_formats()
