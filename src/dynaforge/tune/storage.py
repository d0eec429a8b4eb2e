"""Where a study lives: the embedded journal file of a run folder, or any Optuna storage URL.

The default storage is an Optuna journal file (``study.journal``) in the run folder: an
append-only log guarded by a file lock, which several processes on one machine share safely
(SQLite locks up under concurrent writers). ``sqlite:///``, ``postgresql://`` and ``mysql://``
URLs open an :class:`optuna.storages.RDBStorage`; PostgreSQL is the storage for several
machines.

Every storage gets a heartbeat: a worker records one every ``heartbeat_interval`` seconds
while its trial runs, and a trial whose heartbeat is older than ``grace_period`` (its worker
was killed or its machine died) is failed and re-enqueued with the same parameters
(:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`), so it never stays RUNNING
forever. RDB storages have this built in; the journal storage gets it from
:class:`HeartbeatJournalStorage`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

#: Seconds between heartbeats of a running trial, and how long a silent trial lives on.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 60
#: How often a trial whose worker died is retried before it stays failed.
MAX_RETRY = 3
#: The system attribute holding a journal trial's last heartbeat (Unix time).
HEARTBEAT_ATTR = "dynaforge:heartbeat"

# The heartbeat helpers we rely on have been stable since Optuna 2.9; their "experimental"
# label would only clutter every run's output.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
JOURNAL_PREFIX = "journal:"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")


class StorageError(ValueError):
    """A storage that cannot be opened or reached (reported as a clear error)."""


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """A journal-file storage with Optuna's heartbeat protocol.

    The heartbeat is a system attribute of the running trial, appended to the journal; a
    RUNNING trial whose last heartbeat (or start, before the first one) is older than
    ``grace_period`` seconds is stale. Optuna's :func:`optuna.storages.fail_stale_trials` then
    fails it and calls ``stale_trial_callback``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        heartbeat_interval: int = HEARTBEAT_INTERVAL,
        grace_period: int = GRACE_PERIOD,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ) -> None:
        path = str(path)
        super().__init__(JournalFileBackend(path))
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_trial_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            last = trial.system_attrs.get(HEARTBEAT_ATTR)
            if last is None and trial.datetime_start is not None:
                last = trial.datetime_start.timestamp()
            if last is not None and now - last > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_trial_callback


def display_url(url: str) -> str:
    """``url`` with any password hidden, for logs and reports."""
    if url.startswith(JOURNAL_PREFIX):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL sqlalchemy cannot parse is shown as given
        return url


def default_storage_url(run_dir: str | os.PathLike) -> str:
    """The embedded storage of a run folder: ``journal:<run_dir>/study.journal``."""
    return f"{JOURNAL_PREFIX}{Path(run_dir) / 'study.journal'}"


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = GRACE_PERIOD,
    max_retry: int = MAX_RETRY,
) -> optuna.storages.BaseStorage:
    """Open (creating when needed) the storage named by ``url``.

    Args:
        url: ``journal:PATH`` (or a path ending in ``.journal``), or an SQLAlchemy URL
            (``sqlite:///file.db``, ``postgresql://user:pw@host:5432/db``, ``mysql://...``).

    Raises:
        StorageError: an unknown kind of URL, or a database that cannot be reached.
    """
    if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
        raise ValueError(
            f"need heartbeat_interval >= 1 s and grace_period > heartbeat_interval,"
            f" got {heartbeat_interval} and {grace_period}"
        )
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    journal = (
        url[len(JOURNAL_PREFIX) :]
        if url.startswith(JOURNAL_PREFIX)
        else (url if url.endswith(".journal") and "://" not in url else None)
    )
    if journal is not None:
        path = Path(journal)
        if not path.parent.is_dir():
            raise StorageError(f"storage {url}: folder {path.parent} does not exist")
        try:
            return HeartbeatJournalStorage(
                path,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                stale_trial_callback=retry,
            )
        except OSError as exc:
            raise StorageError(f"storage {url}: cannot open {path}: {exc}") from None
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if "://" not in url or scheme not in RDB_SCHEMES:
        raise StorageError(
            f"unknown storage {display_url(url)!r}: use journal:PATH (one machine), "
            "sqlite:///FILE, or postgresql://USER:PASSWORD@HOST:PORT/DB (several machines)"
        )
    engine_kwargs = {"pool_pre_ping": True}
    if scheme == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=retry,
        )
    except ImportError as exc:
        raise StorageError(
            f"storage {display_url(url)}: a database driver is missing ({exc})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's OperationalError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot reach storage {display_url(url)}: {first}") from None
