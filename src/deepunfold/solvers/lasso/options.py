"""The tuning of :func:`~deepunfold.solvers.lasso.lasso_active_set` and the argument checks.

:class:`LassoOptions` holds every tuning knob of the solver in one frozen, validated object;
the defaults are the measured ones (docs/lasso.md). The problem itself (signals, dictionary,
lambda, sign constraint) and how to run it (method, threads, what to do when a code is not
converged, progress) are arguments of the call, not options.

:func:`check_lasso_inputs` and the small ``check_*`` helpers raise a ``ValueError`` naming
the argument and its bad value, for every public function of the package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Integral, Real

import torch

__all__ = ["LassoOptions", "check_lasso_inputs"]

WARM_STARTS = ("auto", "fista", "zero")


def check_real(name: str, value, *, low: float = -math.inf, strict: bool = False) -> float:
    """``value`` as a float; ``ValueError`` naming ``name`` unless it is a finite real number
    at least ``low`` (above it if ``strict``). Booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    above = v > low if strict else v >= low
    if not (math.isfinite(v) and above):
        if strict and low == 0:
            need = "positive"
        else:
            need = f"{'above' if strict else 'at least'} {low:g}"
        raise ValueError(f"{name} must be finite and {need}, got {value!r}")
    return v


def check_int(name: str, value, *, low: int = 0) -> int:
    """``value`` as an int; ``ValueError`` naming ``name`` unless it is an integer (not a
    bool, not a float) at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value!r}")
    return int(value)


def check_lambda(value, *, positive: bool = True) -> float:
    """Lambda as a float: finite and above 0 (``positive``, the solvers) or at least 0 (the
    certificates, where lambda 0 is least squares); a ``ValueError`` naming it otherwise."""
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"lambda must be a number, got {value!r}")
    try:
        lam = float(value)
    except (TypeError, ValueError, RuntimeError) as err:  # RuntimeError: a tensor of many
        raise ValueError(f"lambda must be a number, got {value!r}") from err
    if not math.isfinite(lam) or lam < 0 or (positive and lam == 0):
        bound = "above 0" if positive else "at least 0"
        raise ValueError(f"lambda must be a finite number {bound}, got {value!r}")
    return lam


@dataclass(frozen=True)
class LassoOptions:
    """Tuning of :func:`~deepunfold.solvers.lasso.lasso_active_set` (defaults: the measured
    ones). Every field is checked on construction: a bad value raises a ``ValueError`` naming
    the field and the value. Fields marked *batched* tune only the batched (torch) path, used
    off the CPU or with ``method="batched"``; the others both paths.

    Attributes:
        tol: KKT tolerance relative to lambda: a code is accepted once its largest violation
            of the optimality conditions is at most ``tol * lam`` (or the float64 rounding
            bound of its correlations where that is larger: tiny lambdas). Default ``1e-9``;
            finite, > 0.
        max_rounds: active-set rounds per signal (compiled path) or feature-sign rounds per
            chunk (batched path) before the LARS homotopy takes the signals that are left;
            ``0`` sends every signal to the homotopy. Default ``200``; integer >= 0.
        chunk_size: signals solved together (batched path memory: about ``chunk_size *
            support^2`` doubles); the unit of work of a thread and of ``progress``. With more
            than one thread it is lowered to give each thread at least two chunks. Default
            ``500``; integer >= 1.
        enter_bulk: compiled path: at least this many of the most violating atoms enter per
            round; batched path: off the continuation path at most ``max(enter_bulk,
            support)`` enter per round. Default ``16``; integer >= 1.
        enter_growth: compiled path: at most ``max(enter_bulk, enter_growth * support)``
            atoms enter per round (0.25 was fastest on the benchmark instance at lambda 0.01
            to 0.2; 0.5 and 1 let in atoms that leave again). Default ``0.25``; finite, >= 0.
        warm: *batched*: the starting point: ``"auto"`` (float32 FISTA where the expected
            support is above ``zero_start_max`` atoms, else zero), ``"fista"`` or
            ``"zero"``. Default ``"auto"``.
        warm_iter: *batched*: FISTA iterations of the warm start. Default ``45``; integer
            >= 1.
        zero_start_max: *batched*: with ``warm="auto"``, the expected support size up to which
            the start is zero (on the benchmark instance FISTA wins from about 170 atoms,
            lambda 0.05; zero below). Default ``300``; integer >= 0.
        bulk_rounds: *batched*: rounds from the warm start before an unconverged signal takes
            the continuation path. Default ``8``; integer >= 1.
        direct_frac: *batched*: warm starts with more non-zeros than ``direct_frac`` times the
            rank of the dictionary take the continuation path at once (above 1: never).
            Default ``0.6``; finite, >= 0.
        enter_min: *batched*: atoms entering per continuation stage, at least (a stage lets
            about as many enter as the support has, at most half the room below the rank).
            Default ``64``; integer >= 1.
        enter_first: *batched*: atoms entering in the first continuation stage. Default
            ``150``; integer >= 1.
        stage_tol: *batched*: KKT tolerance, relative to the stage's lambda, of the
            continuation stages above ``lam``. Default ``0.3``; finite, > 0.
        stage_rounds: *batched*: rounds after which a continuation stage restarts from its
            start with half as many entering atoms. Default ``10``; integer >= 1.
        saturated_room: *batched*: once at most this many atoms may still enter below the
            rank, the continuation path goes to ``lam`` directly, one atom per round.
            Default ``8``; integer >= 0.
        stall_rounds: *batched*: consecutive rounds without any change before the homotopy
            takes a signal. Default ``4``; integer >= 1.
        sub_batch: *batched*: signals per batched feature-sign call, at most (grouped by
            support size). Default ``64``; integer >= 1.
        stage_float32: *batched*: continuation stages above ``lam`` in float32 (the stage at
            ``lam`` is always float64). Default ``True``; a bool.
    """

    tol: float = 1e-9
    max_rounds: int = 200
    chunk_size: int = 500
    enter_bulk: int = 16
    enter_growth: float = 0.25
    warm: str = "auto"
    warm_iter: int = 45
    zero_start_max: int = 300
    bulk_rounds: int = 8
    direct_frac: float = 0.6
    enter_min: int = 64
    enter_first: int = 150
    stage_tol: float = 0.3
    stage_rounds: int = 10
    saturated_room: int = 8
    stall_rounds: int = 4
    sub_batch: int = 64
    stage_float32: bool = True

    def __post_init__(self):
        for f in fields(self):
            name, value = f"LassoOptions.{f.name}", getattr(self, f.name)
            if f.name in _POSITIVE_REALS:
                value = check_real(name, value, low=0.0, strict=True)
            elif f.name in _NON_NEGATIVE_REALS:
                value = check_real(name, value, low=0.0)
            elif f.name in _INT_MINIMA:
                value = check_int(name, value, low=_INT_MINIMA[f.name])
            elif f.name == "warm":
                if value not in WARM_STARTS:
                    raise ValueError(f"{name} must be one of {WARM_STARTS}, got {value!r}")
            elif f.name == "stage_float32":
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be True or False, got {value!r}")
            else:  # a new field must be given a check here
                raise AssertionError(f"{name} has no check")
            object.__setattr__(self, f.name, value)


_POSITIVE_REALS = {"tol", "stage_tol"}
_NON_NEGATIVE_REALS = {"enter_growth", "direct_frac"}
_INT_MINIMA = {
    "max_rounds": 0,
    "chunk_size": 1,
    "enter_bulk": 1,
    "warm_iter": 1,
    "zero_start_max": 0,
    "bulk_rounds": 1,
    "enter_min": 1,
    "enter_first": 1,
    "stage_rounds": 1,
    "saturated_room": 0,
    "stall_rounds": 1,
    "sub_batch": 1,
}


def check_lasso_inputs(x: torch.Tensor, A: torch.Tensor, lam: float) -> None:
    """Raise a ``ValueError`` naming the problem if ``(x, A, lam)`` is not a valid Lasso.

    The signals ``x`` must be ``(batch, d)`` and the dictionary ``A`` ``(d, atoms)``, both
    finite tensors on one device, every atom (column of ``A``) of non-zero norm, and ``lam``
    a finite number above zero.
    """
    if not torch.is_tensor(x) or not torch.is_tensor(A):
        raise ValueError("the signals and the dictionary must be torch tensors")
    if x.ndim != 2:
        raise ValueError(f"the signals must be 2-D (batch, d), got shape {tuple(x.shape)}")
    if A.ndim != 2:
        raise ValueError(f"the dictionary must be 2-D (d, atoms), got shape {tuple(A.shape)}")
    if x.shape[1] != A.shape[0]:
        raise ValueError(
            f"shape mismatch: signals have dimension {x.shape[1]} but the dictionary's atoms "
            f"have dimension {A.shape[0]} (signals are (batch, d), the dictionary (d, atoms))"
        )
    if x.device != A.device:
        raise ValueError(f"signals are on {x.device} but the dictionary is on {A.device}")
    if A.shape[1] == 0:
        raise ValueError("the dictionary has no atoms")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(-1).sum())
        raise ValueError(f"signals contain non-finite values (NaN or inf) in {bad} row(s)")
    if not bool(torch.isfinite(A).all()):
        raise ValueError("the dictionary contains non-finite values (NaN or inf)")
    norms = torch.linalg.vector_norm(A, dim=0)
    if bool((norms == 0).any()):
        cols = torch.nonzero(norms == 0).squeeze(-1)[:5].tolist()
        raise ValueError(f"the dictionary has zero-norm atoms (columns {cols}...)")
    check_lambda(lam)
