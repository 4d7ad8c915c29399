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


# issue 24: a judge from another package, with an option of its own -------------------------------

def test_entry_point_judge_has_its_own_options_in_its_cache_key(installed_plugin, tmp_path):
    from cnr_plugin.cache import Cache
    from cnr_plugin.evaluation import Item, judge_revisions, verdict_key
    from cnr_plugin.judges import JudgeConfigError, JudgePair, load_judge_config, make_judge

    longer, shorter = load_judge_config({"judge": "length"}), load_judge_config({"judge": "length", "prefer": "shorter"})
    assert longer.options.prefer == "longer" and shorter.options.prefer == "shorter"
    pair = JudgePair("p", "a long text", "short")
    assert verdict_key(longer, make_judge(longer), pair) != verdict_key(shorter, make_judge(shorter), pair)
    # the judge validates its own options: a misspelt key or a bad value fails in one line
    with pytest.raises(JudgeConfigError, match="unknown key 'prefr'; did you mean 'prefer'\\? for judge 'length'"):
        load_judge_config({"judge": "length", "prefr": "shorter"})
    with pytest.raises(JudgeConfigError, match="'prefer': Input should be 'longer' or 'shorter'"):
        load_judge_config({"judge": "length", "prefer": "middle"})

    items, results = [Item("1", "p", "short")], {"1": [(1, "a longer revision")]}
    cache = Cache(tmp_path / "c.sqlite")
    first = judge_revisions(items, results, longer, cache=cache, progress=False)
    again = judge_revisions(items, results, longer, cache=cache, progress=False)
    other = judge_revisions(items, results, shorter, cache=cache, progress=False)
    assert (first.calls, again.calls, again.cache_hits, other.calls) == (2, 0, 2, 2)
    assert first.summary["rows"][0]["winrate"] == 1.0 and other.summary["rows"][0]["winrate"] == 0.0
    assert {"name": "length", "distribution": "cnr-length-judge", "version": "0.1"} in plugins.plugin_versions()


def test_a_registered_judge_must_be_a_judge_class(installed_plugin):
    class NotAJudge:
        @plugins.hookspecs.hookimpl
        def register_judges(self, register):
            register(lambda options: None)

    plugins.register(NotAJudge(), name="not-a-judge")
    with pytest.raises(plugins.PluginError, match="is not a judge class"):
        plugins.get_judges()


def test_a_registered_judges_options_must_be_judge_options(installed_plugin):
    import pydantic

    from cnr_plugin.judges import JudgeBase

    class Plain(JudgeBase):  # Options a pydantic model, but not JudgeOptions: no fingerprint for the cache key
        name = "plain-options"

        class Options(pydantic.BaseModel):
            x: int = 1

        def judge_one(self, pair):
            raise AssertionError

    class Registers:
        @plugins.hookspecs.hookimpl
        def register_judges(self, register):
            register(Plain)

    plugins.register(Registers(), name="plain-options")
    with pytest.raises(plugins.PluginError, match="is not a judge class"):
        plugins.get_judges()


def test_the_package_has_no_import_cycle():
    """Issue 31 §6: no cycle among the package's modules, counting imports inside functions and the package
    __init__ an import runs first (judges <-> judges.config <-> plugins and lm_eval.model <-> lm_eval.tasks were)."""
    import ast
    from pathlib import Path

    import cnr_plugin

    root = Path(cnr_plugin.__file__).parent
    modules = {".".join(("cnr_plugin", *f.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): f
               for f in root.rglob("*.py")}

    def imported(name: str, f: Path) -> set[str]:
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        out = set()
        for node in ast.walk(ast.parse(f.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                while t in modules and t != "cnr_plugin":  # importing a.b.c runs a.b's __init__ first
                    if t != name and not name.startswith(t + "."):
                        out.add(t)
                    t = t.rsplit(".", 1)[0]
        return out

    graph = {name: imported(name, f) for name, f in modules.items()}

    def reaches(start: str, goal: str) -> list[str] | None:
        seen, stack = set(), [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == goal:
                    return path + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [" -> ".join(c) for name in sorted(graph) if (c := reaches(name, name))]
    assert not cycles, cycles


def test_hooks_go_through_pluggys_hook_caller(installed_plugin):
    """Tracing sees every registration hook call (datasette and llm call hooks the same way)."""
    seen = []
    pm = plugins.get_plugin_manager()
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name), lambda *a: None)
    try:
        plugins.get_judges()
        plugins.get_formats()
    finally:
        undo()
    assert seen == ["register_judges", "register_formats"]


def test_cnr_load_plugins_messages_name_what_is_installed(installed_plugin, monkeypatch):
    """A distribution name (what `pip install` took) is mapped to its entry-point name; a near miss
    gets a suggestion; every message lists what is installed; a judge or format that the variable
    filtered out says so."""
    monkeypatch.setenv("CNR_LOAD_PLUGINS", "cnr-brackets")
    plugins.reset()
    with pytest.raises(plugins.PluginError) as err:
        plugins.get_formats()
    msg = str(err.value)
    assert "cnr-brackets (a distribution; its entry-point name is 'brackets')" in msg
    assert "installed: brackets, length" in msg and "\n" not in msg
    monkeypatch.setenv("CNR_LOAD_PLUGINS", "brakets")
    plugins.reset()
    with pytest.raises(plugins.PluginError, match="brakets; did you mean 'brackets'"):
        plugins.get_formats()
    monkeypatch.setenv("CNR_LOAD_PLUGINS", "brackets")
    plugins.reset()
    with pytest.raises(plugins.PluginError, match="unknown judge 'length'.*CNR_LOAD_PLUGINS='brackets' loads only"):
        plugins.get_judge("length")


@pytest.mark.parametrize("options, key", [
    ({"judge": "length", "prefer": True}, "prefer"),             # a plugin's own option
    ({"judge": "openai", "max_tokens": "32"}, "max_tokens"),     # a built-in's: "32" is not silently 32
    ({"judge": "openai", "max_tokens": True}, "max_tokens"),     # nor true silently 1
    ({"judge": "oracle", "concurrency": "8"}, "concurrency"),    # a shared key
])
def test_judge_options_are_validated_strictly(installed_plugin, options, key):
    from cnr_plugin.judges import JudgeConfigError, load_judge_config

    with pytest.raises(JudgeConfigError, match=f"'{key}'"):
        load_judge_config({"check_reachable": False, **options} if options["judge"] == "openai" else options)
