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


def test_domain_limits_over_the_defaults(tmp_path):
    from newsletter.config import DEFAULT_DOMAIN_LIMITS

    assert Config().domain_limits == DEFAULT_DOMAIN_LIMITS
    assert Config().domain_limit_table()["gmail.com,googlemail.com"] == 10
    path = tmp_path / "newsletter.toml"
    path.write_text('[domain_limits]\n"Gmail.com, googlemail.com" = 4\n"orange.fr" = 2\n"mail.ru" = 0\n'
                    '"partner.example" = 1\n')
    table = load_config(path, environ={}).domain_limit_table()
    assert table["gmail.com,googlemail.com"] == 4 and table["orange.fr"] == 2 and table["partner.example"] == 1
    assert table["wanadoo.fr"] == 3  # left alone of its default group, with the group's limit
    assert "mail.ru" not in table and table["bk.ru,inbox.ru,list.ru"] == 5  # 0: no limit for mail.ru only
    assert not any("gmail.com" in key.split(",") for key in table if key != "gmail.com,googlemail.com")
    path.write_text("")
    from_env = load_config(path, environ={"NEWSLETTER_DOMAIN_LIMITS": '{"yahoo.com": 2}'})
    assert from_env.domain_limit_table()["yahoo.com"] == 2


@pytest.mark.parametrize("table, message", [
    ('"gmail" = 3', "'gmail' is not a domain"),
    ('"gmail.com" = -1', "gmail.com must be a whole number"),
    ('"gmail.com" = "five"', "gmail.com must be a whole number"),
    ('"gmail.com" = true', "gmail.com must be a whole number"),
    ('"gmail.com" = 2\n"googlemail.com,gmail.com" = 3', "gmail.com is named twice"),
    ('"a b.com" = 1', "is not a domain"),
])
def test_bad_domain_limits_are_refused_naming_the_key(tmp_path, table, message):
    path = tmp_path / "newsletter.toml"
    path.write_text("[domain_limits]\n" + table + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, environ={})
    assert caught.value.key == "domain_limits"
    path.write_text("domain_limits = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        load_config(path, environ={})


@pytest.mark.parametrize("body, message", [
    ({"rate": 0}, "rate must be a number"), ({"rate": "fast"}, "rate must be a number"),
    ({"rate": True}, "rate must be a number"), ({"hourly_cap": 0}, "hourly_cap must be a whole number"),
    ({"hourly_cap": 2.5}, "hourly_cap must be a whole number"),
])
def test_bad_relay_rates_are_refused(body, message):
    from newsletter.config import parse_relays

    with pytest.raises(ConfigError, match=message):
        parse_relays({"office": {"url": "smtp://relay.example.org", **body}})
    spec = parse_relays({"office": {"url": "smtp://relay.example.org", "rate": 2, "hourly_cap": 500}})[0]
    assert (spec.rate, spec.hourly_cap) == (2.0, 500)
