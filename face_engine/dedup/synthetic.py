"""Synthetic face-like embeddings for scale tests of duplicate search.

Uniform random unit vectors in 128-d are far more spread than real face embeddings (their
pairwise cosines have mean 0 and standard deviation 1/sqrt(128) = 0.088, and they all
point in different directions). Real SFace embeddings share a mean direction (norm of the
mean unit embedding about 0.30 on LFW) and an anisotropic spread. The model here is a
Gaussian N(mu, Sigma) in embedding space, projected to the unit sphere:

* ``FaceLikeDistribution.fit(embeddings)`` estimates mu and Sigma from real embeddings
  (the benchmark fits it on the LFW dev images). Measured on the 2,320 LFW dev images:
  real different-person cosines (2.69M pairs, flip-averaged SFace) mean 0.089, std 0.089,
  1e-3 quantile 0.3625, 1e-4 quantile 0.418; samples of the fitted model: mean 0.090,
  std 0.092, 0.365, 0.416.
* ``FaceLikeDistribution.parametric(dim, rng)`` needs no data (unit tests): a random mean
  direction and isotropic spread chosen so the mean pairwise cosine is 0.089. Its tail is
  slightly lighter than real faces (std 0.081), so use ``fit`` for figures.

``mated_sample`` makes a same-person sample at a chosen cosine to its source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REAL_IMPOSTOR_MEAN_COSINE = 0.089


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    out: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return out


@dataclass(frozen=True)
class FaceLikeDistribution:
    mean: np.ndarray  # (dim,)
    cholesky: np.ndarray  # (dim, dim) lower factor of the covariance

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> FaceLikeDistribution:
        data = _unit_rows(np.asarray(embeddings, dtype=np.float64))
        if data.shape[0] <= data.shape[1]:
            raise ValueError("need more embeddings than dimensions to fit a covariance")
        cov = np.cov(data.T) + 1e-9 * np.eye(data.shape[1])
        return cls(mean=data.mean(axis=0), cholesky=np.linalg.cholesky(cov))

    @classmethod
    def parametric(cls, dim: int, rng: np.random.Generator,
                   mean_cosine: float = REAL_IMPOSTOR_MEAN_COSINE) -> FaceLikeDistribution:
        # x = m + s z with |m| = a: E[cos] ~= a^2 / (a^2 + dim s^2) = mean_cosine.
        direction = _unit_rows(rng.standard_normal((1, dim)))[0]
        sigma = np.sqrt((1.0 - mean_cosine) / (mean_cosine * dim))
        return cls(mean=direction, cholesky=sigma * np.eye(dim))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def sample(self, count: int, rng: np.random.Generator,
               batch: int = 100_000) -> np.ndarray:
        """``count`` unit vectors (float32), generated in batches to bound memory."""
        out = np.empty((count, self.dim), dtype=np.float32)
        for start in range(0, count, batch):
            size = min(batch, count - start)
            raw = rng.standard_normal((size, self.dim)) @ self.cholesky.T + self.mean
            out[start: start + size] = _unit_rows(raw)
        return out


def mated_sample(source: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vector(s) at exactly ``cosine`` to each row of ``source`` (random direction
    otherwise): a stand-in for a second photo of the same person."""
    src = _unit_rows(np.atleast_2d(np.asarray(source, dtype=np.float64)))
    noise = rng.standard_normal(src.shape)
    noise -= np.sum(noise * src, axis=1, keepdims=True) * src
    noise = _unit_rows(noise)
    out = cosine * src + np.sqrt(max(0.0, 1.0 - cosine * cosine)) * noise
    result: np.ndarray = out.astype(np.float32)
    return result
