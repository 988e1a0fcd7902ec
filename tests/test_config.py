"""Configuration: file, environment overrides, validation, init, secrets never shown."""

from __future__ import annotations

import os
import stat

import pytest

from newsletter.config import Config, SmtpSettings, load_config, write_default_config
from newsletter.errors import ConfigError


def test_defaults_without_a_file_use_the_embedded_store_and_local_catcher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.database_url == f"sqlite:///{tmp_path}/subscribers/newsletter.db"
    assert config.smtp == SmtpSettings(host="127.0.0.1", port=8025, tls="off", eight_bit=True)
    assert config.source is None


def test_file_then_environment(tmp_path):
    (tmp_path / "newsletter.toml").write_text(
        'base_url = "https://news.example.org"\ndatabase_url = "sqlite:///data/x.db"\nconfirm_days = 3\n'
        'languages = ["en", "ar"]\n'
    )
    env = {"NEWSLETTER_CONFIG": str(tmp_path / "newsletter.toml"),
           "NEWSLETTER_SMTP_URL": "smtps://mailer@relay.example.org",
           "NEWSLETTER_SECRET_KEY": "s" * 32, "NEWSLETTER_CONFIRM_DAYS": "5"}
    config = load_config(environ=env)
    assert config.base_url == "https://news.example.org"
    assert config.database_url == f"sqlite:///{tmp_path}/data/x.db"  # relative to the file
    assert config.confirm_days == 5  # environment wins
    assert config.languages == ("en", "ar")
    assert config.smtp.tls == "implicit" and config.smtp.port == 465 and config.smtp.username == "mailer"
    assert config.secret() == b"s" * 32


@pytest.mark.parametrize("url, tls, port", [
    ("smtp://relay.example.org", "starttls", 587),
    ("smtp://relay.example.org:2525?starttls=required", "starttls", 2525),
    ("smtp://127.0.0.1:8025?starttls=off", "off", 8025),
    ("smtps://relay.example.org", "implicit", 465),
])
def test_starttls_is_required_unless_explicitly_disabled(url, tls, port):
    settings = SmtpSettings.from_url(url)
    assert (settings.tls, settings.port) == (tls, port)


@pytest.mark.parametrize("content, message", [
    ('smtp_url = "http://relay"', "smtp:// or smtps://"),
    ("confirm_days = 'many'", "confirm_days"),
    ("nonsense = 1", "unknown setting 'nonsense'"),
    ("base_url = 'news.example.org'", "base_url"),
    ("= broken", "not valid TOML"),
    ('smtp_url = "smtp://relay?starttls=maybe"', "starttls"),
])
def test_bad_settings_are_named(tmp_path, content, message):
    path = tmp_path / "newsletter.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_secrets_never_appear_in_repr():
    config = Config(secret_key="TOPSECRET-abcdefghijkl", smtp_password="PASSWORD-xyz",
                    smtp_url="smtp://u:URLPASS@relay.example.org")
    assert "TOPSECRET" not in repr(config) and "PASSWORD" not in repr(config)
    assert "URLPASS" not in repr(config.smtp) and "PASSWORD" not in repr(config.smtp)


def test_a_missing_secret_is_an_error_carrying_the_key_file(tmp_path):
    """The library says what is missing (and where); the CLI words what to run (test_cli)."""
    from newsletter.errors import MissingSecretKey

    with pytest.raises(MissingSecretKey) as info:
        Config(secret_key_file=str(tmp_path / "none.key")).secret()
    assert info.value.path == str(tmp_path / "none.key") and info.value.key == "secret_key"
    assert isinstance(info.value, ConfigError) and "newsletter" not in str(info.value)


def test_write_default_config_creates_private_key_once(tmp_path):
    written = write_default_config(tmp_path)
    assert {p.name for p in written} == {"newsletter.toml", "secret.key"}
    key = tmp_path / "secret.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    before = key.read_text()
    assert write_default_config(tmp_path) == []
    assert key.read_text() == before
    config = load_config(tmp_path / "newsletter.toml", environ={})  # the written file is valid
    assert len(config.secret()) >= 32
