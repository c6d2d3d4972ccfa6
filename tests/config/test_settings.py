"""Settings come from defaults, then one TOML file, then RAPID_* variables; secrets never shown."""

from __future__ import annotations

import pytest

from rapid.config import ConfigError, load_settings


def test_defaults_live_under_the_work_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.workpath == tmp_path / "rapid-work"
    assert settings.database_url == f"sqlite:///{tmp_path / 'rapid-work' / 'rapid.db'}"
    assert settings.store_url == (tmp_path / "rapid-work" / "store").as_uri()
    assert settings.engine.kind == "local"
    assert settings.source == "defaults"


def test_toml_then_environment_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "site.toml"
    cfg.write_text('workdir = "/data/w"\n[engine]\nmax_workers = 7\n[operator]\npoll_seconds = 0.5\n')
    settings = load_settings(cfg, env={"RAPID_MAX_WORKERS": "3", "RAPID_WORKDIR": "/data/x"})
    assert settings.engine.max_workers == 3
    assert settings.operator.poll_seconds == 0.5
    assert str(settings.workpath) == "/data/x"
    assert "RAPID_MAX_WORKERS" in settings.source and "site.toml" in settings.source


def test_rapid_config_variable_and_local_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rapid.toml").write_text("[engine]\nmax_workers = 5\n")
    assert load_settings(env={}).engine.max_workers == 5
    other = tmp_path / "other.toml"
    other.write_text("[engine]\nmax_workers = 4\n")
    monkeypatch.setenv("RAPID_CONFIG", str(other))
    assert load_settings(env={}).engine.max_workers == 4


def test_password_is_masked_when_shown(tmp_path):
    env = {"RAPID_DATABASE_URL": "postgresql+psycopg://ops:s3cret@db.example:5432/rapid"}
    settings = load_settings(env=env)
    shown = settings.to_dict()
    assert "s3cret" not in str(shown)
    assert shown["database"]["url"] == "postgresql+psycopg://ops:***@db.example:5432/rapid"
    assert "s3cret" in settings.database_url  # the real one is still used to connect


def test_password_file_supplies_the_password(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("fromfile\n")
    env = {"RAPID_DATABASE_URL": "postgresql+psycopg://ops@h/rapid",
           "RAPID_DATABASE_PASSWORD_FILE": str(secret)}
    settings = load_settings(env=env)
    assert ":fromfile@" in settings.database_url
    assert "fromfile" not in str(settings.to_dict())


@pytest.mark.parametrize("text, message", [
    ("[engine]\nkind = 'slurm'\n", "engine.kind"),
    ("[engine]\nmax_workers = 'many'\n", "max_workers"),
    ("[nope]\nx = 1\n", "unknown section"),
    ("[engine]\ncolour = 1\n", "unknown setting engine.colour"),
    ("not toml [", "site.toml"),
])
def test_bad_files_name_the_problem(tmp_path, text, message):
    cfg = tmp_path / "site.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env={})


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})
