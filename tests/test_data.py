import numpy as np
import pytest

from spiketwin.data import load_dataset, rate_encode


def test_digits_split_is_fixed_and_stratified():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.x_train.shape == (1347, 64) and a.x_test.shape == (450, 64) and a.n_classes == 10
    assert (a.x_test == b.x_test).all() and (a.y_test == b.y_test).all()
    assert 0 <= a.x_train.min() and a.x_train.max() == 1.0
    counts = np.bincount(a.y_test)
    assert counts.min() >= 43 and counts.max() <= 46


def test_digits01_holds_only_zeros_and_ones():
    d = load_dataset("digits01")
    assert d.n_classes == 2 and set(np.unique(d.y_train)) == {0, 1}
    assert len(d.y_train) + len(d.y_test) == 360


def test_unknown_dataset_refused():
    with pytest.raises(ValueError, match=r"Dataset must be one of \('digits', 'digits01'\), not 'mnist'"):
        load_dataset("mnist")


def test_deterministic_rate_coding_is_exact():
    ev = rate_encode(np.array([0.0, 0.3, 0.6, 1.0]), steps=10, max_rate=0.5, method="deterministic")
    assert ev.shape == (10, 4)
    assert ev.sum(0).tolist() == [0, 1, 3, 5]
    assert set(np.unique(ev)) <= {0, 1}


def test_poisson_rate_coding_is_seeded_with_the_right_rate():
    x = np.full((2, 64), 0.8)
    a = rate_encode(x, 2000, 0.5, rng=np.random.default_rng(1))
    b = rate_encode(x, 2000, 0.5, rng=np.random.default_rng(1))
    assert a.shape == (2, 2000, 64) and (a == b).all()
    assert abs(a.mean() - 0.4) < 0.005


@pytest.mark.parametrize("kwargs, message", [
    ({"x": [1.5], "steps": 5}, r"Intensities must lie in \[0, 1\]"),
    ({"x": [0.5], "steps": 0}, "steps must be a positive integer, not 0"),
    ({"x": [0.5], "steps": 5, "max_rate": 2.0}, r"max_rate must be in \(0, 1\] events per step, not 2.0"),
    ({"x": [0.5], "steps": 5, "method": "burst"}, "method must be 'poisson' or 'deterministic', not 'burst'"),
])
def test_bad_encoding_arguments_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rate_encode(**kwargs)
