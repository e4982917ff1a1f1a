"""Predict mouse superior colliculus spikes from a movie: local ON/OFF, transient and energy
channels and oriented and motion channels of block-averaged frames, time-lagged PCA features of
each group, closed-form ridge regression and a softplus output.

    python predict.py MOVIE.npy OUT.npy   # predict with the weights.npz beside this file
    python predict.py --fit [DATA]        # refit weights.npz and print its cross-validated accuracy

MOVIE.npy holds grey levels 0-255 as (frames, 12288) or (clips, frames, 12288), or with 96 x 128
frames; OUT.npy gets float64 expected spikes per 33 ms bin, (frames, neurons) or (clips, frames,
neurons). DATA is the competition's SCNeuronModelCompetition.mat (the default; keys
trainingmovie_mini and FRhist_tr) or an .npz holding movie (clips, frames, 12288) and counts (clips,
frames, neurons). In Python: from predict import predict; rates = predict(movie).
"""
import functools, os, signal, sys, time

import numpy as np

BLOCK = 8  # pixels per side of the blocks that frames are averaged over: 12 x 16 blocks
TOP, BOTTOM = 2, 10  # block rows of the picture (pixel rows 16-79); the rest is black letterbox
SURROUND, SIGMA = 0.8, 1.0  # weight and width (blocks) of the Gaussian surround, as in the retina
COMPONENTS = 120, 40  # principal components kept of the 768 local and of the 256 oriented channels
ORIENTED = 0.3  # scale of the oriented channels: their components get a 1 / 0.3^2 stronger penalty
LAGS = [(1, 3), (3, 6), (6, 13)]  # windows of past frames averaged, 33-400 ms; spikes lag the image
PENALTIES = 10.0 ** np.arange(-1.5, 1.6, 0.5)  # ridge penalties tried, times X'X's mean diagonal
FOLDS = 6  # cross-validation folds, each a run of whole segments
WIDTHS = 2.0 ** np.arange(-5, 1.1)  # softplus knee widths tried, times each neuron's mean rate
WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.npz")


def check(ok, problem):
    """Nothing; raises ValueError(problem) unless ok."""
    if not ok:
        raise ValueError(problem)


@functools.cache
def warn(problem):
    """Nothing; prints a warning on stderr, once for each problem."""
    print(f"predict.py: warning: {problem}", file=sys.stderr)


def load(path, keys, what):
    """The arrays under keys in the .npz or .mat (HDF5) file at path; with no keys, the array in
    the .npy file at path, memory-mapped."""
    try:  # a missing, empty, truncated or text file, a folder, Python objects or a missing key
        if keys and not path.endswith(".npz"):
            import h5py
            data = h5py.File(path, "r")
        else:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        return [data[key] for key in keys] if keys else data
    except Exception:
        raise ValueError(f"can't read {path}: need {what}") from None


def blocks(pixels):
    """(frames, rows / 8, 16) means of 8 x 8 pixel blocks of (frames, rows * 128) grey levels."""
    low, high = pixels.min(), pixels.max()
    check(low >= 0 and high <= 255, f"grey levels must lie in 0-255, not NaN or inf: {low}-{high}")
    if 0 < high <= 1:
        warn("all grey levels lie in 0-1, but the model expects 0-255")
    pixels = pixels.reshape(len(pixels), -1, BLOCK, 16, BLOCK)  # (frames, rows / 8, 8, 16, 8)
    return pixels.sum(2, np.float64).sum(3) / BLOCK**2


def channels(blocks):
    """(frames, 768 + 256) local and oriented channels of one clip's (frames, 8, 16) blocks."""
    c = (blocks / 127.5 - 1).astype(np.float32)  # contrast
    blur = [np.exp(-0.5 * (np.arange(n)[:, None] - np.arange(n)) ** 2 / SIGMA**2) for n in (8, 16)]
    flat = c.reshape(len(c), 128)  # (frames, blocks); next, centre - surround
    x = flat - SURROUND * flat @ np.kron(*[b / b.sum(0) for b in blur]).astype(np.float32)
    d = np.diff(x, axis=0, prepend=x[:1])  # change since the last frame, for transient cells
    gx, gy = np.gradient(c, axis=(2, 1))  # spatial gradient, central differences
    dt = np.diff(c, axis=0, prepend=c[:1])  # an edge moving along +x has dt * gx < 0
    pairs = [(gx, gx), (gy, gy), (gx + gy, gx + gy), (gx - gy, gx - gy), (dt, gx), (-dt, gx),
             (dt, gy), (-dt, gy)]  # products: orientation energy, then motion along -x, x, -y, y
    pooled = [np.maximum(a * b, 0).reshape(-1, 4, 2, 8, 2).mean((2, 4)) for a, b in pairs]  # 4 x 8
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0), np.maximum(d, 0), np.maximum(-d, 0),
                           x * x, d * d, ORIENTED * np.stack(pooled, 1).reshape(-1, 8 * 32)], -1)


def lagged(pcs):
    """(clips, frames, 3 * components) principal components averaged over each window of lags."""
    pad = LAGS[-1][1]  # frames of history used
    total = np.cumsum(np.pad(pcs, ((0, 0), (pad, 0), (0, 0))), 1)  # total[:, pad + t] = sum to t
    window = lambda lag: total[:, pad - lag:pad - lag + pcs.shape[1]]  # sums to lag frames ago
    return np.concatenate([(window(a) - window(b)) / (b - a) for a, b in LAGS], -1)


def knee(z, width):
    """Expected spikes for ridge output z: unit-slope softplus, knee at width, floor width / 4."""
    return width * (np.logaddexp(0, z / width - 1) + 0.25)


def read(path):
    """Block means of the distinct clips (segments, frames, 8, 16), their mean counts and trials."""
    keys = ("movie", "counts") if path.endswith(".npz") else ("trainingmovie_mini", "FRhist_tr")
    movie, counts = load(path, keys, "the competition's SCNeuronModelCompetition.mat (from its "
                         "2017 release), or give --fit DATA.npz holding movie and counts")
    counts, frames = np.asarray(counts, np.float64), movie.shape[1] if movie.ndim == 3 else 0
    check(frames > LAGS[-1][1] and movie.shape[2] == 12288 and movie.dtype.kind in "iuf"
          and counts.ndim == 3 and counts.shape[:2] == movie.shape[:2]
          and ((counts >= 0) & (counts < np.inf)).all(),
          f"need a movie (clips, {LAGS[-1][1] + 1} or more frames, 12288) and finite counts >= 0 "
          f"(clips, frames, neurons), not {movie.shape} and {counts.shape}")
    picture = slice(TOP * 1024, BOTTOM * 1024)  # pixels of the picture rows, 16-79
    # (clips, 64) sums of the picture's rows in three frames: repeats agree on all of them
    rows = [movie[:, t, picture].reshape(-1, 64, 128).sum(2) for t in (0, frames // 2, -1)]
    _, first, repeats = np.unique(np.hstack(rows), axis=0, return_index=True, return_inverse=True)
    check(len(first) > 1, f"{path} holds 1 distinct clip: need 2 or more to cross-validate")
    Y = np.stack([counts[repeats.ravel() == s].mean(0) for s in range(len(first))])
    clips = [blocks(movie[i, :, picture]) for i in first]  # each distinct clip read once
    return np.stack(clips), Y, np.bincount(repeats.ravel())


def principal(S, k):
    """(channels, k) principal axes of channels whose covariance is S, largest variance first."""
    return np.linalg.eigh(S)[1][:, :-k - 1:-1]


def ridge(G, B, penalties):
    """(penalties, features, neurons) ridge weights for X'X = G and X'Y = B, one set per penalty."""
    eig, V = np.linalg.eigh(G)  # G = V diag(eig) V'
    # W = (X'X + lam I)^-1 X'Y = V diag(1 / (eig + lam)) V'X'Y
    return np.stack([V @ (V.T @ B / (eig + lam)[:, None]) for lam in penalties])


def fit(path):
    """Weights fitted to the data at path, after printing their cross-validated accuracy."""
    clips, Y, trials = read(path)
    C = np.stack([channels(clip) for clip in clips])  # (segments, frames, channels)
    mean = C.reshape(-1, C.shape[-1]).mean(0)
    C -= mean
    S = np.tensordot(C, C, ((0, 1), (0, 1)))  # (channels, channels), times segments * frames
    axes = np.zeros((len(S), sum(COMPONENTS)))  # block-diagonal: a PCA for each group
    axes[:768, :COMPONENTS[0]] = principal(S[:768, :768], COMPONENTS[0])
    axes[768:, COMPONENTS[0]:] = principal(S[768:, 768:], COMPONENTS[1])
    X = (C @ axes.astype(np.float32)).astype(np.float64)  # (segments, frames, components)
    del C  # the largest array, done with
    X = lagged(X)  # (segments, frames, features)
    X, Y = X.reshape(-1, X.shape[-1]), Y.reshape(-1, Y.shape[-1])  # (rows, ...)
    mx, my, n = X.mean(0), Y.mean(0), np.arange(Y.shape[1])
    X -= mx
    G, B = X.T @ X, X.T @ (Y - my)
    bounds = np.linspace(0, len(clips), min(FOLDS, len(clips)) + 1).astype(int) * clips.shape[1]
    penalties = PENALTIES * np.trace(G) / len(G)
    oof = np.empty((len(PENALTIES),) + Y.shape, np.float32)  # out-of-fold predictions
    for a, b in zip(bounds, bounds[1:]):  # folds: runs of whole segments
        x, y = X[a:b], Y[a:b] - my  # X'X of the other folds = total - this fold's share
        oof[:, a:b] = x @ ridge(G - x.T @ x, B - x.T @ y, penalties) + my
    best = np.argmin([((o - Y) ** 2).sum(0) for o in oof], 0)  # each neuron's, by out-of-fold error
    W, oof = ridge(G, B, penalties)[best, :, n].T, oof[best, :, n].T  # (features | rows, neurons)
    rate = np.maximum(my, 1e-3)  # each neuron's mean rate, kept off zero for silent neurons
    widths = WIDTHS[:, None] * rate  # (widths, neurons)
    loss = [(r - Y * np.log(r)).sum(0) for r in (knee(oof, w) for w in widths)]  # Poisson
    width = widths[np.argmin(loss, 0), n]
    rates, trials = knee(oof, width), trials.repeat(clips.shape[1])[:, None]  # trials of each row
    z = [(a - a.mean(0)) / (a.std(0) + 1e-12) for a in (rates, Y)]  # standardised, per neuron
    gain = trials * (Y * np.log(rates / rate) - rates + rate)  # Poisson log-likelihood gain
    print(f"{len(clips)} segments, {len(bounds) - 1}-fold cross-validated: cc with trial average "
          f"{(z[0] * z[1]).mean():.3f}, {gain.sum() / (trials * Y).sum() / np.log(2):.3f} "
          "bits/spike over the mean")
    model = dict(mean=mean, axes=axes, W=W, bias=my - mx @ W, width=width)
    return {key: value.astype(np.float32) for key, value in model.items()}  # as weights.npz holds


@functools.cache
def weights():
    """The fitted model, loaded once from weights.npz and tried on a black frame."""
    try:
        with np.load(WEIGHTS, allow_pickle=False) as z:
            w = {key: z[key].astype(np.float64) for key in ("mean", "axes", "W", "bias", "width")}
        check(all(np.isfinite(v).all() for v in w.values()), "NaN or inf")
        predict(np.zeros((1, 12288)), w)  # raises if the shapes disagree
    except Exception as error:  # whatever the failure, the file can't be used
        raise ValueError(f"{WEIGHTS} is missing or malformed ({error}); refit with --fit") from None
    return w


def several(movie):
    """Whether a movie holds several clips rather than one."""
    return movie.ndim == 4 or movie.ndim == 3 and movie.shape[-1] == 12288


def predict(movie, w=None):
    """Expected spikes per bin, (frames, neurons) or (clips, frames, neurons), for a movie of grey
    levels under the weights w, by default those in weights.npz."""
    movie, w = np.asarray(movie), weights() if w is None else w
    if several(movie):
        check(len(movie) > 0, "the movie has no clips")
        return np.stack([predict(clip, w) for clip in movie])
    check(movie.shape[1:] in [(12288,), (96, 128)] and movie.dtype.kind in "iuf" and len(movie) > 0,
          "a clip must be 1 or more frames of 12288 or 96 x 128 grey levels, not "
          f"{movie.dtype} {movie.shape}")
    picture = blocks(movie.reshape(len(movie), 12288))[:, TOP:BOTTOM]  # (frames, 8, 16)
    X = lagged(((channels(picture) - w["mean"]) @ w["axes"])[None])[0]  # (frames, features)
    return knee(X @ w["W"] + w["bias"], w["width"])


def save(path, write):
    """Nothing; writes path (or a link's target) atomically: write(file) to a temporary, rename."""
    tmp = f"{os.path.realpath(path)}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, os.path.realpath(path))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(args):
    """Run the command line; returns the exit status."""
    start = time.time()
    if args in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if not (args[:1] == ["--fit"] and len(args) <= 2 or len(args) == 2 and args[0][:1] != "-"):
        print("usage: predict.py MOVIE.npy OUT.npy, or predict.py --fit [DATA]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill ends as Ctrl-C does
    try:
        if args[0] == "--fit":
            model = fit(args[1] if len(args) > 1 else "SCNeuronModelCompetition.mat")
            save(WEIGHTS, lambda f: np.savez_compressed(f, **model))
            done = f"{WEIGHTS}: {len(model['bias'])} neurons"
        else:
            movie = load(args[0], (), "a .npy movie of grey levels")
            check(not os.path.exists(args[1]) or not os.path.samefile(*args),
                  f"won't write the prediction over the movie {args[0]}")
            clips = (np.load(args[0], mmap_mode="r")[i] for i in range(len(movie)))  # mapped anew
            whole = not several(movie) or len(movie) == 0  # one clip, or none for predict to refuse
            rates = predict(movie) if whole else np.stack([predict(clip) for clip in clips])
            save(args[1], lambda f: np.save(f, rates))
            done = f"{args[1]}: {rates.shape} expected spikes per bin, mean {rates.mean():.3f}"
    except (Exception, KeyboardInterrupt) as error:  # one line, never a traceback
        stop = isinstance(error, KeyboardInterrupt)
        problem = "interrupted, nothing written" if stop else " ".join(str(error).split())
        print(f"predict.py: {problem}", file=sys.stderr)
        return 130 if stop else 2
    print(f"wrote {done}, in {time.time() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
