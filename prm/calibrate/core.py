"""Platt scaling of a PRM's step probabilities: p' = sigmoid(a * logit(p) + b), fitted on held-out targets.

A PRM trained for CPU-minutes ranks steps better than it states their chances: its scores can sit below (or above)
the rate at which steps of the deployment regime turn out right, e.g. when its training mixed problem sizes that
the deployment does not. Two numbers fitted on a calibration set of that regime (rollout shares or labels, never the
set the calibration is measured on) move the scores onto it without changing their order.

>>> a, b = fit_platt([-2.0, -2.0, 2.0, 2.0], [0.0, 0.5, 0.5, 1.0])
>>> round(a, 3), abs(round(b, 3))  # the targets average 0.25 at logit -2 and 0.75 at logit 2
(0.549, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from prm.eval.calibration import are_probabilities

# Probabilities are clipped before taking their logit: an fp32 sigmoid reaches exactly 0 or 1 at |logit| > 17.
_EPS = 1e-6


def logits_of(probs: Sequence[float]) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [1e-6, 1 - 1e-6]; outside [0, 1] or NaN raises ValueError."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if not are_probabilities(p):  # NaN fails too
        raise ValueError("scores must be probabilities in [0, 1] to calibrate (a PRM's, not a likelihood's)")
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def fit_platt(
    logits: Sequence[float], targets: Sequence[float], l2: float = 1e-4, iters: int = 100
) -> tuple[float, float]:
    """(a, b) minimising the mean binary cross-entropy of sigmoid(a * z + b) against targets in [0, 1] (soft targets
    such as rollout shares count as they are), by Newton's method; the loss is convex in (a, b). A small ridge
    (`l2`, on a towards 1 and b towards 0) keeps the solution finite when the targets are separable by z.

    Raises ValueError for no steps, for mismatched lengths and for targets outside [0, 1]."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"{z.size} logits but {y.size} targets")
    if not z.size:
        raise ValueError("no steps to calibrate on")
    if not ((y >= 0) & (y <= 1)).all():
        raise ValueError("targets must lie in [0, 1]")
    x = np.stack([z, np.ones_like(z)], axis=1)  # (n, 2): the slope's and the bias's inputs
    prior = np.array([1.0, 0.0])
    n = z.size

    def loss(w: np.ndarray) -> float:
        m = x @ w  # mean BCE in the stable form log(1 + e^m) - y * m, plus the ridge
        return float(np.mean(np.logaddexp(0.0, m) - y * m) + 0.5 * l2 * np.sum((w - prior) ** 2))

    w = prior.copy()
    current = loss(w)
    for _ in range(iters):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x @ w)))  # the sigmoid without overflow
        grad = x.T @ (p - y) / n + l2 * (w - prior)
        hess = (x * (p * (1 - p))[:, None]).T @ x / n + l2 * np.eye(2)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        # Newton's step, halved until the loss falls: a plain step can overshoot where scores barely vary
        t = 1.0
        while t > 1e-8 and loss(w - t * step) > current:
            t *= 0.5
        if t <= 1e-8:
            break  # no step lowers the loss: at the minimum up to rounding
        w = w - t * step
        new = loss(w)
        if (current - new < 1e-14) and np.abs(t * step).max() < 1e-10:
            break
        current = new
    return float(w[0]), float(w[1])


def compose(outer: tuple[float, float], inner: tuple[float, float]) -> tuple[float, float]:
    """The one map equal to applying `inner` and then `outer` to a logit: a2 * (a1 * z + b1) + b2.

    >>> compose((2.0, 1.0), (0.5, -1.0))
    (1.0, -1.0)
    """
    (a2, b2), (a1, b1) = outer, inner
    return a2 * a1, a2 * b1 + b2


def apply(probs: Sequence[float], ab: tuple[float, float]) -> list[float]:
    """Probabilities after the map (a, b) on their logits (clipped as in `logits_of`)."""
    a, b = ab
    return [0.5 * (1.0 + math.tanh(0.5 * (a * z + b))) for z in logits_of(probs)]
