"""Small data sets for the demo, the benchmarks and the tests (numpy only, no scikit-learn)."""
import numpy as np

__all__ = ["make_moons"]


def make_moons(n_samples=100, noise=0.1, seed=1):
    """Two interleaving half circles, as ``sklearn.datasets.make_moons``.

    Parameters
    ----------
    n_samples : int
        Number of points; the first half is labelled +1, the rest -1 (micrograd's
        demo uses labels in {-1, 1} for its max-margin loss).
    noise : float
        Standard deviation of the Gaussian noise added to the points.
    seed : int
        Seed of the numpy random generator: the same seed gives the same data.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), values in {-1.0, 1.0}

    Examples
    --------
    >>> X, y = make_moons(100, seed=1)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 2), [-1.0, 1.0])
    """
    if n_samples < 2:
        raise ValueError("n_samples must be at least 2")
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    outer = np.c_[np.cos(t_out), np.sin(t_out)]
    inner = np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)]
    X = np.r_[outer, inner] + rng.normal(0.0, noise, (n_samples, 2))
    y = np.r_[np.ones(n_out), -np.ones(n_in)]
    return X, y
