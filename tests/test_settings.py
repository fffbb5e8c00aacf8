from pathlib import Path

from mmsearch import flags, settings


def test_env_overrides_defaults_and_flags_override_env(tmp_path):
    env = {"MMSEARCH_PORT": "9999", "MMSEARCH_DATA_DIR": str(tmp_path), "MMSEARCH_MODEL": "clip:ViT-B-32/openai"}
    cfg = settings.from_env(env)
    assert cfg.port == 9999 and cfg.data_dir == tmp_path and cfg.model == "clip:ViT-B-32/openai"
    cfg = settings.from_env(env, port=7000, model=None)
    assert cfg.port == 7000 and cfg.model == "clip:ViT-B-32/openai"


def test_cli_flags_parse_to_typed_fields(tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    flags.add_settings(parser, settings.CatalogSettings, settings.ServeSettings)
    args = parser.parse_args(["--port", "8123", "--index", str(tmp_path / "ix"), "--mcp"])
    cfg = settings.from_env({}, **flags.overrides(args, settings.Settings))
    assert cfg.port == 8123 and cfg.index == tmp_path / "ix" and cfg.catalog == "demo" and cfg.mcp is True


def test_default_index_path_depends_on_catalog_and_model_id(tmp_path):
    cfg = settings.Settings(data_dir=tmp_path, catalog="shop/items.csv")
    a = cfg.resolved_index("two-tower:demo@aaaa")
    b = cfg.resolved_index("two-tower:demo@bbbb")
    assert a != b and a.parent == tmp_path / "indexes" and "/" not in a.name
    assert settings.Settings(index=Path("/x/y")).resolved_index("anything") == Path("/x/y")


def test_hugging_face_space_listens_on_all_interfaces():
    assert settings.from_env({}).host == "127.0.0.1"
    assert settings.from_env({"SPACE_ID": "me/mmsearch"}).host == "0.0.0.0"
    assert settings.from_env({"SPACE_ID": "me/mmsearch", "MMSEARCH_HOST": "127.0.0.2"}).host == "127.0.0.2"


def test_the_model_follows_the_catalog_unless_named(tmp_path):
    env = {"MMSEARCH_DATA_DIR": str(tmp_path)}
    assert settings.from_env(env).model == "demo"
    assert settings.from_env(env, catalog="shop.csv").model == "zero-shot"
    assert settings.from_env(env, catalog="shop.csv", model="demo").model == "demo"
    assert settings.from_env(env, preset="fashion-mnist").model == "fashion-mnist"
    # an index built before keeps the model it was built with
    built = tmp_path / "indexes" / "shop.csv--two-tower-demo-model-abc"
    built.mkdir(parents=True)
    (built / "manifest.json").write_text('{"model_spec": "demo"}')
    assert settings.from_env(env, catalog="shop.csv").model == "demo"
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    (elsewhere / "manifest.json").write_text('{"model_spec": "clip:ViT-B-32/random"}')
    assert settings.from_env(env, catalog="other.csv", index=elsewhere).model == "clip:ViT-B-32/random"
    # app.py --index DIR alone (the README's command after index_build.py): the index's model, not the demo's
    assert settings.from_env(env, index=elsewhere).model == "clip:ViT-B-32/random"
    assert settings.from_env(env, index=tmp_path / "not-built-yet").model == "demo"
