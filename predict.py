"""Predict mouse superior colliculus spikes from a movie: contrast-normalised ON/OFF, transient and
energy channels, oriented and motion channels and small-object channels of block-averaged frames,
time-lagged PCA features of each group, closed-form ridge regression and a softplus output.

    python predict.py MOVIE.npy OUT.npy   # predict with the weights.npz beside this file
    python predict.py --fit [DATA]        # refit weights.npz and print its cross-validated accuracy

MOVIE.npy holds grey levels 0-255 as (frames, 12288) or (clips, frames, 12288), or with 96 x 128
frames; OUT.npy gets float64 expected spikes per 33 ms bin, (frames, neurons) or (clips, frames,
neurons). DATA is the competition's SCNeuronModelCompetition.mat (the default; keys
trainingmovie_mini and FRhist_tr) or an .npz holding movie (clips, frames, 12288) and counts (clips,
frames, neurons). In Python: from predict import predict; rates = predict(movie), where the movie
is an array, or the path of a .npy file, which is then read a window of frames at a time.
"""
import functools, itertools, os, signal, stat, sys, time

import numpy as np

PICTURE = slice(2048, 10240)  # pixels of rows 16-79 (4 px block rows 4-19); the rest is letterbox
SURROUND, SIGMA = 0.8, 1.0  # weight and width (8 px blocks) of the Gaussian surround, as in retina
GAIN, POOL, RECENT = 0.1, 2.0, 5  # contrast gain control: divide by sqrt(0.1 + the contrast energy
# over a Gaussian of 2 blocks (16 px) and the last 5 frames (170 ms)), as the retina adapts
SMALL, AROUND = 0.02, 4.0  # small objects: change over 0.02 + the change in a Gaussian of 4 blocks
# of 4 px (16 px) around, as in the SC's size-tuned cells
LAGS = [(1, 3), (3, 5), (5, 8), (8, 13)]  # windows of past frames averaged, 33-400 ms; spikes lag
# the groups of channels: their channels, principal components kept, the RMS these are scaled to
# (which sets the group's ridge penalty) and their windows of lags
GROUPS = [(slice(0, 768), slice(0, 120), 0.1, LAGS),  # local: ON, OFF, transient, energy
          (slice(768, 1024), slice(120, 160), 0.04, LAGS),  # oriented and motion
          (slice(1024, 1152), slice(160, 288), 0.15, [(1, 6)])]  # small objects: all components
PENALTIES, FOLDS = 10.0 ** np.arange(-1.5, 1.6, 0.5), 3  # ridge penalties tried, times X'X's mean
# diagonal, and cross-validation folds, each a run of whole segments
WIDTHS = 2.0 ** np.arange(-5, 1.1)  # softplus knee widths tried, times each neuron's mean rate
WINDOW, PAST = 300, 18  # frames predicted at a time, and the frames before them that they need
WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.npz")


def check(ok, problem):
    """Nothing; raises ValueError(problem) unless ok."""
    if not ok:
        raise ValueError(problem)


def load(path, fitting=False):
    """The movie in the .npy file at path, memory-mapped; when fitting, [movie, counts] from the
    .npz file or the competition's .mat (HDF5) file at path."""
    what = ("the competition's SCNeuronModelCompetition.mat (from its 2017 release), or give --fit "
            "DATA.npz holding movie and counts") if fitting else "a .npy movie of grey levels"
    check(os.path.exists(path), f"{path} not found: need {what}")
    try:  # an empty, truncated or text file, a folder, Python objects or a missing key
        if fitting and not path.endswith(".npz"):
            import h5py
            return [h5py.File(path, "r")[key] for key in ("trainingmovie_mini", "FRhist_tr")]
        data = np.load(path, mmap_mode="r", allow_pickle=False)
        check(isinstance(data, np.ndarray) != fitting, "")  # a movie is an .npy array, data .npz
        return [data["movie"], data["counts"]] if fitting else data
    except Exception:
        raise ValueError(f"can't read {path}: need {what}") from None


def pool(image):
    """(frames, rows / 2, columns / 2) float32 means of 2 x 2 neighbours in (frames, rows, cols)."""
    rows = np.add(image[:, ::2], image[:, 1::2], dtype=np.float32)
    return (rows[..., ::2] + rows[..., 1::2]) / 4


def blocks(pixels):
    """(frames, rows / 4, 32) means of 4 x 4 pixel blocks of (frames, rows * 128) grey levels, and
    the largest grey level."""
    low, high = pixels.min(), pixels.max()
    check(low >= 0 and high <= 255, f"grey levels run {low:g} to {high:g}: need 0-255, no NaN, inf")
    return pool(pool(pixels.reshape(len(pixels), -1, 128))), high


def blur(image, sigma):
    """(frames, rows, columns) weighted means over a Gaussian of sigma blocks around each block."""
    rows, columns = [np.exp(-0.5 * (np.arange(n)[:, None] - np.arange(n)) ** 2 / sigma**2)
                     for n in image.shape[1:]]  # (n, n) weights
    return np.float32(rows / rows.sum(0)).T @ image @ np.float32(columns / columns.sum(0))


def lagged(x, windows):
    """(frames, windows * k) means of x (frames, k) over each window (a, b) of a to b - 1 frames
    ago."""
    total = np.cumsum(np.pad(x, ((windows[-1][1], 0), (0, 0))), 0, float)  # sums to each frame
    window = lambda lag: total[len(total) - len(x) - lag:len(total) - lag]  # ... lag frames ago
    return np.concatenate([(window(a) - window(b)) / (b - a) for a, b in windows], -1)


def channels(fine):
    """(frames, 768 + 256 + 128) local, oriented and small-object channels of one clip's
    (frames, 16, 32) 4 x 4 pixel block means."""
    f = (fine / 127.5 - 1).astype(np.float32)  # contrast of 4 x 4 pixel blocks
    c = pool(f)  # (frames, 8, 16): of 8 x 8 pixel blocks
    around = blur(c, SIGMA)  # the mean contrast around each block
    energy = (c - around) ** 2 + pool(f * f) - c * c  # contrast energy: around the block, within
    energy = lagged(blur(energy, POOL).reshape(len(f), 128), [(0, RECENT)])  # (frames, blocks)
    x = (c - SURROUND * around).reshape(len(f), 128) / np.sqrt(GAIN + energy)  # centre - surround
    d = np.diff(x, axis=0, prepend=x[:1])  # change since the last frame, for transient cells
    gx, gy = np.gradient(c, axis=(2, 1))  # spatial gradient, central differences
    dt = np.diff(c, axis=0, prepend=c[:1])  # an edge moving along +x has dt * gx < 0
    pairs = [(gx, gx), (gy, gy), (gx + gy, gx + gy), (gx - gy, gx - gy), (dt, gx), (-dt, gx),
             (dt, gy), (-dt, gy)]  # products: orientation energy, then motion along -x, x, -y, y
    oriented = np.stack([pool(np.maximum(a * b, 0)) for a, b in pairs], 1)  # (frames, 8, 4, 8)
    change = np.abs(np.diff(f, axis=0, prepend=f[:1]))  # (frames, 16, 32), for small objects
    around = blur(change, AROUND)  # the change around each 4 x 4 pixel block
    small = pool(np.maximum(change - around, 0) / (SMALL + around))  # (frames, 8, 16)
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0), np.maximum(d, 0), np.maximum(-d, 0),
                           x * x, d * d, oriented.reshape(-1, 256), small.reshape(-1, 128)], -1)


def features(C, axes):
    """(frames, features): principal components of each group of one clip's centred channels C
    (frames, channels), averaged over the group's windows of lags."""
    return np.concatenate([lagged(C[:, rows] @ axes[rows, cols], lags)
                           for rows, cols, _, lags in GROUPS], -1, dtype=np.float32)


def knee(z, width):
    """Expected spikes for ridge output z: unit-slope softplus, knee at width, floor width / 4."""
    return width * (np.logaddexp(0, z / width - 1) + 0.25)


def read(path):
    """4 x 4 pixel block means of the distinct clips (segments, frames, 16, 32), their mean counts
    (segments * frames, neurons) and their numbers of trials."""
    movie, counts = load(path, fitting=True)
    check(movie.ndim == 3 and movie.shape[1] > LAGS[-1][1] and movie.shape[2] == 12288
          and movie.dtype.kind in "iuf" and counts.shape[:-1] == movie.shape[:2],
          f"need a movie (clips, {LAGS[-1][1] + 1} or more frames, 12288) and counts (clips, "
          f"frames, neurons), not {movie.shape} and {counts.shape}")
    counts = np.asarray(counts, np.float64)
    check(((counts >= 0) & (counts < np.inf)).all(), "counts must be finite and >= 0")
    # (clips, 64) sums of the picture's rows in three frames: repeats agree on all of them
    rows = [movie[:, t, PICTURE].reshape(-1, 64, 128).sum(2) for t in (0, movie.shape[1] // 2, -1)]
    _, first, repeats = np.unique(np.hstack(rows), axis=0, return_index=True, return_inverse=True)
    check(len(first) > 1, f"need 2 or more distinct clips to cross-validate, not {len(first)}")
    Y = np.concatenate([counts[repeats.ravel() == s].mean(0) for s in range(len(first))])
    # each distinct clip read once and shrunk at once; the trials of each
    return np.stack([blocks(movie[i, :, PICTURE])[0] for i in first]), Y, np.bincount(repeats.flat)


def fit(path):
    """Weights fitted to the data at path, after printing their cross-validated accuracy."""
    clips, Y, trials = read(path)
    C = np.stack([channels(clip) for clip in clips], dtype=np.float32)  # (segments, frames, ...)
    mean, axes = C.reshape(-1, C.shape[-1]).mean(0), np.zeros((C.shape[-1], GROUPS[-1][1].stop))
    C -= mean
    for rows, cols, rms, _ in GROUPS:  # each group's principal axes, largest variance first
        S = np.tensordot(C[..., rows], C[..., rows], ((0, 1), (0, 1)))  # (channels, channels)
        axes[rows, cols] = np.linalg.eigh(S)[1][:, ::-1][:, :cols.stop - cols.start] * rms
        axes[rows, cols] /= C[..., rows].std()  # so that the group's channels have this RMS
    X = np.concatenate([features(c, axes.astype(np.float32)) for c in C])  # (rows, features)
    del C  # the largest array, done with
    mx, my, n = X.mean(0), Y.mean(0), np.arange(Y.shape[1])
    X -= mx
    G, B = (X.T @ X).astype(float), X.T @ (Y - my)  # float32 products, a float64 solve
    bounds = np.linspace(0, len(clips), min(FOLDS, len(clips)) + 1).astype(int) * clips.shape[1]
    oof = np.empty((len(PENALTIES),) + Y.shape, np.float32)  # out-of-fold predictions
    for a, b in [*zip(bounds, bounds[1:]), (0, 0)]:  # folds of whole segments, then no fold
        x, y = X[a:b], Y[a:b] - my  # X'X of the other folds = total - this fold's share
        eig, V = np.linalg.eigh(G - x.T @ x)  # = V diag(eig) V'
        VB = V.T @ (B - x.T @ y)  # V'X'Y of the other folds
        # W = (X'X + lam I)^-1 X'Y = V diag(1 / (eig + lam)) V'X'Y, one W for each penalty lam
        W = np.stack([V @ (VB / (eig + lam)[:, None]) for lam in PENALTIES * np.trace(G) / len(G)])
        oof[:, a:b] = x @ W + my
    best = np.argmin([((o - Y) ** 2).sum(0) for o in oof], 0)  # each neuron's, by out-of-fold error
    W, oof = W[best, :, n].T, oof[best, :, n].T  # (features | rows, neurons)
    rate = np.maximum(my, 1e-3)  # each neuron's mean rate, kept off zero for silent neurons
    widths = WIDTHS[:, None] * rate  # (widths, neurons)
    loss = [(r - Y * np.log(r)).sum(0) for r in (knee(oof, w) for w in widths)]  # Poisson
    width = widths[np.argmin(loss, 0), n]
    rates, trials = knee(oof, width), trials.repeat(clips.shape[1])[:, None]  # trials of each row
    z = [(a - a.mean(0)) / (a.std(0) + 1e-12) for a in (rates, Y)]  # standardised, per neuron
    gain = (trials * (Y * np.log(rates / rate) - rates + rate)).sum()  # Poisson log-likelihood
    print(f"{len(clips)} segments, {len(bounds) - 1}-fold cross-validated: cc with trial average "
          f"{(z[0] * z[1]).mean():.3f}, {gain / (trials * Y).sum() / np.log(2):.3f} bits/spike")
    model = dict(mean=mean, axes=axes, W=W, bias=my - mx @ W, width=width)
    return {key: value.astype(np.float32) for key, value in model.items()}  # as weights.npz holds


@functools.cache
def weights():
    """The fitted model, loaded once from weights.npz and tried on a black frame."""
    try:
        # as float32 (a larger value becomes inf, caught next), so that every product is finite
        with np.load(WEIGHTS, allow_pickle=False) as z, np.errstate(over="ignore"):
            w = {key: z[key].astype(np.float32).astype(float) for key in z.files}
        check(all(np.isfinite(v).all() for v in w.values()), "NaN or inf")
        check((predict(np.zeros((1, 12288)), w) > 0).all(), "knee widths must be > 0")  # and shapes
    except Exception as error:  # whatever the failure, the file can't be used
        raise ValueError(f"{WEIGHTS} is missing or malformed ({error}); refit with --fit") from None
    return w


def predict(movie, w=None):
    """Expected spikes per bin, (frames, neurons) or (clips, frames, neurons), for a movie of grey
    levels, or the path of its .npy file, under the weights w, by default those in weights.npz."""
    w, array = weights() if w is None else w, None if isinstance(movie, str) else np.asarray(movie)
    source = lambda: load(movie) if array is None else array  # a file is mapped anew each window
    given = source()
    several = given.ndim == 4 or given.ndim == 3 and given.shape[-1] == 12288
    shape = given.shape if several else (1, *given.shape)  # (clips, frames, 12288 | 96, 128)
    check(len(shape) in (3, 4) and shape[2:] in [(12288,), (96, 128)] and given.dtype.kind in "iuf"
          and min(shape[:2]) > 0, "a movie must be 1 or more clips of 1 or more frames of 12288 "
          f"or 96 x 128 grey levels, not {given.dtype} {given.shape}")
    rates, top = [], 0
    for clip, start in itertools.product(range(shape[0]), range(0, shape[1], WINDOW)):
        part = source().reshape(shape)[clip, max(start - PAST, 0):start + WINDOW]  # with its past
        frames, high = blocks(part.reshape(len(part), 12288))  # letterbox checked too
        X = features(channels(frames[:, 4:20]) - w["mean"], w["axes"])  # (frames, features)
        rates.append(knee(X @ w["W"] + w["bias"], w["width"])[min(start, PAST):])
        top = max(top, high)
    if 0 < top <= 1:
        print("predict.py: warning: grey levels all lie in 0-1, not 0-255", file=sys.stderr)
    rates = np.concatenate(rates).reshape(*shape[:2], -1)
    return rates if several else rates[0]


def save(path, make, keep):
    """make()'s array, or dict of arrays, written to path (or a link's target) by a temporary file,
    once path is found to be new, or a regular file one may write other than those in keep."""
    target, tmp = os.path.realpath(path), f"{os.path.realpath(path)}.{os.getpid()}.tmp"
    mode = os.stat(target).st_mode if os.path.exists(target) else None
    check(mode is None or stat.S_ISREG(mode) and mode & stat.S_IWUSR and os.access(target, os.W_OK)
          and target not in map(os.path.realpath, keep), f"won't write {path}: the output must be "
          "new, or a regular file you may write that is not the movie or weights.npz")
    try:
        with open(tmp, "xb") as f:  # made first, so a bad folder or name stops all work
            result = make()
            np.savez_compressed(f, **result) if isinstance(result, dict) else np.save(f, result)
        os.chmod(tmp, mode or os.stat(tmp).st_mode)  # an existing file keeps its permissions
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return result


def main(args):
    """Run the command line; returns the exit status."""
    try:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # a kill ends as Ctrl-C does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # output into a closed pipe ends quietly
        start = time.time()
        if args in (["-h"], ["--help"]):
            print(__doc__)
            return 0
        check(args[:1] == ["--fit"] and len(args) <= 2
              or len(args) == 2 and "-" not in (args[0][:1], args[1][:1]),
              "usage: predict.py MOVIE.npy OUT.npy, or predict.py --fit [DATA]")
        if args[0] == "--fit":
            data = (args + ["SCNeuronModelCompetition.mat"])[1]
            done = f"{WEIGHTS}: {len(save(WEIGHTS, lambda: fit(data), [data])['bias'])} neurons"
        else:
            rates = save(args[1], lambda: predict(args[0]), [args[0], WEIGHTS])
            done = f"{args[1]}: {rates.shape} expected spikes per bin, mean {rates.mean():.3f}"
        print(f"wrote {done}, in {time.time() - start:.2f} s")
        return 0
    except (Exception, KeyboardInterrupt) as error:  # one line, never a traceback
        stop = isinstance(error, KeyboardInterrupt)
        problem = str(error).replace(f".{os.getpid()}.tmp", "")  # the output, not its temporary
        problem = "interrupted, nothing written" if stop else " ".join(problem.split())
        print(f"predict.py: {problem}", file=sys.stderr)
        return 130 if stop else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
