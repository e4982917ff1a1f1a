"""Tests for predict.py on small synthetic movies; run with `python -m pytest -q`."""

import os
import pathlib
import runpy
import shutil
import signal
import stat
import subprocess
import sys
import warnings

import h5py
import numpy as np
import pytest

import predict

HERE = pathlib.Path(__file__).resolve().parent


def blocky_movie(rng, clips, frames):
    """(clips, frames, 12288) uint8 movie of random 16 x 16 pixel blocks held for 4 frames, in the
    black letterbox."""
    blocks = rng.integers(0, 256, (clips, frames // 4 + 1, 4, 8), dtype=np.uint8).repeat(4, 1)[
        :, :frames
    ]
    movie = np.zeros((clips, frames, 96, 128), np.uint8)
    movie[:, :, 16:80] = blocks.repeat(16, 2).repeat(16, 3)
    return movie.reshape(clips, frames, 12288)


def planted_rates(movie):
    """(clips, frames, 2) expected spikes of an ON and an OFF linear-nonlinear neuron, 2 frames
    late."""
    picture = movie.reshape(*movie.shape[:2], 96, 128)[:, :, 16:80].astype(float) / 127.5 - 1
    drive = np.stack(
        [picture[:, :, 16:32, 48:64].mean((2, 3)), -picture[:, :, 32:48, 80:96].mean((2, 3))], -1
    )
    late = np.zeros_like(drive)
    late[:, 2:] = drive[:, :-2]
    return 0.5 * np.logaddexp(0, 4 * late - 1)


def planted_data(seed, segments=24, repeats=2, frames=80):
    """Movie (segment * repeats + repeat, frames, 12288), Poisson counts, and the true rates of each
    segment."""
    rng = np.random.default_rng(seed)
    segment_movie = blocky_movie(rng, segments, frames)
    rates = planted_rates(segment_movie)
    movie = segment_movie.repeat(repeats, 0)
    return movie, rng.poisson(rates.repeat(repeats, 0)).astype(float), rates


def fit_npz(tmp_path, movie, counts, name="data.npz"):
    """The weights that predict.fit gives for a movie and counts saved as an .npz."""
    with open(tmp_path / name, "wb") as file:  # as named, whatever its suffix
        np.savez(file, movie=movie, counts=counts)
    return predict.fit(str(tmp_path / name))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A folder holding predict.py and weights fitted to the planted neurons."""
    folder = tmp_path_factory.mktemp("model")
    shutil.copy(HERE / "predict.py", folder)
    movie, counts, _ = planted_data(seed=0)
    model = fit_npz(folder, movie, counts)
    np.savez(
        folder / "weights.npz", **{key: value.astype(np.float32) for key, value in model.items()}
    )
    return folder


@pytest.fixture
def fitted(model_dir, monkeypatch):
    """predict() using the planted neurons' weights."""
    monkeypatch.setattr(predict, "WEIGHTS", str(model_dir / "weights.npz"))
    predict.weights.cache_clear()
    yield predict.predict
    predict.weights.cache_clear()


def run(folder, *args):
    """Run folder/predict.py with args; returns the completed process."""
    return subprocess.run(
        [sys.executable, str(folder / "predict.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_shrink_gives_4_by_4_block_means_and_the_largest_grey_level():
    pixels = np.random.default_rng(1).uniform(0, 255, (3, 64 * 128))
    image = pixels.reshape(3, 64, 128)
    expected = [
        [image[:, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4].mean((1, 2)) for c in range(32)]
        for r in range(16)
    ]
    means, high = predict.blocks(pixels), predict.grey(pixels)
    assert np.allclose(means, np.transpose(expected, (2, 0, 1))) and high == pixels.max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8])
@pytest.mark.parametrize("flat", [True, False])
def test_predict_shapes_dtypes_and_values(fitted, dtype, flat):
    movie = blocky_movie(np.random.default_rng(2), 3, 20).astype(dtype)
    movie = movie if flat else movie.reshape(3, 20, 96, 128)
    clips, one = fitted(movie), fitted(movie[1])
    assert clips.shape == (3, 20, 2) and one.shape == (20, 2)
    assert clips.dtype == one.dtype == np.float64
    assert np.isfinite(clips).all() and (clips >= 0).all()
    assert np.array_equal(clips, fitted(movie.astype(np.float64).reshape(3, 20, 12288)))


@pytest.mark.parametrize("frames", [1, 2, 13, 200])
def test_any_number_of_frames(fitted, frames):
    assert fitted(blocky_movie(np.random.default_rng(3), 1, frames)[0]).shape == (frames, 2)


def test_clips_are_predicted_independently(fitted):
    movie = blocky_movie(np.random.default_rng(4), 4, 30)
    together = fitted(movie)
    assert np.array_equal(together, np.stack([fitted(clip) for clip in movie]))
    assert np.array_equal(together[2], fitted(movie[[0, 2]])[1])


def test_planted_neurons_are_recovered(fitted):
    movie, _, _ = planted_data(seed=5, segments=4, repeats=1)
    truth, rates = planted_rates(movie), fitted(movie)
    for neuron in range(2):
        assert np.corrcoef(truth[..., neuron].ravel(), rates[..., neuron].ravel())[0, 1] > 0.8


def test_refit_gives_identical_weights(tmp_path):
    movie, counts, _ = planted_data(seed=6, segments=8)
    first, second = fit_npz(tmp_path, movie, counts), fit_npz(tmp_path, movie, counts)
    assert all(np.array_equal(first[key], second[key]) for key in first)


def test_repeats_are_found_by_content_not_position(tmp_path):
    movie, counts, _ = planted_data(seed=7, segments=8, repeats=3)
    order = np.random.default_rng(7).permutation(len(movie))
    in_order, shuffled = fit_npz(tmp_path, movie, counts), fit_npz(
        tmp_path, movie[order], counts[order]
    )
    assert all(np.array_equal(in_order[key], shuffled[key]) for key in in_order)


def test_command_line_round_trip(model_dir, fitted, tmp_path):
    movie = blocky_movie(np.random.default_rng(8), 2, 25).astype(np.float64)
    np.save(tmp_path / "movie.npy", movie)
    done = run(model_dir, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(tmp_path / "out.npy"), fitted(movie))


def test_fit_from_the_command_line_on_an_npz(model_dir, tmp_path):
    shutil.copy(model_dir / "predict.py", tmp_path)
    movie, counts, _ = planted_data(seed=9, segments=6)
    np.savez(tmp_path / "data.npz", movie=movie, counts=counts)
    done = run(tmp_path, "--fit", tmp_path / "data.npz")
    assert done.returncode == 0, done.stderr
    assert "cross-validated over whole segments: cc with the trial average" in done.stdout
    with np.load(tmp_path / "weights.npz") as weights:
        lags = [len(lags) * (cols.stop - cols.start) for _, cols, _, lags in predict.GROUPS]
        assert weights["W"].shape == (sum(lags), 2)


def test_fit_reads_the_competition_mat_layout(tmp_path):
    shutil.copy(HERE / "predict.py", tmp_path)
    movie, counts, _ = planted_data(seed=10, segments=4, repeats=3, frames=30)
    with h5py.File(tmp_path / "SCNeuronModelCompetition.mat", "w") as f:
        f["trainingmovie_mini"] = movie.astype(np.float64)
        f["FRhist_tr"] = counts
    done = subprocess.run(
        [sys.executable, "predict.py", "--fit"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "4 segments" in done.stdout
    assert np.load(tmp_path / "weights.npz")["width"].shape == (2,)


@pytest.mark.parametrize(
    "movie, problem",
    [
        (np.zeros((5, 12287)), "12288"),
        (np.zeros((5, 96, 127)), "96 x 128"),
        (np.zeros(12288), "12288"),
        (np.zeros((2, 2, 5, 96, 128)), "12288"),
        (np.zeros((0, 12288)), "1 or more frames"),
        (np.zeros((0, 7, 12288)), "1 or more clips"),
        (np.zeros(()), "1 or more clips"),
        (np.full((4, 12288), np.nan), "NaN"),
        (np.where(np.arange(12288) == 5, np.nan, 0.0)[None], "NaN"),  # in the letterbox
        (np.full((2, 4, 96, 128), np.inf), "inf to inf"),
        (np.full((4, 12288), "a"), "grey levels"),
        (np.full((4, 12288), 1000.0), "0-255"),
        (np.full((4, 96, 128), -5000), "run -5000 to -5000: need 0-255"),
        (np.full((4, 12288), 255.0001), "run 255.0001 to 255.0001"),
        (np.ones((4, 12288), bool), "grey levels"),
    ],
)
def test_bad_movies_raise_value_error(fitted, movie, problem):
    with pytest.raises(ValueError, match=problem):
        fitted(movie)


def test_missing_or_malformed_weights_raise_value_error(tmp_path, monkeypatch):
    monkeypatch.setattr(predict, "WEIGHTS", str(tmp_path / "weights.npz"))
    for content in [None, b"not a zip file", "keys"]:
        if content == "keys":
            np.savez(tmp_path / "weights.npz", mean=np.zeros(768))
        elif content is not None:
            (tmp_path / "weights.npz").write_bytes(content)
        predict.weights.cache_clear()
        with pytest.raises(ValueError, match="missing or malformed"):
            predict.predict(np.zeros((3, 12288)))
    predict.weights.cache_clear()


def open_bytes(path):
    """The bytes of the file at path."""
    return pathlib.Path(path).read_bytes()


def bad_inputs(tmp_path):
    """(arguments, problem named on stderr) for each bad input to the command line."""
    good = np.zeros((2, 3, 12288))
    np.save(tmp_path / "nan.npy", np.full((2, 3, 12288), np.nan))
    np.save(tmp_path / "pixels.npy", np.zeros((2, 3, 100)))
    np.save(tmp_path / "noclip.npy", np.zeros((0, 12288)))
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "large.npy", good + 1000)
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    np.savez(tmp_path / "nokey.npz", movie=good)
    np.savez(tmp_path / "frames.npz", movie=np.zeros((2, 20, 12288)), counts=np.zeros((2, 4, 1)))
    np.savez(tmp_path / "clips.npz", movie=np.zeros((2, 20, 12288)), counts=np.zeros((3, 20, 1)))
    np.savez(tmp_path / "negative.npz", movie=np.zeros((2, 20, 12288)), counts=-np.ones((2, 20, 1)))
    np.savez(tmp_path / "nancounts.npz", movie=np.zeros((2, 20, 12288)), counts=np.full((2, 20, 1),
             np.nan))
    np.savez(tmp_path / "noframes.npz", movie=good[:, :0], counts=np.zeros((2, 0, 1)))
    np.savez(tmp_path / "short.npz", movie=np.zeros((4, 13, 12288)), counts=np.zeros((4, 13, 1)))
    np.savez(tmp_path / "rank.npz", movie=np.zeros((4, 20, 12288)), counts=np.zeros((4, 20)))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 a truncated zip file")
    (tmp_path / "folder.mat").mkdir()
    (tmp_path / "text.mat").write_text("not HDF5")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("1 2 3")
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    (tmp_path / "truncated.npy").write_bytes(open_bytes(tmp_path / "pixels.npy")[:-50])
    np.savez(tmp_path / "noclips.npz", movie=np.zeros((0, 20, 12288)), counts=np.zeros((0, 20, 1)))
    movie, counts, _ = planted_data(seed=20, segments=4, frames=20)
    np.savez(tmp_path / "huge.npz", movie=movie, counts=counts * 1e300)
    np.savez(tmp_path / "silent.npz", movie=movie, counts=counts * 0)
    np.savez(tmp_path / "complex.npz", movie=movie, counts=counts + 1j)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "fifo.npy").symlink_to(tmp_path / "fifo")
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2**62, 2**62, 12288), }"
    (tmp_path / "header.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header + "\n").to_bytes(2,
                                          "little") + (header + "\n").encode())
    return [
        (["fifo.npy", "out.npy"], "fifo.npy is not a regular file"),
        (["header.npy", "out.npy"], "can't read header.npy"),
        (["--fit", "huge.npz"], "overflow"),
        (["--fit", "silent.npz"], "the counts hold no spike"),
        (["--fit", "complex.npz"], "complex128"),
        (["missing.npy", "out.npy"], "missing.npy not found"),
        (["nokey.npz", "out.npy"], "can't read nokey.npz: need a .npy movie"),
        (["good.npy", "--help"], "usage"),
        (["--fit", "noclips.npz"], "need a movie (1 or more clips"),
        (["good.npy", "weights.npz"], "won't write weights.npz"),
        (["garbage.npy", "out.npy"], "garbage.npy"),
        (["nan.npy", "out.npy"], "NaN"),
        (["pixels.npy", "out.npy"], "12288"),
        (["noclip.npy", "out.npy"], "1 or more frames"),
        (["--fit", "missing.mat"], "missing.mat"),
        (["--fit", "garbage.npy"], "garbage.npy"),
        (["--fit", "nokey.npz"], "counts"),
        (["--fit", "frames.npz"], "(2, 4, 1)"),
        (["--fit", "clips.npz"], "(3, 20, 1)"),
        (["--fit", "negative.npz"], "counts must be finite and >= 0"),
        (["--fit", "nancounts.npz"], "counts must be finite and >= 0"),
        (["--fit", "noframes.npz"], "14 or more frames"),
        (["--fit", "broken.npz"], "broken.npz"),
        (["--fit", "short.npz"], "14 or more frames"),
        (["--fit", "rank.npz"], "(4, 20)"),
        (["--fit", "folder.mat"], "folder.mat"),
        (["--fit", "text.mat"], "text.mat"),
        (["--fit"], "SCNeuronModelCompetition.mat (MATLAB v7.3, HDF5: save -v7.3) or an .npz"),
        (["empty.npy", "out.npy"], "can't read empty.npy"),
        (["text.npy", "out.npy"], "can't read text.npy"),
        (["objects.npy", "out.npy"], "can't read objects.npy"),
        (["truncated.npy", "out.npy"], "can't read truncated.npy"),
        (["good.npy", "good.npy"], "won't write good.npy"),
        (["large.npy", "out.npy"], "0-255"),
    ]


def test_bad_input_on_the_command_line_is_one_line_and_changes_nothing(model_dir, tmp_path):
    shutil.copy(model_dir / "predict.py", tmp_path)
    shutil.copy(model_dir / "weights.npz", tmp_path)
    np.save(tmp_path / "out.npy", np.arange(3))
    old, before = open_bytes(tmp_path / "out.npy"), open_bytes(tmp_path / "weights.npz")
    cases = bad_inputs(tmp_path)
    files = sorted(os.listdir(tmp_path))
    children = [subprocess.Popen([sys.executable, "predict.py", *args], cwd=tmp_path, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for args, _ in cases]  # all at once, since each is refused before any work
    for (args, problem), child in zip(cases, children):
        stderr = child.communicate(timeout=120)[1]
        assert child.returncode == 2, (args, stderr)
        assert stderr.count("\n") == 1 and problem in stderr, (args, stderr)
    assert (tmp_path / "out.npy").read_bytes() == old
    assert (tmp_path / "weights.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == files  # no new file, not even a temporary one
    assert np.array_equal(np.load(tmp_path / "good.npy"), np.zeros((2, 3, 12288)))


def test_missing_weights_on_the_command_line(tmp_path):
    shutil.copy(HERE / "predict.py", tmp_path)
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    done = run(tmp_path, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert (
        done.returncode == 2
        and done.stderr.count("\n") == 1
        and "weights.npz is missing" in done.stderr
    )
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.parametrize("args", [[], ["movie.npy"], ["--fit", "a", "b"], ["-x", "out.npy"]])
def test_wrong_arguments_get_a_one_line_usage(args):
    done = run(HERE, *args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "usage" in done.stderr


def test_help_explains_both_uses():
    done = run(HERE, "--help")
    assert done.returncode == 0 and "--fit" in done.stdout and "OUT.npy" in done.stdout


@pytest.mark.parametrize("problem", ["nan", "shape", "huge", "mean", "bias", "axes", "complex",
                                     "width"])
def test_malformed_weights_are_one_line_on_the_command_line(model_dir, tmp_path, problem):
    shutil.copy(model_dir / "predict.py", tmp_path)
    with np.load(model_dir / "weights.npz") as z:
        model = dict(z)
    bad = {"nan": np.nan, "huge": 1e300}.get(problem)  # 1e300: beyond float32, in float64 weights
    if problem in ("nan", "huge", "shape"):
        model["W"] = model["W"][:-1] if problem == "shape" else np.where(model["W"] > 0, bad, 0)
    else:  # one that broadcasting would hide, or that NumPy would take with a warning
        model[problem] = {"mean": np.zeros(1), "bias": np.zeros(1), "width": np.zeros(2),
                          "axes": np.zeros((1152, 289)), "complex": model["W"] + 1j}[problem]
        model["W"] = model.pop("complex", model["W"])
    np.savez(tmp_path / "weights.npz", **model)
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    done = run(tmp_path, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "weights.npz is missing or malformed" in done.stderr
    assert not (tmp_path / "out.npy").exists()


def test_output_through_a_symlink_goes_to_its_target(model_dir, fitted, tmp_path):
    movie = blocky_movie(np.random.default_rng(11), 1, 20)
    np.save(tmp_path / "movie.npy", movie)
    np.save(tmp_path / "target.npy", np.arange(3))
    (tmp_path / "link.npy").symlink_to(tmp_path / "target.npy")
    done = run(model_dir, tmp_path / "movie.npy", tmp_path / "link.npy")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link.npy").is_symlink()
    assert np.array_equal(np.load(tmp_path / "target.npy"), fitted(movie))


def test_prediction_prints_shape_and_mean_and_warns_of_0_to_1_grey_levels(
    model_dir, fitted, tmp_path
):
    movie = blocky_movie(np.random.default_rng(12), 2, 20) / 255.0
    np.save(tmp_path / "movie.npy", movie)
    done = run(model_dir, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1 and "0-255" in done.stderr  # one warning, not one per clip
    rates = np.load(tmp_path / "out.npy")
    assert np.array_equal(rates, fitted(movie)) and rates.shape == (2, 20, 2)
    assert "(2, 20, 2)" in done.stdout and f"mean {rates.mean():.3f}" in done.stdout


def test_fit_prints_where_it_wrote_and_how_many_neurons(tmp_path):
    shutil.copy(HERE / "predict.py", tmp_path)
    movie, counts, _ = planted_data(seed=13, segments=4, frames=30)
    np.savez(tmp_path / "data.npz", movie=movie, counts=counts)
    done = run(tmp_path, "--fit", tmp_path / "data.npz")
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'weights.npz'}: 2 neurons" in done.stdout


SIGNALLED = """
import runpy, signal, sys, time
import numpy as np
import predict
def killed(*args, **kwargs):
    signal.raise_signal(signal.SIG{kind})  # its handler runs before this returns
{call} = killed
sys.argv = ["predict.py", "movie.npy", "out.npy"]
runpy.run_path("predict.py", run_name="__main__")  # as a script, which sets the handlers
"""


@pytest.mark.parametrize("kind", ["INT", "TERM", "HUP", "QUIT"])
@pytest.mark.parametrize("call", ["time.time", "np.save"])  # main's first call; the write
def test_a_signal_is_one_line_and_leaves_no_file(model_dir, tmp_path, kind, call):
    shutil.copy(model_dir / "predict.py", tmp_path)
    shutil.copy(model_dir / "weights.npz", tmp_path)
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    files = sorted(os.listdir(tmp_path))
    done = subprocess.run(
        [sys.executable, "-B", "-c", SIGNALLED.format(kind=kind, call=call)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 130 and done.stderr == "predict.py: interrupted, nothing written\n"
    assert sorted(os.listdir(tmp_path)) == files


def moving_bar(step, frames=12):
    """(frames, 16, 32) 4 x 4 pixel blocks of a bright vertical bar, 8 pixels wide, on black, moving
    `step` 8 pixels per frame."""
    blocks = np.zeros((frames, 16, 16))
    for t in range(frames):
        blocks[t, :, (4 + step * t) % 16] = 255
    return blocks.repeat(2, 2)


def test_motion_energy_channels_tell_right_from_left_and_ignore_up_and_down():
    # (frames, 2 signs, 8 filters: 2 scales x 4 orientations, 4 x 8 centres) after 5 frames
    motion = lambda step: predict.channels(moving_bar(step, 20))[5:, 1024:1536]
    energy = lambda step: motion(step).reshape(-1, 2, 8, 32)
    right, left = energy(1), energy(-1)
    sign = lambda e, k: (e[:, 0, k].sum(), e[:, 1, k].sum())  # (one sign, the other)
    for k in (0, 4):  # horizontal motion, both scales
        assert sign(right, k)[1] > 10 * sign(right, k)[0]
        assert sign(left, k)[0] > 10 * sign(left, k)[1]
    assert right[:, :, [2, 6]].sum() < 1e-3 * right[:, :, [0, 4]].sum()  # vertical motion: none


def test_orientation_channels_tell_vertical_from_horizontal_stripes():
    vertical = np.tile((np.arange(32) // 2 % 2) * 255.0, (3, 16, 1))  # (frames, 16, 32): columns
    # oriented energy of the filters at 0 and 90 degrees (4 x 8 centres each), both scales
    energy = lambda c, k: c[:, 768:1024].reshape(-1, 8, 32)[:, [2 * k, 2 * k + 4]].sum()
    horizontal = np.tile((np.arange(16)[:, None] // 2 % 2) * 255.0, (3, 1, 32))  # rows alternate
    across, along = predict.channels(vertical), predict.channels(horizontal)
    assert energy(across, 0) > 10 * energy(across, 1) and energy(along, 1) > 10 * energy(along, 0)


def prepared(model_dir, tmp_path):
    """tmp_path holding predict.py, the planted neurons' weights, a good and a NaN movie."""
    shutil.copy(model_dir / "predict.py", tmp_path)
    shutil.copy(model_dir / "weights.npz", tmp_path)
    np.save(tmp_path / "good.npy", blocky_movie(np.random.default_rng(14), 2, 20))
    np.save(tmp_path / "nan.npy", np.full((2, 3, 12288), np.nan))
    return tmp_path


def in_folder(folder, *args):
    """Run folder/predict.py with args from inside folder; returns the completed process."""
    return subprocess.run(
        [sys.executable, "predict.py", *args], cwd=folder, capture_output=True, text=True
    )


@pytest.mark.parametrize("kind", ["movie", "weights", "folder", "device", "fifo", "read-only",
                                  "predict.py", "README.md"])
def test_an_output_that_must_not_be_written_is_refused_before_any_work(model_dir, tmp_path, kind):
    folder = prepared(model_dir, tmp_path)
    (folder / "folder").mkdir()
    os.mkfifo(folder / "fifo")
    np.save(folder / "read-only", np.arange(3))
    (folder / "read-only.npy").chmod(0o444)
    (folder / "README.md").write_text("# notes\n")
    out = {"movie": "nan.npy", "weights": "weights.npz", "device": "/dev/null",
           "read-only": "read-only.npy"}.get(kind, kind)
    keep = ("nan.npy", "weights.npz", "read-only.npy", "predict.py", "README.md")
    before = {name: open_bytes(folder / name) for name in keep}
    done = in_folder(folder, "nan.npy", out)  # a NaN movie: the output is refused before reading it
    why = {"movie": "it is also the input", "read-only": "it is read-only"}.get(kind)
    why = why or ("not a regular file" if kind in ("folder", "device", "fifo") else
                  "it is not a NumPy file, and would be lost")
    assert done.returncode == 2 and done.stderr == f"predict.py: won't write {out}: {why}\n"
    assert before == {name: open_bytes(folder / name) for name in before}
    assert (folder / "read-only.npy").stat().st_mode & 0o777 == 0o444
    assert stat.S_ISFIFO((folder / "fifo").stat().st_mode) and (folder / "folder").is_dir()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_an_existing_output_keeps_its_permissions(model_dir, fitted, tmp_path, mode):
    folder = prepared(model_dir, tmp_path)
    np.save(folder / "out.npy", np.arange(3))
    (folder / "out.npy").chmod(mode)
    assert in_folder(folder, "good.npy", "out.npy").returncode == 0
    assert (folder / "out.npy").stat().st_mode & 0o777 == mode
    assert np.array_equal(np.load(folder / "out.npy"), fitted(np.load(folder / "good.npy")))


@pytest.mark.parametrize("out, problem", [("no/out.npy", "No such file"), ("a" * 300, "too long")])
def test_an_unwritable_output_names_the_output_and_stops_before_the_work(model_dir, tmp_path, out,
                                                                          problem):
    folder = prepared(model_dir, tmp_path)
    files = sorted(os.listdir(folder))
    done = in_folder(folder, "nan.npy", out)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert problem in done.stderr and out in done.stderr and "tmp" not in done.stderr
    assert sorted(os.listdir(folder)) == files


@pytest.mark.parametrize("width", [0.0, -1.0, np.inf])
def test_a_knee_width_of_zero_or_less_makes_the_weights_malformed(model_dir, tmp_path, width):
    shutil.copy(model_dir / "predict.py", tmp_path)
    with np.load(model_dir / "weights.npz") as z:
        np.savez(tmp_path / "weights.npz", **dict(z, width=np.full(2, width, np.float32)))
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    done = run(tmp_path, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert done.returncode == 2 and "weights.npz is missing or malformed" in done.stderr
    assert not (tmp_path / "out.npy").exists()


def test_the_0_to_1_warning_is_judged_on_the_whole_movie(fitted, capsys):
    movie = blocky_movie(np.random.default_rng(15), 3, 20)
    movie[1] = movie[1] > 128  # a nearly black clip: grey levels 0 and 1
    fitted(movie)
    assert capsys.readouterr().err == ""
    fitted(movie / 255.0)
    assert capsys.readouterr().err.count("0-255") == 1


def test_a_long_clip_is_predicted_in_windows_with_the_result_of_the_whole(fitted, monkeypatch):
    movie = blocky_movie(np.random.default_rng(16), 1, 230)[0]
    whole = fitted(movie)
    monkeypatch.setattr(predict, "WINDOW", 40)
    assert np.allclose(fitted(movie), whole, rtol=1e-5, atol=1e-9)  # to float32 precision


def test_a_long_clip_from_a_file_needs_little_memory(model_dir, tmp_path):
    folder = prepared(model_dir, tmp_path)
    np.save(folder / "long.npy", np.zeros((1, 6000, 12288), np.uint8))  # 74 MB
    script = "import predict; predict.main(['long.npy', 'out.npy']); " \
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"  # peak, KB
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True,
                          text=True)
    assert np.load(folder / "out.npy").shape == (1, 6000, 2)
    assert int(done.stdout.split()[-1]) < 80_000  # the clip's 74 MB, on top of the 40 MB that
    # Python, NumPy and the filters take, are never all held at once


def test_help_into_a_closed_pipe_is_quiet():
    child = subprocess.Popen([sys.executable, str(HERE / "predict.py"), "--help"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # as `| head` does when it has read enough
    assert child.stderr.read() == b"" and child.wait() in (0, -signal.SIGPIPE)


def test_contrast_gain_control_compresses_the_on_channels_at_high_contrast():
    texture = np.random.default_rng(17).uniform(-1, 1, (20, 8, 16)).repeat(2, 1).repeat(2, 2)
    on = lambda contrast: predict.channels(127.5 + contrast * texture)[5:, :128].mean()
    assert on(32) > 3.5 * on(8)  # nearly linear at low contrast
    assert on(120) < 2.5 * on(32)  # 3.75 times the contrast, much less than 3.75 times the signal


def test_small_object_channels_answer_change_in_their_block_not_change_everywhere():
    one, everywhere = np.full((2, 12, 16, 32), 100.0)
    one[::2, 8, 16] = everywhere[::2] = 140  # flicker in one 4 x 4 pixel block, or in all
    small = lambda movie: predict.channels(movie)[1:, predict.GROUPS[5][0]].reshape(-1, 8, 16)[
        :, 4, 8].max()  # the small-object channels of the block
    assert small(one) > 1 and small(everywhere) < 1e-3


def test_an_extra_array_in_the_weights_is_never_read(model_dir, tmp_path, monkeypatch):
    with np.load(model_dir / "weights.npz") as z:
        model = dict(z)
    objects = np.array([None], dtype=object)  # reading it without pickle would fail
    np.savez(tmp_path / "weights.npz", **model, extra=objects, allow_pickle=True)
    monkeypatch.setattr(predict, "WEIGHTS", str(tmp_path / "weights.npz"))
    predict.weights.cache_clear()
    assert sorted(predict.weights()) == sorted(model)
    predict.weights.cache_clear()


def test_a_path_like_movie_is_read_as_its_string(fitted, tmp_path):
    movie = blocky_movie(np.random.default_rng(21), 2, 20)
    np.save(tmp_path / "movie.npy", movie)
    assert np.array_equal(fitted(tmp_path / "movie.npy"), fitted(str(tmp_path / "movie.npy")))
    assert np.array_equal(fitted(tmp_path / "movie.npy"), fitted(movie))


def test_an_unreadable_movie_is_permission_denied(fitted, tmp_path, monkeypatch):
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    (tmp_path / "movie.npy").chmod(0)
    if os.geteuid() == 0:  # root may read anything: the kernel's answer is stood in for
        monkeypatch.setattr(predict.os, "access", lambda path, mode: mode != os.R_OK)
    with pytest.raises(ValueError, match="movie.npy: permission denied"):
        fitted(tmp_path / "movie.npy")


def test_fit_reads_an_npz_whatever_the_case_of_its_suffix(tmp_path):
    movie, counts, _ = planted_data(seed=22, segments=4, frames=20)
    lower, upper = fit_npz(tmp_path, movie, counts), fit_npz(tmp_path, movie, counts, "DATA.NPZ")
    assert all(np.array_equal(lower[key], upper[key]) for key in lower)


def test_hdf5_counts_of_strings_are_one_line_naming_their_dtype(tmp_path):
    shutil.copy(HERE / "predict.py", tmp_path)
    movie, counts, _ = planted_data(seed=23, segments=4, frames=20)
    with h5py.File(tmp_path / "data.mat", "w") as f:
        f["trainingmovie_mini"] = movie
        f["FRhist_tr"] = counts.astype("S3")
    done = run(tmp_path, "--fit", tmp_path / "data.mat")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "|S3" in done.stderr
    assert not (tmp_path / "weights.npz").exists()


def listing(folder):
    """{name: mode} of every file in folder."""
    return {name: os.lstat(folder / name).st_mode for name in os.listdir(folder)}


def test_the_temporary_is_readable_by_no_one_else_and_the_output_gets_the_umask(tmp_path):
    seen = []
    def make():  # the work, during which the temporary already exists
        seen.append(listing(tmp_path))
        return np.arange(3.0)
    old = os.umask(0o022)
    try:
        predict.save(tmp_path / "out.npy", make, [], b"\x93NUMPY")
    finally:
        os.umask(old)
    assert len(seen[0]) == 1 and all(mode & 0o077 == 0 for mode in seen[0].values())
    assert listing(tmp_path) == {"out.npy": stat.S_IFREG | 0o644}


def test_a_failed_write_removes_only_its_own_temporary(tmp_path):
    for name in ("out.npy.123.tmp", "tmpabcdefgh", "out.npy"):
        np.save(tmp_path / name, np.arange(3))
    before = {name: open_bytes(tmp_path / name) for name in os.listdir(tmp_path)}
    def make():
        raise ValueError("the work failed")
    with pytest.raises(ValueError, match="the work failed"):
        predict.save(tmp_path / "out.npy", make, [], b"\x93NUMPY")
    assert {name: open_bytes(tmp_path / name) for name in os.listdir(tmp_path)} == before


def test_a_full_disk_is_one_line_naming_the_output(tmp_path, monkeypatch):
    def full(*args):  # a temporary on a device that is always full
        (tmp_path / "tmpfull").touch(0o600)
        return os.open("/dev/full", os.O_WRONLY), str(tmp_path / "tmpfull")
    monkeypatch.setattr(predict.tempfile, "mkstemp", full)
    with pytest.raises(ValueError, match=r"^can't write .*out.npy: No space left on device$"):
        predict.save(tmp_path / "out.npy", lambda: np.zeros(100_000), [], b"\x93NUMPY")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's link")
def test_another_users_link_in_a_shared_sticky_folder_is_not_followed(tmp_path):
    shared, notes = tmp_path / "pub", tmp_path / "notes.npy"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    np.save(notes, np.arange(3))
    (shared / "out.npy").symlink_to(notes)
    os.lchown(shared / "out.npy", 65534, 65534)  # planted by another user
    with pytest.raises(ValueError, match="won't follow .*out.npy: a link of another user's"):
        predict.save(shared / "out.npy", lambda: np.zeros(3), [], b"\x93NUMPY")
    assert np.array_equal(np.load(notes), np.arange(3))
    os.lchown(shared / "out.npy", 0, 0)  # one's own link is followed
    predict.save(shared / "out.npy", lambda: np.zeros(3), [], b"\x93NUMPY")
    assert np.array_equal(np.load(notes), np.zeros(3))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_an_output_one_may_write_through_its_group_is_written(tmp_path):
    np.save(tmp_path / "out.npy", np.arange(3))
    os.chown(tmp_path / "out.npy", 65534, os.getgid())
    (tmp_path / "out.npy").chmod(0o464)  # no owner write bit; the group's
    predict.save(tmp_path / "out.npy", lambda: np.zeros(3), [], b"\x93NUMPY")
    assert np.array_equal(np.load(tmp_path / "out.npy"), np.zeros(3))
    assert (tmp_path / "out.npy").stat().st_mode & 0o777 == 0o464


def test_an_output_name_near_the_length_limit_is_written(tmp_path):
    out = tmp_path / ("a" * 251 + ".npy")  # 255 characters, the most a name may have
    predict.save(out, lambda: np.zeros(3), [], b"\x93NUMPY")
    assert np.array_equal(np.load(out), np.zeros(3))


def test_the_output_gain_and_offset_maximise_the_poisson_likelihood():
    rng = np.random.default_rng(24)
    z = rng.normal(0.1, 0.1, (3000, 2))  # ridge outputs of two neurons, shrunk towards the mean
    counts = rng.poisson(predict.knee(1.5 * z + 0.02, 0.05))  # whose true gain is 1.5
    width, gain, offset = predict.output(z, counts)
    loss = lambda a, b: (lambda r: (r - counts * np.log(r)).sum(0))(predict.knee(a * z + b, width))
    grid = [(a, b) for a in np.linspace(0.5, 4, 71) for b in np.linspace(-0.4, 0.2, 61)]
    assert (loss(gain, offset) <= np.min([loss(a, b) for a, b in grid], 0) + 1e-9).all()
    assert (loss(gain, offset) < loss(1, 0) - 1).all()  # better than the ridge output as it is


def test_the_output_rates_average_to_the_mean_count():
    rng = np.random.default_rng(25)
    z = rng.normal(0.1, 0.1, (3000, 3))  # ridge outputs of three neurons
    counts = rng.poisson(predict.knee(z * [1, 2, 4], [0.02, 0.1, 0.5]))  # knees of all widths
    width, gain, offset = predict.output(z, counts)
    rates = predict.knee(gain * np.float32(z) + offset, width)
    assert np.allclose(rates.mean(0), counts.mean(0), rtol=1e-4)  # the likeliest scale


def zipped_weights(path, weights, big=None):
    """An .npz at path of weights, with W.npy instead declaring the shape (big,) and holding big
    zeros when big is given, written a chunk at a time."""
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for key, value in weights.items():
            with z.open(key + ".npy", "w", force_zip64=True) as file:
                if key != "W" or big is None:
                    np.lib.format.write_array(file, value)
                    continue
                header = {"descr": "<f4", "fortran_order": False, "shape": (big,)}
                np.lib.format.write_array_header_1_0(file, header)
                for _ in range(big // 2**24):
                    file.write(bytes(4 * 2**24))


def test_weights_of_a_wrong_shape_are_refused_from_their_headers_unread(model_dir, tmp_path):
    with np.load(model_dir / "weights.npz") as z:
        zipped_weights(tmp_path / "weights.npz", dict(z), big=2**26)  # 256 MB of zeros
    assert (tmp_path / "weights.npz").stat().st_size < 2**21
    script = ("import predict\nwith predict.np.load('weights.npz') as z:\n"
              "    try:\n        predict.valid(z)\n    except ValueError as error:\n"
              "        print(error)\n"
              "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])")
    shutil.copy(HERE / "predict.py", tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    problem, peak = done.stdout.splitlines()
    assert "(67108864,)" in problem and int(peak) < 150_000, done.stdout  # KB


@pytest.mark.parametrize("weights", ["empty", "list", "one-neuron bias", "one-neuron width",
                                     "negative width", "no neurons"])
def test_weights_given_to_predict_get_the_check_weights_npz_gets(model_dir, weights):
    with np.load(model_dir / "weights.npz") as z:
        model = dict(z)
    if weights in ("one-neuron bias", "one-neuron width"):
        model[weights.split()[-1]] = model[weights.split()[-1]][:1]
    elif weights == "negative width":
        model["width"] = -model["width"]
    elif weights == "no neurons":
        model.update(W=model["W"][:, :0], bias=model["bias"][:0], width=model["width"][:0])
    model = {"empty": {}, "list": [1, 2]}.get(weights, model)
    with pytest.raises(ValueError, match="need"):
        predict.predict(np.zeros((3, 12288)), model)


def test_weights_of_no_neurons_are_refused_on_the_command_line_before_any_work(model_dir,
                                                                               tmp_path):
    shutil.copy(model_dir / "predict.py", tmp_path)
    with np.load(model_dir / "weights.npz") as z:
        model = dict(z)
    model.update(W=model["W"][:, :0], bias=model["bias"][:0], width=model["width"][:0])
    np.savez(tmp_path / "weights.npz", **model)
    np.save(tmp_path / "movie.npy", np.zeros((3, 12288)))
    done = run(tmp_path, tmp_path / "movie.npy", tmp_path / "out.npy")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "1 or more neurons" in \
        done.stderr
    assert not (tmp_path / "out.npy").exists()


def test_counts_of_no_neurons_are_named_as_such(tmp_path):
    movie, counts, _ = planted_data(seed=30, segments=4, frames=20)
    with pytest.raises(ValueError, match="1 or more neurons"):
        fit_npz(tmp_path, movie, counts[..., :0])


def test_status_2_means_nothing_was_written_and_a_report_that_fails_is_status_1(model_dir,
                                                                               tmp_path):
    folder = prepared(model_dir, tmp_path)
    with open("/dev/full", "w") as full:  # stdout that can take nothing
        done = subprocess.run([sys.executable, "predict.py", "good.npy", "out.npy"], cwd=folder,
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 1 and np.load(folder / "out.npy").shape == (2, 20, 2)
    env = dict(os.environ, PYTHONIOENCODING="ascii")
    done = subprocess.run([sys.executable, "predict.py", "good.npy", "\u00e9t\u00e9.npy"],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "\\xe9t\\xe9.npy" in done.stdout
    assert np.load(folder / "\u00e9t\u00e9.npy").shape == (2, 20, 2)


def test_predict_py_run_through_a_link_uses_the_weights_beside_the_real_file(tmp_path):
    (tmp_path / "bin").mkdir()
    shutil.copy(HERE / "predict.py", tmp_path)
    (tmp_path / "bin" / "predict.py").symlink_to("../predict.py")
    movie, counts, _ = planted_data(seed=31, segments=4, frames=20)
    np.savez(tmp_path / "data.npz", movie=movie, counts=counts)
    assert run(tmp_path / "bin", "--fit", tmp_path / "data.npz").returncode == 0
    assert (tmp_path / "weights.npz").exists() and not (tmp_path / "bin" / "weights.npz").exists()


def test_a_movie_renamed_over_during_a_prediction_is_read_as_it_was(fitted, tmp_path,
                                                                     monkeypatch):
    old, new = (blocky_movie(np.random.default_rng(seed), 1, 60) for seed in (32, 33))
    np.save(tmp_path / "movie.npy", old)
    np.save(tmp_path / "new.npy", new)
    expected = fitted(old)
    monkeypatch.setattr(predict, "WINDOW", 20)
    channels = predict.channels
    def renaming(fine):  # after the first window, the movie's name is given to another file
        if (tmp_path / "new.npy").exists():
            os.replace(tmp_path / "new.npy", tmp_path / "movie.npy")
        return channels(fine)
    monkeypatch.setattr(predict, "channels", renaming)
    assert np.allclose(fitted(str(tmp_path / "movie.npy")), expected, rtol=1e-5, atol=1e-9)
    assert not (tmp_path / "new.npy").exists()


def test_another_users_file_in_a_shared_sticky_folder_is_refused_before_any_work(tmp_path,
                                                                                monkeypatch):
    shared = tmp_path / "pub"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    np.save(shared / "out.npy", np.arange(3))
    (shared / "out.npy").chmod(0o666)
    if os.geteuid() == 0:  # the kernel lets root replace it: be another user, as far as save sees
        monkeypatch.setattr(predict.os, "geteuid", lambda: 65534)
    work = []  # the file and the folder are one owner's, the folder sticky: only they may replace it
    with pytest.raises(ValueError, match="out.npy: another user's file in a sticky folder"):
        predict.save(shared / "out.npy", lambda: work.append(1), [], b"\x93NUMPY")
    assert work == [] and np.array_equal(np.load(shared / "out.npy"), np.arange(3))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another group")
def test_a_group_shared_output_keeps_its_group(tmp_path):
    np.save(tmp_path / "out.npy", np.arange(3))
    os.chown(tmp_path / "out.npy", 65534, 12345)
    (tmp_path / "out.npy").chmod(0o664)
    predict.save(tmp_path / "out.npy", lambda: np.zeros(3), [], b"\x93NUMPY")
    info = (tmp_path / "out.npy").stat()
    assert info.st_gid == 12345 and info.st_mode & 0o777 == 0o664


def test_weights_agree_whatever_the_number_of_blas_threads(tmp_path):
    rng = np.random.default_rng(34)  # white noise, so that no two principal axes tie
    movie = rng.integers(0, 256, (8, 240, 12288), np.uint8)  # more frames than channels
    np.savez(tmp_path / "data.npz", movie=movie, counts=rng.poisson(1.0, (8, 240, 3)))
    shutil.copy(HERE / "predict.py", tmp_path)
    weights = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        done = subprocess.run([sys.executable, "predict.py", "--fit", "data.npz"], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        with np.load(tmp_path / "weights.npz") as z:
            weights.append(dict(z))
    for key in weights[0]:
        scale = abs(weights[0][key]).max()
        assert np.allclose(weights[0][key], weights[1][key], atol=1e-4 * scale), key


def test_the_temporary_is_named_after_its_output(tmp_path):
    seen = []
    predict.save(tmp_path / "out.npy", lambda: seen.extend(os.listdir(tmp_path)) or np.zeros(3),
                 [], b"\x93NUMPY")
    assert len(seen) == 1 and seen[0].startswith(".out.npy.") and seen[0].endswith(".tmp")


def test_a_prediction_of_many_clips_from_a_file_holds_little_more_than_its_result(model_dir,
                                                                                  tmp_path):
    folder = prepared(model_dir, tmp_path)
    with np.load(folder / "weights.npz") as z:
        model = dict(z)
    n = 3000  # neurons, so that the result is large: 20 clips x 150 frames x 3000 x 8 B = 72 MB
    model.update(W=np.zeros((len(model["W"]), n), np.float32), bias=np.zeros(n, np.float32),
                 width=np.ones(n, np.float32))
    np.savez(folder / "weights.npz", **model)
    np.save(folder / "movie.npy", np.zeros((20, 150, 12288), np.uint8))  # 37 MB
    script = "import predict; predict.main(['movie.npy', 'out.npy']); " \
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"  # peak, KB
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True,
                          text=True, timeout=120)
    result = np.load(folder / "out.npy", mmap_mode="r")
    assert result.shape == (20, 150, n)
    assert int(done.stdout.split()[-1]) * 1024 < result.nbytes + 100e6, done.stdout


def test_main_leaves_the_callers_warnings_and_signal_handlers_as_they_were(capsys):
    filters, handlers = list(warnings.filters), [signal.getsignal(s) for s in (signal.SIGTERM,
                                                                              signal.SIGHUP)]
    assert predict.main(["--help"]) == 0
    assert warnings.filters == filters
    assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)] == handlers


@pytest.mark.parametrize("case, problem", [
    ("read-only weights", "it is read-only"), ("data is weights", "it is also the input"),
    ("matlab v5", "save -v7.3"), ("hdf5 group", "can't read"), ("link to nothing",
    "a link to nothing"), ("-m.npy", "./-name"), ("unwritable folder", "no file can be made in"),
])
def test_each_refusal_names_its_own_problem(model_dir, tmp_path, case, problem):
    folder = prepared(model_dir, tmp_path)
    movie, counts, _ = planted_data(seed=35, segments=4, frames=20)
    np.savez(folder / "data.npz", movie=movie, counts=counts)
    args = ["--fit", "data.npz"]
    if case == "read-only weights":
        (folder / "weights.npz").chmod(0o444)
    elif case == "data is weights":
        args = ["--fit", "weights.npz"]
        np.savez(folder / "weights.npz", movie=movie, counts=counts)
    elif case == "matlab v5":
        (folder / "old.mat").write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(200))
        args = ["--fit", "old.mat"]
    elif case == "hdf5 group":
        with h5py.File(folder / "group.mat", "w") as f:
            f.create_group("trainingmovie_mini")
            f["FRhist_tr"] = counts
        args = ["--fit", "group.mat"]
    elif case == "link to nothing":
        (folder / "out.npy").symlink_to(folder / "missing.npy")
        args = ["good.npy", "out.npy"]
    elif case == "-m.npy":
        args = ["-m.npy", "out.npy"]
    else:
        (folder / "locked").mkdir()
        (folder / "locked").chmod(0o555)
        args = ["good.npy", "locked/out.npy"]
        if os.geteuid() == 0:
            pytest.skip("root may write in any folder")
    before = {name: open_bytes(folder / name) for name in os.listdir(folder)
              if (folder / name).is_file()}
    done = in_folder(folder, *args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and problem in done.stderr, \
        done.stderr
    assert before == {name: open_bytes(folder / name) for name in before}


def test_an_output_that_is_a_pipe_is_refused_as_not_a_regular_file(model_dir, tmp_path):
    folder = prepared(model_dir, tmp_path)
    done = subprocess.run([sys.executable, "predict.py", "good.npy", "/dev/stdout"], cwd=folder,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2 and "/dev/stdout: not a regular file" in done.stderr


def test_a_folder_where_no_file_can_be_made_is_named(tmp_path, monkeypatch):
    def denied(*args):  # as for a user without write permission on the folder, even as root
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(predict.tempfile, "mkstemp", denied)
    with pytest.raises(ValueError, match=f"made in {tmp_path}\\): Permission denied"):
        predict.save(tmp_path / "weights.npz", dict, [], b"")


def fit_output(tmp_path, movie, counts):
    """(stdout, stderr) of --fit on the movie and counts, which must succeed."""
    shutil.copy(HERE / "predict.py", tmp_path)
    np.savez(tmp_path / "data.npz", movie=movie, counts=counts)
    done = run(tmp_path, "--fit", tmp_path / "data.npz")
    assert done.returncode == 0 and (tmp_path / "weights.npz").exists(), done.stderr
    return done.stdout, done.stderr


def test_mirrored_clips_are_segments_of_their_own(tmp_path):
    movie, counts, _ = planted_data(seed=40, segments=4, repeats=2, frames=20)
    mirrored = movie.reshape(8, 20, 96, 128)[..., ::-1].reshape(8, 20, 12288)
    both = np.concatenate([movie, mirrored]), np.concatenate([counts] * 2)
    stdout, _ = fit_output(tmp_path, *both)
    assert "16 clips: 8 segments x 2 repeats" in stdout


def test_repeats_that_differ_by_a_hundredth_of_a_grey_level_are_one_segment(tmp_path):
    movie, counts, _ = planted_data(seed=41, segments=4, repeats=3, frames=20)
    near = movie + np.tile([0.0, 0.01, 0.02], 4)[:, None, None]  # each repeat a little off
    stdout, _ = fit_output(tmp_path, near, counts)
    assert "12 clips: 4 segments x 3 repeats" in stdout


def test_a_fit_that_finds_little_or_a_0_to_1_movie_warns_and_still_writes(tmp_path):
    movie, counts, _ = planted_data(seed=43, segments=16, repeats=2, frames=60)
    noise = np.random.default_rng(43).poisson(0.3, counts.shape)  # counts the movie doesn't drive
    _, stderr = fit_output(tmp_path, movie / 255.0, noise)
    lines = stderr.splitlines()
    assert len(lines) == 2 and "found little" in lines[0] and "0-1" in lines[1], stderr


def test_fit_from_an_npz_reads_the_movie_a_part_at_a_time(tmp_path):
    rng = np.random.default_rng(44)
    movie = rng.integers(0, 256, (20, 150, 12288), np.uint8).repeat(6, 0)  # 221 MB
    np.savez(tmp_path / "data.npz", movie=movie, counts=rng.poisson(0.2, (120, 150, 2)))
    shutil.copy(HERE / "predict.py", tmp_path)
    script = "import predict; predict.main(['--fit', 'data.npz']); " \
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])"  # peak, KB
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert "120 clips: 20 segments x 6 repeats" in done.stdout
    assert int(done.stdout.split()[-1]) < 150_000, done.stdout  # never the whole movie at once


def test_a_later_group_is_turned_off_for_most_neurons_it_cannot_predict():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 200)).astype(np.float32)  # 6 segments of 100 rows
    # 20 neurons of pure noise (each is turned off with a chance of about 4 in 5), 1 driven
    Y = np.column_stack([rng.normal(size=(600, 20)), X[:, :4].sum(1) + rng.normal(size=600)])
    W, z = predict.ridge(X - X.mean(0), Y - Y.mean(0), 100, off=True)
    assert (W[:, :20] == 0).all(0).sum() >= 8  # 16 here; none without off
    assert np.corrcoef(z[:, 20], Y[:, 20])[0, 1] > 0.7  # the driven one: fitted


def test_the_looming_channels_answer_a_dark_disc_that_grows_not_one_that_shrinks():
    rows, columns = np.mgrid[:64, :128]
    radius = 4 + 3 * np.arange(10)  # px, one a frame
    discs = np.where(np.hypot(rows - 32, columns - 64) < radius[:, None, None], 0.0, 128.0)
    looming = lambda frames: predict.channels(predict.blocks(frames.reshape(10, 8192)))[
        :, predict.GROUPS[-2][0]]
    assert looming(discs)[1:].min(1).max() >= 0 and looming(discs)[1:].sum(1).min() > 0
    assert not looming(discs[::-1]).any()  # receding: the dark area shrinks


def test_planted_neurons_are_learned_from_every_kind_of_movie():
    planted = runpy.run_path(str(HERE / "bench" / "planted.py"))  # bench/planted.py's functions
    # white, block and sparse noise gave 0.016, 0.126 and 0.255 before the plain groups,
    # 0.317, 0.572 and 0.694 before the 8 px group fitted second, and 0.404, 0.734 and 0.748
    # before it could take the place of the rest (0.466, 0.879, 0.877 now)
    for kind, least in [("white", 0.43), ("block", 0.8), ("sparse", 0.8)]:
        assert planted["trial"](kind, 2017, 16, 2, 80, 4) > least, kind


def test_a_callers_memory_map_keeps_its_changes(fitted, tmp_path):
    np.save(tmp_path / "movie.npy", np.zeros((1, 20, 12288), np.uint8))
    movie = np.load(tmp_path / "movie.npy", mmap_mode="c")  # copy-on-write: changes in memory only
    movie[0, :, 5000] = 200
    fitted(movie)
    assert (movie[0, :, 5000] == 200).all()
