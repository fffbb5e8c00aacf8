"""The replicas as a Serve config file names them (``import_path: mmsearch.replicas:application``): its ``args``
are read as the settings' variables are."""

import pytest

pytest.importorskip("ray.serve", reason="pip install 'ray[serve]==2.60.0' (requirements.txt pins it)")

from mmsearch.replicas import settings_of  # noqa: E402


def test_a_config_files_args_are_settings_over_the_variables(monkeypatch):
    monkeypatch.setenv("MMSEARCH_DATABASE_URL", "postgresql://db/mmsearch")
    monkeypatch.setenv("MMSEARCH_REPLICAS", "2")
    config = settings_of({"replicas": 4, "vector_store": "milvus://milvus:19530", "reload_interval": "0.5"})
    assert (config.replicas, config.vector_store, config.reload_interval) == (4, "milvus://milvus:19530", 0.5)
    assert config.database_url == "postgresql://db/mmsearch"
    monkeypatch.delenv("MMSEARCH_REPLICAS")
    assert settings_of({}).replicas == 1  # a Serve application has at least one replica


def test_unknown_or_malformed_args_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown settings in args: replica_count"):
        settings_of({"replica_count": 4})
    with pytest.raises(ValueError, match="MMSEARCH_REPLICAS"):
        settings_of({"replicas": "many"})
