"""Spike encodings of static inputs: one precisely timed spike per input neuron.

All encoders return spike times in ms as a float64 array of shape ``(n_samples, n_inputs)``;
``NaN`` means "this input neuron does not spike".  Times are continuous (not on a grid): the
engines take each spike at its exact time.

Codes
-----
Latency code of a value ``v`` in ``[0, 1]`` (:func:`latency_encode`)::

    t = t_early + v (t_late - t_early)            (larger_earlier=False: larger values later)
    t = t_late  - v (t_late - t_early)            (larger_earlier=True: larger values earlier)

optionally followed by one *bias* input neuron spiking at ``bias_time`` in every sample (it gives
every neuron of the next layer an input-independent drive whose weight is learned).

Image latency code (:func:`image_latency_encode`): pixel intensity ``p = pixel / max_value``;
pixels with ``p <= threshold`` do not spike, the others spike at::

    t = t_early + (t_late - t_early) (1 - p) / (1 - threshold)

so the brightest pixel (``p = 1``) spikes at ``t_early`` and intensities just above the
threshold spike just before ``t_late``: the whole window is used whatever the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_real


def _check_window(t_early: float, t_late: float) -> None:
    for name, value in (("t_early", t_early), ("t_late", t_late)):
        check_real(name, value, minimum=0.0, where="(ms)")
    if not t_early < t_late:
        raise ValueError(
            f"need finite 0 <= t_early < t_late (ms), got t_early={t_early!r}, t_late={t_late!r}"
        )


def _check_bias_time(bias_time: float | None) -> None:
    if bias_time is not None:
        check_real("bias_time", bias_time, minimum=0.0, where="(None or ms)")


def _check_image_scale(threshold: float, max_value: float) -> None:
    if check_real("threshold", threshold, minimum=0.0, maximum=1.0) >= 1.0:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold!r}")
    check_real("max_value", max_value, minimum=0.0, strict=True)


def check_code(code, kind: type, default_name: str):
    """``code`` if it is an instance of ``kind``, a fresh default for None, else ``TypeError``."""
    if code is None:
        return kind()
    if not isinstance(code, kind):
        raise TypeError(
            f"code must be a {kind.__name__} (or None for {default_name}), got {code!r}"
        )
    return code


def _append_bias(times: np.ndarray, bias_time: float | None) -> np.ndarray:
    _check_bias_time(bias_time)
    if bias_time is None:
        return times
    bias = np.full((times.shape[0], 1), float(bias_time))
    return np.concatenate([times, bias], axis=1)


def latency_encode(
    values,
    t_early: float = 0.0,
    t_late: float = 30.0,
    *,
    bias_time: float | None = None,
    larger_earlier: bool = False,
) -> np.ndarray:
    """Latency code: each value in [0, 1] becomes one spike time in ``[t_early, t_late]`` ms.

    Parameters
    ----------
    values : array_like, shape ``(n_samples, n_features)``
        Values in ``[0, 1]`` (e.g. Yin-Yang features ``(x, y, 1 - x, 1 - y)``).
    t_early, t_late : float
        Spike times (ms) of the extreme values; ``0 <= t_early < t_late``.
    bias_time : float or None
        If given, append one input neuron that spikes at this time (ms) in every sample.
    larger_earlier : bool
        False: ``t = t_early + v (t_late - t_early)`` (value 0 spikes first).
        True: ``t = t_late - v (t_late - t_early)`` (value 1 spikes first).

    Returns
    -------
    numpy.ndarray, float64, shape ``(n_samples, n_features + (bias_time is not None))``
        Spike times in ms; the bias neuron, if any, is the last column.
    """
    _check_window(t_early, t_late)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must have shape (n_samples, n_features), got {v.shape}")
    if not np.all((v >= 0.0) & (v <= 1.0)):
        bad = v[~((v >= 0.0) & (v <= 1.0))].ravel()[0]
        raise ValueError(f"values must lie in [0, 1] (and not be NaN), found {bad!r}")
    fraction = 1.0 - v if larger_earlier else v
    return _append_bias(t_early + fraction * (t_late - t_early), bias_time)


def image_latency_encode(
    images,
    t_early: float = 0.0,
    t_late: float = 20.0,
    *,
    threshold: float = 0.0,
    max_value: float = 255.0,
    bias_time: float | None = None,
) -> np.ndarray:
    """Latency code for images: brighter pixels spike earlier, dim pixels not at all.

    Parameters
    ----------
    images : array_like, shape ``(n_samples, ...)``
        Pixel values in ``[0, max_value]`` (e.g. ``uint8`` images of shape ``(n, 28, 28)``);
        all axes after the first are flattened in C order into input neurons.
    t_early, t_late : float
        Spike time (ms) of a full-intensity pixel, and the limit for pixels at the threshold.
    threshold : float
        Relative intensity in ``[0, 1)``: pixels with ``pixel / max_value <= threshold`` do not
        spike (their time is NaN).  The default 0 silences exactly the black pixels.
    max_value : float
        Intensity of a full-scale pixel (255 for 8-bit images).
    bias_time : float or None
        If given, append one input neuron spiking at this time (ms) in every sample.

    Returns
    -------
    numpy.ndarray, float64, shape ``(n_samples, n_pixels + (bias_time is not None))``
        ``t = t_early + (t_late - t_early) (1 - p) / (1 - threshold)`` for ``p > threshold``,
        NaN otherwise, with ``p = pixel / max_value``.
    """
    _check_window(t_early, t_late)
    _check_image_scale(threshold, max_value)
    x = np.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"images must have shape (n_samples, ...), got {x.shape}")
    p = x.reshape(x.shape[0], -1).astype(np.float64) / max_value
    inside = (p >= 0.0) & (p <= 1.0)
    if not np.all(inside):
        bad = x.reshape(x.shape[0], -1)[~inside].ravel()[0]
        raise ValueError(f"pixel values must lie in [0, max_value={max_value!r}], found {bad!r}")
    with np.errstate(invalid="ignore"):
        times = np.where(
            p > threshold, t_early + (t_late - t_early) * (1.0 - p) / (1.0 - threshold), np.nan
        )
    return _append_bias(times, bias_time)


@dataclass(frozen=True)
class LatencyCode:
    """Parameters of :func:`latency_encode`, callable on values in [0, 1].

    ``LatencyCode(...)(values)`` equals ``latency_encode(values, t_early, t_late,
    bias_time=bias_time, larger_earlier=larger_earlier)``; defaults follow Wunderlich & Pehle's
    Yin-Yang set-up (window 0..30 ms, bias spike at 0 ms).
    """

    t_early: float = 0.0
    t_late: float = 30.0
    bias_time: float | None = 0.0
    larger_earlier: bool = False

    def __post_init__(self):
        _check_window(self.t_early, self.t_late)
        _check_bias_time(self.bias_time)

    def __call__(self, values) -> np.ndarray:
        return latency_encode(
            values,
            self.t_early,
            self.t_late,
            bias_time=self.bias_time,
            larger_earlier=self.larger_earlier,
        )

    @property
    def duration(self) -> float:
        """Latest possible spike time (ms): ``max(t_late, bias_time)``."""
        return max(self.t_late, self.bias_time or 0.0)


@dataclass(frozen=True)
class ImageLatencyCode:
    """Parameters of :func:`image_latency_encode`, callable on a stack of images."""

    t_early: float = 0.0
    t_late: float = 20.0
    threshold: float = 0.0
    max_value: float = 255.0
    bias_time: float | None = None

    def __post_init__(self):
        _check_window(self.t_early, self.t_late)
        _check_image_scale(self.threshold, self.max_value)
        _check_bias_time(self.bias_time)

    def __call__(self, images) -> np.ndarray:
        return image_latency_encode(
            images,
            self.t_early,
            self.t_late,
            threshold=self.threshold,
            max_value=self.max_value,
            bias_time=self.bias_time,
        )

    @property
    def duration(self) -> float:
        """Latest possible spike time (ms): ``max(t_late, bias_time)``."""
        return max(self.t_late, self.bias_time or 0.0)
