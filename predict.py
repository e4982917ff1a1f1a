"""Predict mouse superior colliculus spikes from a movie: ON/OFF and transient channels of a block-averaged
centre-surround image, time-lagged PCA features, closed-form ridge regression and a softplus output.

    python predict.py MOVIE.npy OUT.npy   # predict with the weights.npz beside this file
    python predict.py --fit [DATA]        # refit weights.npz, printing a cross-validated estimate of accuracy

MOVIE.npy holds grey levels 0-255 as (frames, 12288) or (clips, frames, 12288), or with 96 x 128 frames;
OUT.npy gets float64 expected spikes per 33 ms bin, (frames, neurons) or (clips, frames, neurons).
DATA is SCNeuronModelCompetition.mat (the default; keys trainingmovie_mini, FRhist_tr) or an .npz holding
movie (clips, frames, 12288) and counts (clips, frames, neurons). In Python: from predict import predict.
"""
import functools, os, sys, time

import numpy as np

BLOCK = 8  # pixels per side of the blocks that frames are averaged over: 12 x 16 blocks
TOP, BOTTOM = 2, 10  # block rows of the picture (pixel rows 16-79); the rest is black letterbox
SURROUND, SIGMA = 0.8, 1.0  # weight and width (blocks) of the Gaussian surround, as in retinal receptive fields
COMPONENTS = 120  # principal components kept of the 768 channels
LAGS = [(1, 3), (3, 6), (6, 13)]  # windows of past frames averaged, 33-400 ms; none at lag 0, as spikes lag the image
PENALTIES = 10.0 ** np.arange(-1.5, 1.6, 0.5)  # ridge penalties tried, times the mean eigenvalue of X'X
FOLDS = 6  # cross-validation folds, each a run of whole segments
WIDTHS = 2.0 ** np.arange(-5, 1.1)  # softplus knee widths tried, times each neuron's mean rate
WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.npz")


def shrink(pixels):
    """(frames, rows / 8, 16) means of the 8 x 8 pixel blocks of (frames, rows * 128) grey levels."""
    rows = pixels.reshape(len(pixels), -1, BLOCK, 128).sum(2, np.float64)  # (frames, rows / 8, 128)
    return rows.reshape(len(pixels), -1, 16, BLOCK).sum(3) / BLOCK**2


def channels(blocks):
    """(..., frames, 768) ON, OFF, brightening, darkening and energy channels of (..., frames, 8, 16) blocks."""
    contrast = blocks.reshape(*blocks.shape[:-2], 128) / 127.5 - 1
    blur = [np.exp(-0.5 * (np.arange(n)[:, None] - np.arange(n)) ** 2 / SIGMA**2) for n in (8, 16)]
    x = (contrast - SURROUND * contrast @ np.kron(*[b / b.sum(0) for b in blur])).astype(np.float32)  # centre - surround
    d = np.diff(x, axis=-2, prepend=x[..., :1, :])  # change since the last frame, for transient cells
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0), np.maximum(d, 0), np.maximum(-d, 0), x * x, d * d], -1)


def lagged(pcs):
    """(clips, frames, 3 * components) principal components averaged over each window of past frames."""
    pad = LAGS[-1][1]  # frames of history used
    total = np.cumsum(np.pad(pcs, ((0, 0), (pad, 0), (0, 0))), 1)  # total[:, pad + t] = pcs[:, :t + 1].sum(1)
    window = lambda lag: total[:, pad - lag:pad - lag + pcs.shape[1]]  # sums of pcs up to lag frames ago
    return np.concatenate([(window(a) - window(b)) / (b - a) for a, b in LAGS], -1)


def knee(z, width):
    """Expected spikes from the ridge output: a softplus of unit slope, knee at width and floor at width / 4."""
    return width * (np.logaddexp(0, z / width - 1) + 0.25)


def read(path):
    """Shrunk distinct clips (segments, frames, 8, 16), their trial-averaged counts, and the trials of each."""
    if path.endswith(".npz"):
        data, keys = np.load(path), ("movie", "counts")
    else:
        import h5py
        data, keys = h5py.File(path, "r"), ("trainingmovie_mini", "FRhist_tr")
    with data:
        movie, counts = data[keys[0]], np.asarray(data[keys[1]], np.float64)
        if movie.shape[2:] != (12288,) or 0 in movie.shape or movie.dtype.kind not in "biuf" or counts.shape[:2] != movie.shape[:2]:
            raise ValueError(f"need movie (clips, frames >= 1, 12288) of grey levels and counts (clips, frames, neurons), "
                             f"not {movie.dtype} {movie.shape} and {counts.shape}")
        if not ((counts >= 0) & (counts < np.inf)).all():
            raise ValueError("counts must be finite and >= 0")
        frames = movie.shape[1]  # clips that agree in the middle row of four frames are repeats
        middle = np.hstack([movie[:, t, 6144:6272] for t in (0, frames // 3, 2 * frames // 3, frames - 1)])
        _, first, repeats = np.unique(middle, axis=0, return_index=True, return_inverse=True)
        if len(first) < 2:
            raise ValueError("need 2 or more distinct clips to cross-validate")
        clips = np.stack([shrink(movie[i, :, TOP * 1024:BOTTOM * 1024]) for i in first])  # each once, picture rows only
        if not np.isfinite(clips).all():
            raise ValueError("the movie holds NaN or inf")
    repeats = repeats.ravel()  # the distinct clip that each clip shows
    return clips, np.stack([counts[repeats == s].mean(0) for s in range(len(first))]), np.bincount(repeats)


def fit(path):
    """Weights fitted to the data at path, after printing their cross-validated accuracy."""
    clips, Y, trials = read(path)
    C = channels(clips).reshape(-1, 768)  # (segments * frames, channels)
    mean = C.mean(0)
    C -= mean
    axes = np.linalg.eigh(C.T @ C)[1][:, :-COMPONENTS - 1:-1]  # principal axes, largest first
    X = lagged((C @ axes).reshape(len(clips), -1, COMPONENTS)).astype(np.float64)  # (segments, frames, features)
    del C
    mx, my = X.mean((0, 1)), Y.mean((0, 1))
    X -= mx
    bounds = np.linspace(0, len(X), min(FOLDS, len(X)) + 1).astype(int)
    folds = [(X[a:b].reshape(-1, X.shape[-1]), (Y[a:b] - my).reshape(-1, len(my))) for a, b in zip(bounds, bounds[1:])]
    grams = [(x.T @ x, x.T @ y) for x, y in folds]  # each fold's share of X'X and X'Y
    G, B = sum(g for g, _ in grams), sum(b for _, b in grams)
    oof = np.empty((len(PENALTIES),) + Y.shape, np.float32)  # out-of-fold predictions for each penalty
    for (x, _), (g, b), start, stop in zip(folds, grams, bounds, bounds[1:]):
        eig, V = np.linalg.eigh(G - g)  # X'X of the other folds = V diag(eig) V'
        xV, VB = x @ V, V.T @ (B - b)
        for i, penalty in enumerate(PENALTIES * eig.mean()):
            oof[i, start:stop] = (xV @ (VB / (eig + penalty)[:, None])).reshape(Y[start:stop].shape) + my
    best = np.argmin([((o - Y) ** 2).sum() for o in oof])
    oof = oof[best].astype(np.float64)
    # W = (X'X + lam I)^-1 X'Y
    W = np.linalg.solve(G + PENALTIES[best] * np.trace(G) / len(G) * np.eye(len(G)), B)
    rate = np.maximum(my, 1e-3)  # each neuron's mean, kept off zero for silent neurons
    widths = WIDTHS[:, None] * rate  # (widths, neurons)
    loss = [(r - Y * np.log(r)).sum((0, 1)) for r in (knee(oof, w) for w in widths)]  # Poisson, per neuron
    width = widths[np.argmin(loss, 0), np.arange(len(my))]
    rates, spikes = knee(oof, width), trials[:, None, None] * Y  # spikes summed over each segment's trials
    P, A = [a.reshape(-1, len(my)) - a.reshape(-1, len(my)).mean(0) for a in (rates, Y)]  # (segments * frames, neurons)
    cc = np.mean((P * A).sum(0) / np.sqrt((P * P).sum(0) * (A * A).sum(0) + 1e-12))
    bits = (spikes * np.log(rates / rate) - trials[:, None, None] * (rates - rate)).sum() / spikes.sum() / np.log(2)
    print(f"{len(Y)} segments, {len(bounds) - 1}-fold cross-validated: cc with trial average {cc:.3f}, {bits:.3f} bits/spike over the mean")
    return dict(mean=mean, axes=axes, W=W, bias=my - mx @ W, width=width)


@functools.lru_cache(maxsize=1)
def weights():
    """The fitted model, loaded once from weights.npz."""
    try:
        with np.load(WEIGHTS, allow_pickle=False) as z:
            return {key: z[key].astype(np.float64) for key in ("mean", "axes", "W", "bias", "width")}
    except Exception as error:  # whatever the failure, the file can't be used
        raise ValueError(f"{WEIGHTS} is missing or malformed ({error}); refit with --fit") from None


def several(movie):
    """Whether a movie holds several clips rather than one."""
    return movie.ndim == 4 or movie.ndim == 3 and movie.shape[-1] == 12288


def predict(movie):
    """Expected spikes per bin, (frames, neurons) or (clips, frames, neurons), for a movie of grey levels 0-255."""
    movie, w = np.asarray(movie), weights()
    if several(movie) and len(movie) == 0:
        raise ValueError("the movie has no clips")
    if several(movie):
        return np.stack([predict(clip) for clip in movie])
    if movie.shape[1:] not in [(12288,), (96, 128)] or movie.dtype.kind not in "biuf" or len(movie) == 0:
        raise ValueError(f"a clip must be 1 or more frames of 12288 or 96 x 128 grey levels, not {movie.dtype} {movie.shape}")
    blocks = shrink(movie.reshape(len(movie), 12288))  # (frames, 12, 16), the letterbox included
    if not np.isfinite(blocks).all():
        raise ValueError("the movie holds NaN or inf")
    X = lagged(((channels(blocks[:, TOP:BOTTOM]) - w["mean"]) @ w["axes"])[None])[0]  # (frames, features)
    return knee(X @ w["W"] + w["bias"], w["width"])


def save(path, write):
    """Write path atomically: write(file) into a temporary file, then rename it into place."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(args):
    """Run the command line; returns the exit status."""
    start = time.time()
    try:
        if args[:1] == ["--fit"] and len(args) <= 2:
            model = fit(args[1] if len(args) == 2 else "SCNeuronModelCompetition.mat")
            save(WEIGHTS, lambda f: np.savez_compressed(f, **{key: value.astype(np.float32) for key, value in model.items()}))
            weights.cache_clear()
        elif len(args) == 2 and not args[0].startswith("-"):
            movie = np.asarray(np.load(args[0], mmap_mode="r"))  # each clip is mapped anew below, so its memory is returned once used
            clips = (np.load(args[0], mmap_mode="r")[i] for i in range(len(movie)))
            rates = np.stack([predict(clip) for clip in clips]) if several(movie) and len(movie) else predict(movie)
            save(args[1], lambda f: np.save(f, rates))
        else:
            asked = args[:1] in (["-h"], ["--help"])
            print(__doc__, file=sys.stdout if asked else sys.stderr)
            return 0 if asked else 2
    except Exception as error:  # bad input of any kind gets one line, never a traceback
        print(f"predict.py {' '.join(args)}: {error}", file=sys.stderr)
        return 2
    print(f"{'fit' if args[0] == '--fit' else 'predict'}: {time.time() - start:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
