"""Settings: defaults that run locally, and one clear line for every bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from microservice_demo.settings import SettingsError, load_settings, load_settings_or_exit


def test_defaults_run_locally_with_nothing_set() -> None:
    settings = load_settings()
    assert settings.environment == "local"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.log_format == "text"
    assert settings.admin_token is None
    assert settings.fault_injection is False
    assert settings.version == "0.1.0"


def test_values_come_from_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENVIRONMENT", "staging")
    monkeypatch.setenv("APP_PORT", "8080")
    monkeypatch.setenv("APP_LOG_LEVEL", "debug")
    monkeypatch.setenv("APP_GIT_COMMIT", "0123abcd")
    monkeypatch.setenv("APP_ADMIN_TOKEN", "s3cret-token-of-some-length")
    settings = load_settings()
    assert settings.environment == "staging"
    assert settings.port == 8080
    assert settings.log_level == "DEBUG"
    assert settings.git_commit == "0123abcd"
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret-token-of-some-length"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("APP_PORT", "http", "valid integer"),
        ("APP_PORT", "70000", "less than or equal to 65535"),
        ("APP_ENVIRONMENT", "QA env", "should match pattern"),
        ("APP_LOG_LEVEL", "loud", "'TRACE', 'DEBUG', 'INFO'"),
        ("APP_LOG_FORMAT", "xml", "'json' or 'text'"),
        ("APP_ACCESS_LOG", "maybe", "valid boolean"),
        ("APP_FAULT_INJECTION", "perhaps", "valid boolean"),
        ("APP_GIT_COMMIT", "not-a-sha", "should match pattern"),
        ("APP_VERSION", "", "at least 1 character"),
    ],
)
def test_bad_variable_is_named_with_its_problem(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert len(caught.value.lines) == 1
    line = caught.value.lines[0]
    assert line.startswith(f"invalid setting {variable}={value!r}: ")
    assert expected in line


def test_admin_token_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ADMIN_TOKEN", "short")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    (line,) = caught.value.lines
    assert "APP_ADMIN_TOKEN=<hidden>" in line
    assert "short" not in line
    assert "at least 16 characters" in line


def test_every_bad_variable_gets_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "0")
    monkeypatch.setenv("APP_LOG_FORMAT", "yaml")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert sorted(line.split("=")[0] for line in caught.value.lines) == [
        "invalid setting APP_LOG_FORMAT",
        "invalid setting APP_PORT",
    ]


def test_exit_status_and_stderr(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("APP_PORT", "http")
    with pytest.raises(SystemExit) as caught:
        load_settings_or_exit()
    assert caught.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("invalid setting APP_PORT='http'")


def test_secrets_come_from_files_in_the_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "app_admin_token").write_text("token-from-a-mounted-secret")
    monkeypatch.setenv("APP_SECRETS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "token-from-a-mounted-secret"


def test_the_environment_wins_over_a_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "app_admin_token").write_text("token-from-a-mounted-secret")
    monkeypatch.setenv("APP_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("APP_ADMIN_TOKEN", "token-from-the-environment")
    settings = load_settings()
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "token-from-the-environment"


def test_an_empty_secrets_dir_means_no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APP_SECRETS_DIR", str(tmp_path))
    assert load_settings().admin_token is None


def test_a_missing_secrets_dir_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("APP_SECRETS_DIR", str(tmp_path / "absent"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.lines == [f"invalid setting APP_SECRETS_DIR={str(tmp_path / 'absent')!r}: not a directory"]


def test_a_weak_token_file_is_rejected_without_echoing_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "app_admin_token").write_text("short")
    monkeypatch.setenv("APP_SECRETS_DIR", str(tmp_path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    (line,) = caught.value.lines
    assert "APP_ADMIN_TOKEN=<hidden>" in line
