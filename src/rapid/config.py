"""Effective settings: built-in defaults, then one TOML file, then ``RAPID_*`` environment variables.

The file is the first of ``--config``, ``$RAPID_CONFIG`` or ``./rapid.toml`` that is given or exists.
Every setting has one environment variable (see ``ENV_VARS``); the embedded defaults need no set-up:
an SQLite database, a local folder store and the local process engine, all under the work directory.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url


class ConfigError(ValueError):
    """A configuration file or variable that cannot be used."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # empty: SQLite file in the work directory
    password_file: str = ""  # a file whose first line is the password (kept out of URLs and env)


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""  # empty: file:// folder in the work directory
    pipeline_root: str = "pipeline"  # job specs: <store>/<pipeline_root>/<procdate>/
    product_root: str = "products"  # products: <store>/<product_root>/<procdate>/jid<jid>/
    log_root: str = "logs"  # logs: <store>/<log_root>/<procdate>/


@dataclass(frozen=True)
class EngineSettings:
    kind: str = "local"  # local | dask | awsbatch
    max_workers: int = 2  # local engine: jobs run at once
    dask_address: str = ""  # dask: scheduler address; empty starts a local cluster
    batch_job_queue: str = "rapid-jobs"
    batch_job_definition: str = "rapid-job"
    batch_region: str = "us-east-1"
    batch_endpoint_url: str = ""  # AWS endpoint override (an emulator in tests)


@dataclass(frozen=True)
class OperatorSettings:
    poll_seconds: float = 2.0  # pause between engine polls while waiting on jobs
    queue_timeout_seconds: float = 3600.0  # a job queued this long without starting is closed
    run_timeout_seconds: float = 7200.0  # a job running this long is closed
    max_attempts: int = 2  # launches per image and procdate before giving up


@dataclass(frozen=True)
class ScienceSettings:
    reference_size: int = 7000  # reference grid, pixels on a side, centred on the tile
    reference_scale_arcsec: float = 0.11
    reference_zero_point: float = 17.0
    reference_min_frames: int = 3
    reference_max_frames: int = 25
    detection_threshold: float = 5.0  # Scorr sigma
    detection_minarea: int = 2  # connected Scorr pixels; see rapid.science.config.DetectConfig


@dataclass(frozen=True)
class Settings:
    workdir: str = "./rapid-work"
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    operator: OperatorSettings = field(default_factory=OperatorSettings)
    science: ScienceSettings = field(default_factory=ScienceSettings)
    source: str = "defaults"  # where the settings came from, for `config show`

    @property
    def workpath(self) -> Path:
        return Path(self.workdir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The database URL to connect with, password from ``password_file`` if one is set."""
        url = self.database.url or f"sqlite:///{self.workpath / 'rapid.db'}"
        if self.database.password_file:
            secret = Path(self.database.password_file).read_text().splitlines()[0].strip()
            url = make_url(url).set(password=secret).render_as_string(hide_password=False)
        return url

    @property
    def store_url(self) -> str:
        return self.store.url or (self.workpath / "store").as_uri()

    def to_dict(self, *, mask_secrets: bool = True) -> dict[str, Any]:
        """The effective settings as plain data, with passwords masked unless asked otherwise."""
        out = asdict(self)
        out["workdir"] = str(self.workpath)
        url = self.database.url or f"sqlite:///{self.workpath / 'rapid.db'}"
        out["database"]["url"] = mask_url(url) if mask_secrets else self.database_url
        out["store"]["url"] = mask_url(self.store_url) if mask_secrets else self.store_url
        return out


# One environment variable per setting: (section or None, key, variable).
ENV_VARS: list[tuple[str | None, str, str]] = [
    (None, "workdir", "RAPID_WORKDIR"),
    ("database", "url", "RAPID_DATABASE_URL"),
    ("database", "password_file", "RAPID_DATABASE_PASSWORD_FILE"),
    ("store", "url", "RAPID_STORE_URL"),
    ("store", "pipeline_root", "RAPID_PIPELINE_ROOT"),
    ("store", "product_root", "RAPID_PRODUCT_ROOT"),
    ("store", "log_root", "RAPID_LOG_ROOT"),
    ("engine", "kind", "RAPID_ENGINE"),
    ("engine", "max_workers", "RAPID_MAX_WORKERS"),
    ("engine", "dask_address", "RAPID_DASK_ADDRESS"),
    ("engine", "batch_job_queue", "RAPID_BATCH_JOB_QUEUE"),
    ("engine", "batch_job_definition", "RAPID_BATCH_JOB_DEFINITION"),
    ("engine", "batch_region", "RAPID_BATCH_REGION"),
    ("engine", "batch_endpoint_url", "RAPID_BATCH_ENDPOINT_URL"),
    ("operator", "poll_seconds", "RAPID_POLL_SECONDS"),
    ("operator", "queue_timeout_seconds", "RAPID_QUEUE_TIMEOUT_SECONDS"),
    ("operator", "run_timeout_seconds", "RAPID_RUN_TIMEOUT_SECONDS"),
    ("operator", "max_attempts", "RAPID_MAX_ATTEMPTS"),
    ("science", "reference_size", "RAPID_REFERENCE_SIZE"),
    ("science", "detection_threshold", "RAPID_DETECTION_THRESHOLD"),
]

ENGINE_KINDS = ("local", "dask", "awsbatch")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy-style URL (an s3:// or file:// URL without a password)
        return url


def _coerce(section_cls: type, key: str, value: Any, origin: str) -> Any:
    ftype = {f.name: f.type for f in fields(section_cls)}[key]
    try:
        if ftype in ("int", int):
            return int(value)
        if ftype in ("float", float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {key} must be {ftype}, got {value!r}") from None


def _apply(settings: Settings, section: str | None, key: str, value: Any, origin: str) -> Settings:
    if section is None:
        if key != "workdir":
            raise ConfigError(f"{origin}: unknown setting {key!r}")
        return replace(settings, workdir=str(value))
    current = getattr(settings, section)
    if key not in {f.name for f in fields(current)}:
        raise ConfigError(f"{origin}: unknown setting {section}.{key}")
    new = replace(current, **{key: _coerce(type(current), key, value, origin)})
    return replace(settings, **{section: new})


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The TOML file to read: ``explicit``, else ``$RAPID_CONFIG``, else ``./rapid.toml`` if present."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get("RAPID_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"RAPID_CONFIG names {path}, which does not exist")
        return path
    local = Path("rapid.toml")
    return local if local.is_file() else None


def load_settings(config_file: str | os.PathLike | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Read the effective settings.

    Parameters
    ----------
    config_file : path, optional
        TOML file; if omitted, ``$RAPID_CONFIG`` or ``./rapid.toml`` is used when present.
    env : dict, optional
        Environment to read ``RAPID_*`` overrides from (default ``os.environ``).

    Returns
    -------
    Settings
    """
    env = os.environ if env is None else env
    settings = Settings()
    sources = []
    path = find_config_file(config_file)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        for key, value in data.items():
            if isinstance(value, dict):
                if key not in {"database", "store", "engine", "operator", "science"}:
                    raise ConfigError(f"{path}: unknown section [{key}]")
                for sub, subvalue in value.items():
                    settings = _apply(settings, key, sub, subvalue, str(path))
            else:
                settings = _apply(settings, None, key, value, str(path))
        sources.append(str(path))
    for section, key, var in ENV_VARS:
        if var in env and env[var] != "":
            settings = _apply(settings, section, key, env[var], f"${var}")
            sources.append(f"${var}")
    if settings.engine.kind not in ENGINE_KINDS:
        raise ConfigError(f"engine.kind must be one of {', '.join(ENGINE_KINDS)}, "
                          f"got {settings.engine.kind!r}")
    if settings.engine.max_workers < 1:
        raise ConfigError("engine.max_workers must be at least 1")
    return replace(settings, source=", ".join(sources) or "defaults")
