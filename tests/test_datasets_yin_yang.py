"""Yin-Yang generator: reference values, geometry derived independently, balance, determinism."""

import numpy as np
import pytest

from pynn_eventprop.datasets import (
    LatencyCode,
    generate_yin_yang,
    load_yin_yang,
    yin_yang_class,
    yin_yang_dataset,
    yin_yang_features_to_times,
)

# Values produced by the reference generator itself: github.com/lkriener/yin_yang_data_set,
# dataset.py at commit e6eef96 (class YinYangDataset(r_small=0.1, r_big=0.5, size, seed)), run
# with numpy 2.3.5 after replacing its torch base class by `object`.  The reference's
# `publication_data/*.npy` are identical to its output for these seeds.  Entries:
# (index, x, y, label); also label counts, sums of the x and y columns, and the first 40 labels.
REFERENCE = {
    "train": {
        "samples": [
            (0, 0.6803075385877797, 0.450499251969543, 2),
            (1, 0.09767211400638387, 0.6842330265121569, 1),
            (2, 0.7553614103176525, 0.4251558744912447, 2),
            (4999, 0.7690797231107925, 0.5883389337522971, 2),
        ],
        "counts": [1681, 1702, 1617],
        "sums": (2528.3224565688233, 2505.766861748284),
        "labels40": "2121110220111212211001212202021110221120",
    },
    "validation": {
        "samples": [
            (0, 0.6805727261759029, 0.3209733938933629, 0),
            (1, 0.6685157172603458, 0.9174478488708967, 1),
            (2, 0.8019778902252007, 0.17902872922296542, 0),
            (999, 0.7107040957004825, 0.804733352731108, 1),
        ],
        "counts": [316, 336, 348],
        "sums": (496.40889648664506, 493.6485466656199),
        "labels40": "0100211112222122211221022210010001211021",
    },
    "test": {
        "samples": [
            (0, 0.23409664559563403, 0.4017249751828972, 2),
            (1, 0.7513290219574494, 0.4682425192680968, 2),
            (2, 0.13832530718825586, 0.570953971325061, 1),
            (999, 0.32834060537145815, 0.3899830419619741, 1),
        ],
        "counts": [350, 316, 334],
        "sums": (498.2569893484742, 488.7802356777887),
        "labels40": "2211122022011111120100101201210101012101",
    },
}


@pytest.fixture(scope="module")
def splits():
    """Each canonical split generated once for this module (read-only so tests cannot interfere)."""
    out = {}
    for name in REFERENCE:
        features, labels = load_yin_yang(name)
        features.setflags(write=False)
        labels.setflags(write=False)
        out[name] = (features, labels)
    return out


def independent_class(x, y, r_small=0.1, r_big=0.5):
    """The Yin-Yang regions written from the picture, not from the generator's formulas.

    Two discs of radius R/2 centred on the dots split the big disc: the one around the left dot
    is yang (1), the one around the right dot is yin (0); outside both, the upper half is yang
    and the lower half yin.  The dots (radius r) are class 2.  -1 outside the big disc.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    left = np.hypot(x - r_big / 2, y - r_big)
    right = np.hypot(x - 3 * r_big / 2, y - r_big)
    label = np.where(y > r_big, 1, 0)
    label = np.where(right <= r_big / 2, 0, label)
    label = np.where(left <= r_big / 2, 1, label)
    label = np.where(np.minimum(left, right) < r_small, 2, label)
    return np.where(np.hypot(x - r_big, y - r_big) > r_big, -1, label)


@pytest.mark.parametrize("split", sorted(REFERENCE))
def test_canonical_splits_match_reference_generator(splits, split):
    features, labels = splits[split]
    ref = REFERENCE[split]
    size = {"train": 5000, "validation": 1000, "test": 1000}[split]
    assert features.shape == (size, 4) and labels.shape == (size,)
    # Same random stream and same arithmetic as the reference: values must be bit-identical.
    for i, x, y, c in ref["samples"]:
        assert features[i, 0] == x and features[i, 1] == y and labels[i] == c
    assert np.bincount(labels, minlength=3).tolist() == ref["counts"]
    assert "".join(map(str, labels[:40])) == ref["labels40"]
    # Sums over all samples catch any single wrong sample; 1e-12 relative allows only for a
    # different summation order, far below one changed sample (features are >= 1e-3 apart).
    np.testing.assert_allclose(features[:, :2].sum(axis=0), ref["sums"], rtol=1e-12)


def test_non_default_radii_and_seed_match_reference():
    # Reference generator, same provenance as REFERENCE, with r_small=0.13, r_big=0.7, seed 7.
    features, labels = generate_yin_yang(50, seed=7, r_small=0.13, r_big=0.7)
    expected_first = [
        0.7538942185746071,
        0.701568649123913,
        0.24610578142539286,
        0.29843135087608696,
    ]
    expected_last = [
        1.1572270007804422,
        0.6924576135044407,
        -0.15722700078044216,
        0.3075423864955593,
    ]
    assert features[0].tolist() == expected_first
    assert features[-1].tolist() == expected_last
    assert "".join(map(str, labels)) == "02221211211221222112100010120020020112220002011222"


@pytest.mark.parametrize("split", sorted(REFERENCE))
def test_samples_lie_in_their_geometric_class(splits, split):
    features, labels = splits[split]
    x, y = features[:, 0], features[:, 1]
    np.testing.assert_array_equal(independent_class(x, y), labels)
    # Mirrored features are exactly 1 - x and 1 - y.
    np.testing.assert_array_equal(features[:, 2:], 1.0 - features[:, :2])


def test_class_function_matches_independent_geometry_on_a_grid():
    g = np.linspace(0.0, 1.0, 301)
    xx, yy = np.meshgrid(g, g)
    got = yin_yang_class(xx, yy)
    expected = independent_class(xx, yy)
    # hypot and sqrt(dx**2 + dy**2) may differ by one ulp, which matters only for grid points
    # within 1e-12 of a boundary; exclude those (none should change class otherwise).
    d = [np.hypot(xx - cx, yy - 0.5) for cx in (0.25, 0.75, 0.5)]
    near = np.zeros(xx.shape, bool)
    for dist, radii in zip(d, [(0.1, 0.25), (0.1, 0.25), (0.5,)], strict=True):
        for r in radii:
            near |= np.abs(dist - r) < 1e-12
    near |= np.abs(yy - 0.5) < 1e-12
    np.testing.assert_array_equal(got[~near], expected[~near])
    assert set(np.unique(got)) == {-1, 0, 1, 2}


def test_classes_are_balanced(splits):
    # The class is drawn uniformly first, so counts are Binomial(n, 1/3); allow 4.5 standard
    # deviations (a false alarm probability below 1e-5; the seeds are fixed anyway).
    for _, labels in splits.values():
        n = labels.size
        sd = np.sqrt(n * (1 / 3) * (2 / 3))
        assert np.all(np.abs(np.bincount(labels, minlength=3) - n / 3) < 4.5 * sd)


def test_generation_is_deterministic_and_seed_dependent():
    a, la = generate_yin_yang(200, seed=3)
    b, lb = generate_yin_yang(200, seed=3)
    c, _ = generate_yin_yang(200, seed=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.any(a[:, 0] == c[:, 0])
    # The first samples of a longer run are the samples of a shorter one (one stream).
    np.testing.assert_array_equal(generate_yin_yang(50, seed=3)[0], a[:50])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": -1, "seed": 0}, "size"),
        ({"size": 2.5, "seed": 0}, "size"),
        ({"size": 5, "seed": 0, "r_small": 0.3}, "r_small"),
        ({"size": 5, "seed": 0, "r_small": 0.0}, "r_small"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_yin_yang(**kwargs)


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="split must be one of"):
        load_yin_yang("val")


def test_yin_yang_dataset_encodes_features_with_bias(splits):
    features, labels = splits["test"]
    code = LatencyCode(t_early=2.0, t_late=12.0, bias_time=1.0)
    ds = yin_yang_dataset("test", code)
    assert len(ds) == 1000 and ds.n_inputs == 5 and ds.n_classes == 3
    assert ds.class_names == ("yin", "yang", "dot")
    assert ds.duration == 12.0
    np.testing.assert_array_equal(ds.labels, labels)
    # t = t_early + v (t_late - t_early); exact up to rounding of one multiply-add (1e-13 ms).
    np.testing.assert_allclose(ds.times[:, :4], 2.0 + 10.0 * features, rtol=0, atol=1e-13)
    assert np.all(ds.times[:, 4] == 1.0)


def test_unmirrored_and_two_column_features():
    features, _ = generate_yin_yang(20, seed=1)
    code = LatencyCode(bias_time=None)
    two = yin_yang_features_to_times(features, code, mirrored=False)
    assert two.shape == (20, 2)
    np.testing.assert_array_equal(two, code(features[:, :2]))
    # (x, y) alone is completed with the mirrored pair.
    np.testing.assert_array_equal(
        yin_yang_features_to_times(features[:, :2], code),
        yin_yang_features_to_times(features, code),
    )
    with pytest.raises(ValueError, match="shape"):
        yin_yang_features_to_times(features[:, :3], code)
