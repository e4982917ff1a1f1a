"""Tests for the bench's stand-in, scorer and CNN; run with `python -m pytest -q` from the project
root."""
import pathlib
import sys

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import score  # noqa: E402
import standin  # noqa: E402


def test_scores_agree_with_the_textbook_forms():
    rng = np.random.default_rng(0)
    rate = rng.gamma(2, 0.1, (2, 150, 3))  # (segments, frames, neurons)
    counts = rng.poisson(np.broadcast_to(rate[:, None], (2, 6, 150, 3))).astype(float)
    pred = rate + rng.normal(0, 0.05, rate.shape).clip(-rate / 2)
    cc_norm, bits, cc_true, spikes = score.scores(pred, counts, rate)
    trials = counts.transpose(1, 0, 2, 3).reshape(6, -1, 3)  # (repeats, time, neurons)
    average, p = trials.mean(0), pred.reshape(-1, 3)
    # Schoppe et al. 2016: cc_norm = cc_abs / cc_max, cc_max = sqrt(signal power / var(average))
    signal = (trials.sum(0).var(0) - trials.var(1).sum(0)) / 30
    cc_abs = [np.corrcoef(p[:, n], average[:, n])[0, 1] for n in range(3)]
    assert np.allclose(cc_norm, cc_abs / np.sqrt(signal / average.var(0)))
    null = trials.mean((0, 1))
    gain = (trials * np.log(p / null) - p + null).sum((0, 1))  # Poisson log-likelihood
    assert np.allclose(bits, gain / trials.sum((0, 1)) / np.log(2))
    assert np.allclose(cc_true, [np.corrcoef(p[:, n], rate.reshape(-1, 3)[:, n])[0, 1]
                                 for n in range(3)])


def test_the_true_rate_scores_near_the_ceiling_and_the_mean_scores_no_bits():
    rng = np.random.default_rng(1)
    rate = rng.gamma(2, 0.2, (4, 150, 2))
    counts = rng.poisson(np.broadcast_to(rate[:, None], (4, 6, 150, 2))).astype(float)
    cc_norm, bits, cc_true, _ = score.scores(rate, counts, rate)
    assert np.allclose(cc_true, 1) and (np.abs(cc_norm - 1) < 0.15).all() and (bits > 0).all()
    flat = np.broadcast_to(counts.mean((0, 1, 2)), rate.shape)
    assert np.allclose(score.scores(flat + 0.0, counts, rate)[1], 0, atol=1e-9)


def test_intervals_hold_the_estimate_and_a_model_differs_from_itself_by_nothing():
    rng = np.random.default_rng(3)
    rate = rng.gamma(2, 0.2, (10, 150, 2))
    counts = rng.poisson(np.broadcast_to(rate[:, None], (10, 6, 150, 2))).astype(float)
    pred = rate * rng.uniform(0.5, 1.5, rate.shape)
    result, again = score.scores(pred, counts, rate), score.resampled(pred, counts, rate, 50)
    pick = np.ones(2, bool)
    values = [float(v.split("=")[1]) for v in score.line("all", result, again, pick).split()
              if "=" in v and not v.startswith("neurons")]
    intervals = np.nanpercentile([score.summary(*r, pick) for r in again], [2.5, 97.5], 0)
    assert ((intervals[0] <= values) & (values <= intervals[1])).all()
    same = score.line("d", result, again, pick, result, again)
    assert "cc_norm=0.000 [0.000, 0.000]" in same and "bits_per_spike=0.000 [0.000, 0.000]" in same


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A folder that bench/standin.py wrote, with 2 training and 1 held-out segments."""
    path = tmp_path_factory.mktemp("standin")
    standin.write(str(path), np.random.default_rng(2), 2, 1)
    return path


def test_standin_writes_the_competition_layout(written):
    with h5py.File(written / "standin.mat", "r") as f:
        movie, counts = f["trainingmovie_mini"][:], f["FRhist_tr"][:]
    assert movie.shape == (12, 150, 12288) and counts.shape == (12, 150, 54)
    assert movie.dtype == counts.dtype == np.float64
    frames = movie.reshape(12, 150, 96, 128)
    assert (frames[:, :, :16] == 0).all() and (frames[:, :, 80:] == 0).all()  # letterbox
    assert (movie == np.round(movie)).all() and movie.min() >= 0 and movie.max() <= 255
    assert (movie[:6] == movie[0]).all() and not (movie[6] == movie[0]).all()  # repeats, segments
    assert (counts == np.round(counts)).all() and 0.02 < counts.mean() < 0.3
    held = np.load(written / "heldout.npz")
    assert held["counts"].shape == (1, 6, 150, 54) and held["rate"].shape == (1, 150, 54)
    assert sorted(set(held["kind"])) == sorted(standin.KINDS)
    assert held["field"].shape == (54, 64, 128)
    assert np.load(written / "heldout_movie.npy", mmap_mode="r").shape == (6, 150, 12288)
    typing = np.load(written / "typing.npz")
    assert typing["counts"].shape == (10, 6, 150, 54) and typing["rate"].shape == (10, 150, 54)
    assert (typing["kind"] == held["kind"]).all() and typing["shown"].shape == (10, 150)
    movie = np.load(written / "typing_movie.npy")
    assert movie.shape == (60, 150, 12288) and movie.dtype == np.uint8
    assert (movie.reshape(10, 6, 150, 12288) == movie[::6, None]).all()


def test_the_twin_answers_as_the_neurons_written(written):
    twin = standin.twin(2, standin.typing()[0][:1], segments=3)  # the same neurons, again
    assert np.array_equal(twin, np.load(written / "typing.npz")["rate"][:1])


def test_the_typing_set_shows_what_it_says():
    movie, kinds, shown = standin.typing()
    means = movie.mean((2, 3))  # (clips, frames)
    assert (means[shown == "on step"] > 0.85).all() and (means[shown == "off step"] < 0.1).all()
    assert np.allclose(means[shown == "grey"], standin.GREY)
    assert {"gratings", "bars", "looming", "spots"} <= set(kinds)
    looming = means[5][shown[5] == "looming"][:16]  # the first looming disc darkens the picture
    assert (np.diff(looming) < 0).all()


def test_the_typing_set_is_shown_to_the_same_neurons():
    rng = np.random.default_rng(4)
    scenes = [standin.dead_leaves(rng) for _ in range(2)]
    natural = np.stack([standin.segment(rng, scenes) for _ in range(2)])
    both = np.concatenate([natural, standin.typing()[0][:1]])
    grids = [p.reshape(-1, 32, 2, 64, 2).mean((2, 4)).reshape(-1, 32 * 64) for p in (natural, both)]
    alone = standin.neurons(np.random.default_rng(5), grids[0])[0]
    shown = standin.neurons(np.random.default_rng(5), grids[1], natural=300)[0]
    assert shown.shape == (450, 54) and np.allclose(shown[:300], alone, rtol=1e-4, atol=1e-6)


def test_cnn_trains_on_a_tiny_standin(tmp_path):
    pytest.importorskip("torch")
    import cnn

    standin.write(str(tmp_path), np.random.default_rng(3), 3, 1)
    with h5py.File(tmp_path / "standin.mat", "r") as f:
        clips = cnn.shrink(f["trainingmovie_mini"][::6])  # (segments, frames, 32, 64)
        counts = f["FRhist_tr"][:].reshape(3, 6, 150, 54).mean(1).astype(np.float32)
    clips = (clips - clips.mean()) / clips.std()
    network, summary = cnn.train(clips, counts, seed=0, minutes=5, epochs=3, log=lambda text: None)
    rates = cnn.predict(network, clips[:2])
    assert rates.shape == (2, 150, 54) and (rates >= 0).all() and np.isfinite(rates).all()
    assert summary["epochs"] == 3 and summary["losses"][-1] < summary["losses"][0]


def test_insilico_rules_type_cells_by_their_indices():
    import insilico

    cells = {  # (dsi, osi, on_off, looming, radius, size, sustained, gratings/spots): type
        (0.6, 0.7, 0.1, 0.0, 10, 16, 0.9, 1.0): "direction",
        (0.1, 0.6, 0.1, 0.0, 10, 16, 0.9, 1.0): "orient",
        (0.6, 0.7, 0.9, 0.0, 10, 8, 0.9, 0.1): "on",  # selective, but gratings hardly drive it
        (0.1, 0.1, -0.5, 0.6, 10, 32, 0.5, 0.1): "looming",
        (0.1, 0.1, 0.1, 0.0, 8, 4, 0.2, 0.1): "small",
        (0.1, 0.1, 0.1, 0.0, 8, 32, 0.2, 0.1): "wide",
        (0.1, 0.1, 0.8, 0.0, 24, 32, 0.9, 0.1): "wide",
        (0.1, 0.1, -0.8, 0.1, 8, 8, 0.2, 0.1): "off_tr",
        (0.1, 0.1, -0.8, 0.6, 8, 16, 0.9, 0.1): "off",  # answers looming, prefers mid-sized spots
    }
    values = np.array(list(cells), float).T
    indices = dict(zip(["direction", "orientation", "on_off", "looming", "radius", "size",
                        "sustained"], values))
    indices.update(y=values[0], tuning=values[-1][:, None], sizes=np.ones((len(cells), 1)))
    assert list(insilico.kind(indices)) == list(cells.values())
