"""One seam for running independent work items: in the caller, local processes or
threads, or an existing Dask distributed cluster.

Design-space sweeps (:func:`winogen.fpga.explore.explore`) and fault campaigns
(:mod:`winogen.nets.faults`) split their work into items and hand them, with one work
function, to an :class:`Executor`:

* :class:`LocalExecutor` (``jobs`` 1: inline in the caller, no pool; else a pool of
  ``jobs`` processes or threads on this machine);
* :class:`DaskExecutor` (a ``distributed.Client`` connected to a running scheduler, whose
  workers run the items; the cluster decides the parallelism).

:meth:`Executor.map` returns the results in the order of the items whichever item
finished first; :meth:`Executor.as_completed` yields ``(index, result)`` as items finish.
Both call nothing but the work function on the workers: progress is reported in the
caller's process.

Determinism contract
--------------------
A work item carries everything its result depends on, as plain picklable data: the
configuration, the inputs (or the built model), and its own random seed, derived by the
caller from the user's seed and the item's index (``numpy.random.SeedSequence([seed,
index, ...])``, or ``SeedSequence(seed).spawn(n)[index]``), never drawn from a generator
shared between items. The work function is a top-level function of an importable module
(pickled by reference) and reads no global state the caller set up. Then a result does
not depend on which executor or worker ran the item, nor in what order, and
``LocalExecutor(1)``, ``LocalExecutor(4)`` and a Dask cluster give identical results.
Local processes are started with ``spawn`` for the same reason: like a Dask worker, they
inherit nothing from the caller's state (and no process that runs threads is forked).

Dask workers must run the same winogen (same sources, same tool versions) as the
caller, and a work function that writes files (a sweep's build cache) needs the workers
to share that filesystem, at the same path.

Parameters are checked before anything starts (:func:`check_executor`); nothing here
imports Amaranth, and Dask is imported only when a :class:`DaskExecutor` is made, so
the package works without it.
"""

import concurrent.futures
import multiprocessing
import numbers
import re

__all__ = ["EXECUTORS", "MAX_JOBS", "DEFAULT_TIMEOUT", "Executor", "LocalExecutor",
           "DaskExecutor", "ClusterUnavailable", "check_executor", "make_executor"]

#: The executors :func:`make_executor` builds (``winogen explore --executor``).
EXECUTORS = ("local", "dask")

#: Most local processes or threads (the CLI's ``-j`` bound).
MAX_JOBS = 64

#: Seconds to wait for a Dask scheduler to answer, and for it to have a worker.
DEFAULT_TIMEOUT = 10.0

#: ``[SCHEME://]HOST:PORT`` with a scheme distributed ships (tcp, tls, websockets).
_ADDRESS = re.compile(r"(?:(?:tcp|tls|ws|wss)://)?"
                      r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
                      r":(?P<port>[0-9]{1,5})")

_ADDRESS_TEXT = "a Dask scheduler address such as tcp://HOST:8786"


class ClusterUnavailable(ConnectionError):
    """The Dask scheduler did not answer in time, or has no worker.

    ``address`` is the scheduler's, ``reason`` the short cause (for a one-line message).
    """

    def __init__(self, address, reason):
        super().__init__(f"the Dask scheduler at {address} is unavailable: {reason}")
        self.address = address
        self.reason = reason

    def __reduce__(self):   # picklable like any exception, with both fields
        return type(self), (self.address, self.reason)


# --- Parameters ---------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_dask_object(value):
    """A ``distributed.Client`` or a cluster object (``LocalCluster``, ...)."""
    if isinstance(value, (str, bytes, numbers.Number, type(None))):
        return False
    try:
        import distributed
        from distributed.deploy import Cluster
    except ImportError:      # without Dask no object can be one
        return False
    return isinstance(value, (distributed.Client, Cluster))


def check_executor(executor="local", jobs=1, scheduler=None, *, flags=False):
    """Refuse a bad or contradictory executor choice, before anything is started.

    Parameters
    ----------
    executor : str
        One of :data:`EXECUTORS`.
    jobs : int
        Local processes or threads, 1 to :data:`MAX_JOBS`; only 1 with ``dask`` (the
        cluster decides its parallelism: a different value is refused, not ignored).
    scheduler : str, distributed.Client or cluster, optional
        With ``dask`` only, and needed there: ``[SCHEME://]HOST:PORT`` (scheme tcp, tls,
        ws or wss), or a client or cluster object (tests, notebooks).
    flags : bool
        Word the messages in command-line options (``--executor``, ``-j/--jobs``,
        ``--scheduler``) instead of parameter names.

    Returns
    -------
    tuple
        ``(executor, jobs, scheduler)``.

    Raises
    ------
    ValueError
        One line naming the parameter (or option) and the accepted values.
    """
    def name(param):
        return {"jobs": "--jobs"}.get(param, "--" + param) if flags else param

    def value(v):
        return v if flags else repr(v)

    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise ValueError(f"{name('executor')} must be one of {', '.join(EXECUTORS)}, "
                         f"not {executor!r}")
    if not _is_int(jobs) or not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"{name('jobs')} must be an integer from 1 to {MAX_JOBS}, "
                         f"not {jobs!r}")
    if executor == "local":
        if scheduler is not None:
            raise ValueError(f"{name('scheduler')} applies only to {name('executor')} "
                             f"{value('dask')}, not {name('executor')} {value('local')}")
        return executor, int(jobs), None
    if scheduler is None:
        raise ValueError(f"{name('executor')} {value('dask')} needs "
                         + ("--scheduler ADDRESS (such as tcp://HOST:8786)" if flags else
                            "a scheduler: an address such as 'tcp://HOST:8786', or a "
                            "distributed Client or cluster"))
    if jobs != 1:
        raise ValueError(f"{name('jobs')} does not apply with {name('executor')} "
                         f"{value('dask')} (the cluster's workers set the parallelism), "
                         f"not {jobs!r}")
    if isinstance(scheduler, str):
        mo = _ADDRESS.fullmatch(scheduler)
        if mo is None or not 1 <= int(mo.group("port")) <= 65535:
            raise ValueError(f"{name('scheduler')} must be {_ADDRESS_TEXT}, "
                             f"not {scheduler!r}")
    elif not _is_dask_object(scheduler):
        raise ValueError(f"{name('scheduler')} must be {_ADDRESS_TEXT}, or a distributed "
                         f"Client or cluster, not {scheduler!r}")
    return executor, 1, scheduler


def make_executor(executor="local", jobs=1, scheduler=None, *, kind="process",
                  timeout=None):
    """The executor a user chose: :class:`LocalExecutor` or :class:`DaskExecutor`.

    Parameters
    ----------
    executor, jobs, scheduler
        As :func:`check_executor`, which checks them first.
    kind : {"process", "thread"}
        The local pool's kind (see :class:`LocalExecutor`).
    timeout : float, optional
        Seconds to wait for the Dask scheduler (see :class:`DaskExecutor`); default
        :data:`DEFAULT_TIMEOUT`.

    Raises
    ------
    ValueError
        A bad or contradictory parameter (nothing is started).
    ClusterUnavailable
        The Dask scheduler did not answer within ``timeout``, or has no worker.
    """
    executor, jobs, scheduler = check_executor(executor, jobs, scheduler)
    if executor == "local":
        return LocalExecutor(jobs, kind=kind)
    return DaskExecutor(scheduler, timeout=DEFAULT_TIMEOUT if timeout is None else timeout)


def _short(item, limit=120):
    text = repr(item)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _name_item(exc, index, items, fn, where):
    """Name the failed item on the exception the caller sees (its type is kept)."""
    exc.winogen_work_item = index
    note = (f"work item {index} (of {len(items)}) failed in "
            f"{getattr(fn, '__qualname__', fn)!s} on {where}: {_short(items[index])}")
    if hasattr(exc, "add_note"):     # Python 3.11+: shown under the traceback
        exc.add_note(note)


# --- The interface --------------------------------------------------------------------------

class Executor:
    """Runs one work function over independent work items.

    Subclasses implement :meth:`as_completed` and :meth:`describe`. An executor may hold
    workers or a connection: :meth:`close` it, or use it as a context manager.
    """

    #: Whether the work function runs in the caller's process (inline or in threads), so
    #: items may carry unpicklable callables (a heartbeat function, say).
    in_process = False

    def as_completed(self, fn, items):
        """Run ``fn(item)`` for every item; yield ``(index, result)`` as each finishes.

        ``fn`` must be a picklable (top-level) function and each item picklable plain
        data (see the module's determinism contract). An exception in an item is raised
        here, its type kept, naming the item (``exc.winogen_work_item`` holds its index;
        Python 3.11+ adds a note); the items not yet started are cancelled.
        """
        raise NotImplementedError

    def map(self, fn, items, *, progress=None):
        """``[fn(item) for item in items]``, run by this executor, in the order of items.

        Parameters
        ----------
        fn : callable
            A top-level function of one argument.
        items : sequence
            The work items.
        progress : callable, optional
            ``progress(done, total, index)``, called in the caller's process as each item
            finishes (in any order): ``done`` items of ``total`` are finished, the last
            one being ``items[index]``.

        Returns
        -------
        list
            The results, ``results[i] = fn(items[i])``.
        """
        items = list(items)
        total = len(items)
        missing = object()
        results = [missing] * total
        done = 0
        for index, result in self.as_completed(fn, items):
            results[index] = result
            done += 1
            if progress is not None:
                progress(done, total, index)
        # Identity, not ==: results may be NumPy arrays.
        assert done == total and not any(r is missing for r in results), "a result is missing"
        return results

    def describe(self):
        """One line for logs: ``local, 4 processes``, ``dask at tcp://…, 3 workers``."""
        raise NotImplementedError

    def close(self):
        """Release workers and connections (the executor cannot be used again)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __repr__(self):
        return f"<{type(self).__name__} {self.describe()}>"


def _check_fn_items(fn, items):
    if not callable(fn):
        raise TypeError(f"fn must be a callable, not {fn!r}")
    return list(items)


# --- Local ----------------------------------------------------------------------------------

class LocalExecutor(Executor):
    """Work items on this machine: inline (``jobs`` 1) or on a pool of ``jobs`` workers.

    Parameters
    ----------
    jobs : int
        Items run at once, 1 to :data:`MAX_JOBS`. With 1 every item runs in the caller,
        one after the other, and no pool is made.
    kind : {"process", "thread"}
        ``process`` (default): a ``spawn`` process pool, for work that holds the
        interpreter (NumPy models); items and results are pickled. ``thread``: a thread
        pool, for work that waits on subprocesses (synthesis tools) or must share the
        caller's memory; nothing is pickled.

    The pool is made on first use and kept until :meth:`close`.
    """

    def __init__(self, jobs=1, kind="process"):
        if not _is_int(jobs) or not 1 <= jobs <= MAX_JOBS:
            raise ValueError(f"jobs must be an integer from 1 to {MAX_JOBS}, not {jobs!r}")
        if kind not in ("process", "thread"):
            raise ValueError(f"kind must be one of process, thread, not {kind!r}")
        self.jobs = int(jobs)
        self.kind = kind
        self._pool = None
        self._closed = False

    @property
    def in_process(self):
        return self.jobs == 1 or self.kind == "thread"

    def describe(self):
        if self.jobs == 1:
            return "local, 1 job (inline)"
        return f"local, {self.jobs} {self.kind}es" if self.kind == "process" \
            else f"local, {self.jobs} threads"

    def _get_pool(self):
        if self._closed:
            raise RuntimeError("this executor is closed")
        if self._pool is None:
            if self.kind == "thread":
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs)
            else:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def as_completed(self, fn, items):
        items = _check_fn_items(fn, items)
        if self.jobs == 1:
            if self._closed:
                raise RuntimeError("this executor is closed")
            for index, item in enumerate(items):
                try:
                    result = fn(item)
                except Exception as exc:
                    _name_item(exc, index, items, fn, self.describe())
                    raise
                yield index, result
            return
        pool = self._get_pool()
        futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        try:
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                try:
                    result = future.result()
                except concurrent.futures.BrokenExecutor:
                    # A worker process died (killed, out of memory): this pool is unusable.
                    self._pool = None
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                except Exception as exc:
                    _name_item(exc, index, items, fn, self.describe())
                    raise
                yield index, result
        finally:
            for future in futures:   # an error, or the caller stopped early
                future.cancel()

    def close(self):
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# --- Dask -----------------------------------------------------------------------------------

class DaskExecutor(Executor):
    """Work items on an existing Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, distributed.Client or cluster
        The scheduler's address (``tcp://HOST:8786``, as ``dask scheduler`` prints it;
        ``HOST:PORT`` means tcp), a connected ``distributed.Client`` (used as it is and
        not closed here) or a cluster object such as ``distributed.LocalCluster``.
    timeout : float
        Seconds to wait for the scheduler to answer and to have at least one worker.

    Raises
    ------
    ValueError
        A malformed address (checked before connecting).
    ClusterUnavailable
        No answer from the scheduler within ``timeout``, or no worker.

    Notes
    -----
    The client is not made the default Dask scheduler of the process
    (``set_as_default=False``), so other Dask code in the caller is not redirected.
    Items are submitted with ``pure=False``: an item submitted twice runs twice, as it
    would locally. Workers must import the work function: install the same winogen on
    every worker.
    """

    def __init__(self, scheduler, *, timeout=DEFAULT_TIMEOUT):
        _, _, scheduler = check_executor("dask", 1, scheduler)
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) \
                or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        import distributed   # here, not at import: winogen works without a cluster
        self._distributed = distributed
        self._owned = not isinstance(scheduler, distributed.Client)
        if not self._owned:
            self.client = scheduler
            self.address = scheduler.scheduler.address
        else:
            self.address = scheduler if isinstance(scheduler, str) \
                else scheduler.scheduler_address
            try:
                self.client = distributed.Client(scheduler, timeout=timeout,
                                                 set_as_default=False)
            except (OSError, TimeoutError) as exc:
                detail = " ".join(str(exc).split())
                # Dask's own text repeats the address and timeout; other causes are kept.
                detail = "" if not detail or detail.startswith("Timed out") else f" ({detail})"
                raise ClusterUnavailable(
                    self.address, f"no answer within {timeout:g} s{detail}; is `dask "
                                  f"scheduler` running there, and its port open?") from exc
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ClusterUnavailable(
                self.address, f"no worker after {timeout:g} s; start one with "
                              f"`dask worker {self.address}`") from exc

    def _workers(self):
        nthreads = self.client.nthreads()    # {worker address: threads}, every worker
        return len(nthreads), sum(nthreads.values())

    def describe(self):
        try:
            workers, threads = self._workers()
        except Exception:     # a lost connection: the log line still names the cluster
            return f"dask at {self.address}"
        return (f"dask at {self.address}, {workers} worker{'s' if workers != 1 else ''}, "
                f"{threads} thread{'s' if threads != 1 else ''}")

    def as_completed(self, fn, items):
        items = _check_fn_items(fn, items)
        if not items:
            return
        futures = self.client.map(fn, items, pure=False)
        index_of = {future.key: index for index, future in enumerate(futures)}
        try:
            for future in self._distributed.as_completed(futures, loop=self.client.loop):
                index = index_of[future.key]
                try:
                    result = future.result()
                except Exception as exc:
                    _name_item(exc, index, items, fn, f"dask at {self.address}")
                    raise
                yield index, result
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:     # an error, or the caller stopped early
                self.client.cancel(pending)

    def close(self):
        if self._owned and getattr(self, "client", None) is not None:
            self.client.close()
