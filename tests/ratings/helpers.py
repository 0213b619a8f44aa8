"""Shared helpers for the ratings tests (no Django)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ratings import ELO_PER_NAT


def centred(ratings: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Ratings shifted to mean 1000, the anchoring used by default everywhere."""
    r = np.asarray(ratings, dtype=np.float64)
    return r - r.mean() + 1000.0


def logistic_regression_elo(
    a: npt.ArrayLike, b: npt.ArrayLike, outcomes: npt.ArrayLike, n: int
) -> npt.NDArray[np.float64]:
    """Independent Bradley-Terry fit: the Chatbot-Arena logistic regression.

    Design row per vote: +1 in column ``a``, -1 in column ``b``; label 1 if ``a`` won.  A tie
    (or ``both_bad``) becomes two rows, one per label, each with sample_weight 1/2, which gives
    the same likelihood as half a win each way.  ``C`` is huge (regularisation ~ 1e-8 nats)
    and there is no intercept, so the fit is the plain MLE up to the shift invariance.
    """
    from sklearn.linear_model import LogisticRegression

    a = np.asarray(a)
    b = np.asarray(b)
    o = np.asarray(outcomes)
    decisive = o < 2
    ties = ~decisive
    rows_a = np.concatenate([a[decisive], a[ties], a[ties]])
    rows_b = np.concatenate([b[decisive], b[ties], b[ties]])
    y = np.concatenate([o[decisive] == 0, np.ones(ties.sum(), bool), np.zeros(ties.sum(), bool)])
    w = np.concatenate([np.ones(decisive.sum()), np.full(2 * ties.sum(), 0.5)])
    x = np.zeros((rows_a.size, n))
    x[np.arange(rows_a.size), rows_a] = 1.0
    x[np.arange(rows_a.size), rows_b] = -1.0
    lr = LogisticRegression(C=1e8, fit_intercept=False, tol=1e-12, max_iter=100_000)
    lr.fit(x, y.astype(int), sample_weight=w)
    return centred(ELO_PER_NAT * lr.coef_[0])
