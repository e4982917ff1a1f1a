"""Predict mouse superior colliculus spikes from a movie: ON/OFF, transient and energy
channels under contrast gain control, oriented, motion, small-object, plain and looming
channels of block-averaged frames, time-lagged principal components of each group,
closed-form ridge regression (motion, small-object, looming and 8 px plain channels fitted
after the rest, for each neuron or not at all, the plain ones also in place of the rest)
and a softplus output whose knee, gain and offset are fitted by Poisson likelihood.

    python predict.py MOVIE.npy OUT.npy   # predict with the weights.npz beside this file
    python predict.py --fit [DATA]        # refit weights.npz: what it found, how well

MOVIE.npy: grey levels 0-255, (frames, 12288) or (clips, frames, 12288), or 96 x 128
frames. OUT.npy: float64 expected spikes per 33 ms bin, (frames, neurons) or (clips,
frames, neurons); an existing one must be a NumPy file one may write, and is replaced
through a temporary file. DATA: the competition's SCNeuronModelCompetition.mat (the
default; trainingmovie_mini and FRhist_tr) or an .npz of movie (clips, frames, 12288) and
counts (clips, frames, neurons). In Python: from predict import predict; rates =
predict(movie), for an array or the path of a .npy file, which is then mapped once and
read a window of frames at a time.
"""
import contextlib, functools, itertools, mmap, os, signal, stat, sys, tempfile, time
import warnings

import numpy as np

# pixels of rows 16-79 (4 px block rows 4-19); the rest is letterbox
PICTURE = slice(2048, 10240)
SURROUND, SIGMA = 0.8, 1.0  # weight and width (8 px blocks) of the surround, as in retina
# contrast gain control, as the retina adapts: divide by sqrt(0.1 + the contrast energy
# over a Gaussian of 2 blocks (16 px) and the last 5 frames (170 ms))
GAIN, POOL, RECENT = 0.1, 2.0, 5
ADAPT = 45  # frames (1.5 s) of light that the adapted ON and OFF channels are divided by
# small objects, as in the SC's size-tuned cells: the change over 0.02 + the change in a
# Gaussian of 4 blocks of 4 px (16 px) around
SMALL, AROUND = 0.02, 4.0
# looming, as in the SC's looming-sensitive cells: the dark area around, over a Gaussian of
# 2 blocks of 8 px (16 px), times its growth (Gabbiani et al. 2002, Nature 420:320)
LOOM = 2.0
SCALES = [(1.5, 4.0), (2.5, 8.0)]  # Gabor sigma and period in 4 px blocks: 6, 16; 10, 32 px
# the motion filters: frames to the peaks of their fast and slow lobes, their length in
# frames, and the constant of their energy's divisor
PEAKS, TAPS, NORMAL = (2.5, 4.5), 15, 0.03
LAGS = [(1, 3), (3, 5), (5, 8), (8, 13)]  # windows of past frames averaged, 33-400 ms
SINGLE = [(1, 2), (2, 3), (3, 4), (4, 5)]  # single past frames, 33-133 ms, for noise
# the groups of channels, in the order they are fitted: their channels, principal
# components kept, the RMS these are scaled to (which sets the group's share of the first
# ridge's penalty; a later group, fitted alone, is the same at any RMS) and their windows
# of lags
GROUPS = [(slice(0, 768), slice(0, 112), 0.1, LAGS),  # local: ON, OFF, transient, energy
          (slice(768, 1024), slice(112, 142), 0.04, LAGS),  # oriented energy
          (slice(1536, 1568), slice(142, 174), 0.1, SINGLE),  # plain, 16 px blocks
          (slice(1568, 1824), slice(174, 182), 0.1, LAGS),  # adapted ON, OFF
          (slice(1024, 1536), slice(182, 222), 0.1, LAGS),  # motion energy
          (slice(1824, 1952), slice(222, 350), 0.1, [(1, 6)]),  # small objects
          (slice(1952, 2080), slice(350, 358), 0.1, LAGS),  # looming
          (slice(2080, 2208), slice(358, 486), 0.1, SINGLE)]  # plain, 8 px blocks
CHANNELS, COMPONENTS = GROUPS[-1][0].stop, GROUPS[-1][1].stop  # of all the groups
LATER = 4  # the last groups, fitted after the rest (see fit)
# where each group's features end among the ridge's: its components in each of its
# windows of lags
ENDS = np.cumsum([len(lags) * (cols.stop - cols.start) for _, cols, _, lags in GROUPS])
FEATURES = int(ENDS[-1])
# ridge penalties tried, times X'X's mean diagonal, and cross-validation folds, each a run
# of whole segments
PENALTIES, FOLDS = 10.0 ** np.arange(-0.5, 0.6, 0.5), 3
# of the brightest block: clips whose block means differ by less, root mean square, are
# repeats (1 grey level in 0-255)
REPEAT = 1 / 255
STEPS = 6  # Fisher scoring steps for the output's shape (the likelihood of 12 to 1e-4)
WINDOW = 200  # frames predicted at a time
PAST = max(ADAPT, TAPS) + LAGS[-1][1]  # the frames before them that they need
# the weights beside this file, through any link to it
WEIGHTS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "weights.npz")
# what --fit reads, as its messages name it
DATA = "SCNeuronModelCompetition.mat (MATLAB v7.3, HDF5: save -v7.3) or an .npz of movie " \
    "and counts"


def check(ok, problem):
    """Nothing; raises ValueError(problem) unless ok."""
    if not ok:
        raise ValueError(problem)


def warn(problem):
    """Nothing; prints the warning on one line of stderr."""
    print(f"predict.py: warning: {problem}", file=sys.stderr)


def attempt(action, problem):
    """action()'s result; an OSError on the way becomes a ValueError naming the problem."""
    try:
        return action()
    except OSError as error:
        raise ValueError(f"{problem}: {error.strerror or error}") from None


def load(path, fitting=False):
    """The movie in the .npy file at path, memory-mapped; when fitting, the open .npz or
    HDF5 file at path and its [movie, counts]."""
    what = DATA if fitting else "a .npy movie of grey levels"
    found = "is not a regular file" if os.path.exists(path) else "not found"
    check(os.path.isfile(path), f"{path} {found}: need {what}")  # a FIFO would hang
    check(os.access(path, os.R_OK), f"can't read {path}: permission denied")
    # an empty, truncated or text file, a bad header, Python objects or a missing key
    try:
        if fitting and not os.fspath(path).lower().endswith(".npz"):
            import h5py
            file = h5py.File(path, "r")
            data = [file[key] for key in ("trainingmovie_mini", "FRhist_tr")]
            check(all(isinstance(d, h5py.Dataset) for d in data), "")  # not a group
            return file, data
        data = np.load(path, mmap_mode="r", allow_pickle=False)
        check(isinstance(data, np.ndarray) != fitting, "")  # a movie is .npy, data .npz
        return (data, [mapped(path, data, "movie"), data["counts"]]) if fitting else data
    except Exception:
        raise ValueError(f"can't read {path}: need {what}") from None


def release(array):
    """Nothing; the pages of a memory-mapped array read so far are let go."""
    if isinstance(array, np.memmap):
        array._mmap.madvise(mmap.MADV_DONTNEED)


def grey(pixels):
    """The largest grey level of pixels, once all are found to lie in 0-255."""
    low, top = pixels.min(), pixels.max()
    check(low >= 0 and top <= 255, f"grey levels run {low:.7g} to {top:.7g}: need 0-255, no NaN")
    return top


def pool(image):
    """(frames, rows / 2, columns / 2) float32 means of 2 x 2 neighbours in image."""
    rows = np.add(image[:, ::2], image[:, 1::2], dtype=np.float32)
    return (rows[..., ::2] + rows[..., 1::2]) / 4


def blocks(picture):
    """(frames, 16, 32) means of 4 x 4 pixel blocks of (frames, 8192) picture grey levels."""
    rows = picture.reshape(-1, 4, 128).sum(1)  # (frames * 16, 128): sums of 4 pixel rows
    columns = np.repeat(np.eye(32, dtype=rows.dtype), 4, 0) / 16  # (128, 32): 4 each
    return (rows @ columns).reshape(len(picture), 16, 32)


def blur(image, sigma, step=1):
    """(..., rows / step, columns / step) means over a Gaussian of sigma blocks around every
    step-th block of image (..., rows, columns)."""
    rows, columns = [np.exp(-0.5 * (np.arange(n)[:, None] - np.arange(step // 2, n, step)) ** 2
                            / sigma**2) for n in image.shape[-2:]]  # (n, n / step) weights
    return np.float32(rows / rows.sum(0)).T @ image @ np.float32(columns / columns.sum(0))


def past(x, kernels):
    """(..., frames, kernels * k): x (..., frames, k) filtered in time by each kernel, whose
    j-th weight is that of the frame j frames before (none before the first)."""
    frames, filtered = x.shape[-2], []
    for kernel in kernels:
        kernel, y = np.float32(kernel), np.zeros_like(x)
        for j in np.flatnonzero(kernel[:frames]):  # each frame j before, added in
            y[..., j:, :] += kernel[j] * x[..., :frames - j, :]
        filtered.append(y)
    return np.concatenate(filtered, -1)


def box(a, b):
    """The kernel averaging the frames a to b - 1 frames before."""
    return (np.arange(b) >= a) / (b - a)


@functools.cache
def gabors():
    """(16 * 32, 2 * 2 * 4 * 4 * 8) float32 Gabor filters over the 16 x 32 blocks of 4 x 4
    pixels, even and odd, at 2 scales and 4 orientations, centred on each 16 x 16 pixel
    block: the Gaussian mean of an image times a wave, less the image's mean times the
    wave's (so as to be blind to uniform light), for the image of each block alone."""
    image = np.eye(512, dtype=np.float32).reshape(512, 16, 32)
    y, x = np.mgrid[0:16, 0:32]
    g = []
    for (sigma, period), angle in itertools.product(SCALES, np.arange(4) * np.pi / 4):
        phase = 2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period  # (16, 32)
        wave = 2 * np.float32([np.cos(phase), np.sin(phase)])  # even, odd: amplitude 1 out
        mean = functools.partial(blur, sigma=sigma, step=4)  # at the 4 x 8 centres
        g.append(mean(image[:, None] * wave) - mean(image)[:, None] * mean(wave))
    # (blocks, even/odd, 2 scales * 4 orientations, 4, 8), rounded, so that no subnormal
    # float32 slows the products
    return np.float32(np.stack(g, 2).reshape(512, 512).round(7))


def motion(f):
    """(frames, 256 + 2 * 256) oriented energy over the frame's mean, and opponent motion
    energy rectified in both signs, of (frames, 16, 32) contrast f: Adelson & Bergen's
    (1985) quadrature pairs in space and time."""
    t = np.arange(TAPS)
    lobes = t**2 * np.exp(-2 * t / np.reshape(PEAKS, (2, 1)))  # (2, TAPS)
    fast, slow = lobes / lobes.sum(1, keepdims=True)
    S = f.reshape(len(f), 512) @ gabors()  # filtered in space once, then twice in time
    # (band-pass, low-pass; frames; even, odd; 2 scales * 4 orientations * 4 * 8 centres)
    band, low = past(S, [fast - slow, slow]).reshape(len(f), 2, 2, 256).swapaxes(0, 1)
    energy = (band**2 + low**2).sum(1)
    opponent = 4 * (band[:, 0] * low[:, 1] - band[:, 1] * low[:, 0]) / (NORMAL + energy)
    oriented = energy / (NORMAL + energy.mean(1, keepdims=True))
    return np.concatenate([oriented, np.maximum(opponent, 0), np.maximum(-opponent, 0)], -1)


def channels(fine):
    """(frames, 768 + 768 + 32 + 256 + 128 + 128 + 128) local, oriented and motion, plain
    (16 px), adapted, small-object, looming and plain (8 px) channels of one clip's
    (frames, 16, 32) 4 x 4 pixel block means."""
    f = (fine / 127.5 - 1).astype(np.float32)  # contrast of 4 x 4 pixel blocks
    c = pool(f)  # (frames, 8, 16): of 8 x 8 pixel blocks
    around = blur(c, SIGMA)  # the mean contrast around each block
    energy = (c - around) ** 2 + pool(f * f) - c * c  # contrast energy: around, within
    energy = past(blur(energy, POOL).reshape(len(f), 128), [box(0, RECENT)])
    x = (c - SURROUND * around).reshape(len(f), 128) / np.sqrt(GAIN + energy)
    # the same, adapted as well to how far the light around was from mid-grey (its mean
    # contrast squared) over the last 1.5 s; the ridge weighs both (the data chooses)
    light = past(blur(c * c, POOL).reshape(len(f), 128), [box(0, ADAPT)])
    adapted = x * np.sqrt((GAIN + energy) / (GAIN + energy + light))
    d = np.diff(x, axis=0, prepend=x[:1])  # the change since the last frame
    change = np.abs(np.diff(f, axis=0, prepend=f[:1]))  # (frames, 16, 32)
    around = blur(change, AROUND)  # the change around each 4 x 4 pixel block
    small = pool(np.maximum(change - around, 0) / (SMALL + around))  # (frames, 8, 16)
    local = np.maximum([x, -x, d, -d], 0)  # (4, frames, 128): ON, OFF and transient
    plain = pool(c).reshape(-1, 32)  # contrast of 16 x 16 pixel blocks
    dark = blur(np.maximum(-c, 0), LOOM)  # (frames, 8, 16)
    loom = dark * np.maximum(np.diff(dark, axis=0, prepend=dark[:1]), 0)
    return np.concatenate([*local, x * x, d * d, motion(f), plain, np.maximum(adapted, 0),
                           np.maximum(-adapted, 0), small.reshape(-1, 128),
                           loom.reshape(-1, 128), c.reshape(-1, 128)], -1)


def components(C, axes):
    """(..., frames, components): principal components of each group of centred channels C
    (..., frames, channels)."""
    return np.concatenate([C[..., rows] @ axes[rows, cols] for rows, cols, _, _ in GROUPS], -1)


def features(P):
    """(..., frames, features): each group's components P (..., frames, components),
    averaged over the group's windows of lags."""
    return np.concatenate([past(P[..., cols], [box(*lag) for lag in lags])
                           for _, cols, _, lags in GROUPS], -1, dtype=np.float32)


def fingerprints(movie):
    """(clips, 8 * 16 * 32) 4 x 4 pixel block means of 8 frames spread over each clip of
    movie (clips, frames, 12288), read 32 clips at a time."""
    frames, seen = np.linspace(0, movie.shape[1] - 1, 8, dtype=int), []
    for start in range(0, len(movie), 32):
        part = [blocks(np.float32(movie[start:start + 32, t, PICTURE])) for t in frames]
        seen.append(np.stack(part, 1))  # (32 clips, 8 frames, 16, 32)
        release(movie)
    return np.concatenate(seen, dtype=float).reshape(len(movie), 8 * 512)


def segments(seen):
    """Each clip's segment and each segment's first clip, for the clips' fingerprints seen:
    a clip repeats the first clip it differs from by less than REPEAT of the brightest
    block, root mean square. Segments are ordered by content, not by place in the file."""
    square = (seen**2).sum(1)
    distance = square[:, None] + square - 2 * seen @ seen.T  # (clips, clips): squared
    near = distance <= (REPEAT * seen.max()) ** 2 * seen.shape[1]
    first, segment = np.unique(near.argmax(1), return_inverse=True)  # first repeats
    order = np.lexsort(seen[first].T)
    return np.argsort(order)[segment], first[order]


def read(path):
    """Each distinct clip's channels (segments, frames, channels), its counts averaged over
    its repeats (segments, frames, neurons), its repeats (segments,), and the brightest
    grey level."""
    file, (movie, counts) = load(path, fitting=True)
    with file:
        need = f"need a movie (1 or more clips, {LAGS[-1][1] + 1} or more frames, 12288)"
        check(movie.ndim == 3 and movie.shape[2] == 12288, f"{need}, not {movie.shape}")
        check(len(movie) and movie.shape[1] > LAGS[-1][1], f"{need}, not {movie.shape}")
        kinds = f"a movie of {movie.dtype} and counts of {counts.dtype}"
        check({movie.dtype.kind, counts.dtype.kind} <= set("iuf"), f"need numbers, not {kinds}")
        need = "need counts (clips, frames, 1 or more neurons)"
        check(counts.shape[:-1] == movie.shape[:2], f"{need}, not {counts.shape}")
        check(counts.shape[-1] > 0, f"{need}, not {counts.shape}")
        counts = np.asarray(counts, np.float64)
        check(((counts >= 0) & (counts < np.inf)).all(), "counts must be finite and >= 0")
        segment, first = segments(fingerprints(movie))
        check(len(first) > 1, "need 2 or more distinct clips to cross-validate, not 1")
        check(counts.any(), "the counts hold no spike")
        C, high = np.empty((len(first), movie.shape[1], CHANNELS), np.float32), 0
        for row, clip in zip(C, first):  # each distinct clip read once and shrunk at once
            picture = np.float32(movie[clip, :, PICTURE])  # (frames, pixels)
            high = max(high, grey(picture))
            row[:] = channels(blocks(picture))
            release(movie)
    Y = np.stack([counts[segment == s].mean(0) for s in range(len(first))])
    return C, Y, np.bincount(segment), high


def principal(C):
    """The channels' means and each group's principal axes (channels, components), largest
    variance first, scaled so that the group's channels have its RMS; C (segments, frames,
    channels)."""
    mean = C.reshape(-1, CHANNELS).mean(0)
    C -= mean
    axes = np.zeros((CHANNELS, COMPONENTS), np.float32)
    for rows, cols, rms, _ in GROUPS:
        c = C[..., rows].reshape(-1, rows.stop - rows.start)  # (rows, channels), contiguous
        cc = c.T @ c
        V = np.linalg.eigh(cc)[1][:, ::-1][:, :cols.stop - cols.start]  # largest first
        # each axis signed so that its largest entry is positive, whatever the BLAS
        V *= np.sign(V[abs(V).argmax(0), range(V.shape[1])])
        axes[rows, cols] = V * rms / np.sqrt(np.trace(cc) / c.size)  # over the channels' RMS
    return mean, axes


def ridge(X, Y, frames, off=False):
    """Ridge weights (features, neurons) of centred Y (rows, neurons) on centred X (rows,
    features), each neuron's penalty chosen from PENALTIES, or if off from them and none of X
    at all, by cross-validation over runs of whole segments of frames rows, and the chosen
    out-of-fold predictions."""
    runs = len(X) // frames  # of segments
    bounds = np.linspace(0, runs, min(FOLDS, runs) + 1).astype(int) * frames
    folds = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    Y = np.float32(Y)
    XX = [(X[f].T @ X[f]).astype(float) for f in folds]  # each fold's X'X, in float32
    XY = [(X[f].T @ Y[f]).astype(float) for f in folds]  # ... and X'Y
    G, B = sum(XX), sum(XY)  # the totals; the other folds' are the total less a fold's
    eye = np.eye(len(G)) * np.trace(G) / len(G)  # penalties scale with X'X's mean diagonal
    # out-of-fold predictions at each penalty, and if off, zero: those of no X
    oof = np.zeros((len(PENALTIES) + off,) + Y.shape, np.float32)
    for f, xx, xy in zip(folds, XX, XY):
        A = G - xx
        # W = (X'X + lam I)^-1 X'Y of the other folds, for each penalty lam, in float64
        W = np.stack([np.linalg.solve(A + lam * eye, B - xy) for lam in PENALTIES])
        oof[:len(PENALTIES), f] = X[f] @ np.float32(W)
    best = np.argmin(((oof - Y) ** 2).sum(1), 0)  # each neuron's, by out-of-fold error
    W = np.zeros(B.shape)
    for k in set(best) - {len(PENALTIES)}:  # all the data's weights, at each penalty taken
        W[:, best == k] = np.linalg.solve(G + PENALTIES[k] * eye, B[:, best == k])
    return W, oof[best, :, np.arange(Y.shape[1])].T


def knee(z, width):
    """Expected spikes for ridge output z: unit-slope softplus, knee at width, floor
    width / 4."""
    v = z / width - 1  # softplus(v) = max(v, 0) + log(1 + exp(-|v|)), in z's precision
    return width * (np.maximum(v, 0) + np.log(1 + np.exp(-abs(v))) + 0.25)


def output(z, counts):
    """Each neuron's knee width, gain a and offset b of knee(a z + b, width), for ridge
    outputs z (rows, neurons), by the Poisson likelihood of counts (rows, neurons)."""
    z, counts = np.float32(z), np.float32(counts)  # float32: exp and log 4 times faster
    mean = np.maximum(counts.mean(0), 1e-3)  # each neuron's, off zero for silent ones
    a, b = 1 / mean, np.zeros_like(mean)  # of the shape knee(a z + b, 1): first knee(z, mean)
    for _ in range(STEPS):  # Fisher scoring of the shape, its scale found in closed form
        shape = knee(a * z + b, 1)
        width = mean / shape.mean(0)  # the scale of the likeliest rates of this shape
        slope = -np.expm1(0.25 - shape)  # d shape / d (a z + b)
        D = np.stack([slope * z, slope])  # (2, rows, neurons): d shape / d (a, b)
        # d rates / d (a, b), the scale following the shape (variable projection, Golub &
        # Pereyra 1973), so that a step does not trade the shape's slope against the scale
        J = width * (D - shape * D.mean(1, keepdims=True) / shape.mean(0))
        rates = width * shape
        H = np.einsum("irn,jrn->nij", J / rates, J, dtype=float)
        H += H * np.eye(2) + 1e-9 * np.eye(2)  # Levenberg-Marquardt damping: diagonal doubled
        gradient = ((1 - counts / rates) * J).sum(1, float).T  # (neurons, 2), float64
        step = np.float32(np.linalg.solve(H, gradient[..., None])[..., 0])
        a, b = a - step[:, 0], b - step[:, 1]
    width = mean / knee(a * z + b, 1).mean(0)
    # width knee(a z + b, 1) = knee(width (a z + b), width)
    return width, width * a, width * b


def fit(path):
    """Weights fitted to the data at path, after printing what it found and how well."""
    C, Y, trials, high = read(path)
    frames = C.shape[1]
    repeats = "-".join(map(str, sorted({trials.min(), trials.max()})))
    print(f"{trials.sum()} clips: {len(C)} segments x {repeats} repeats")
    mean, axes = principal(C)
    P = components(C, axes)
    del C  # the largest array, done with
    X = features(P).reshape(-1, FEATURES)  # (rows, features)
    Y = Y.reshape(len(X), -1)  # (rows, neurons)
    mx, my = X.mean(0), Y.mean(0)
    X -= mx
    R, n = Y - my, Y.shape[1]  # (rows, neurons)
    W, z = ridge(X[:, :ENDS[-LATER - 1]], R, frames)
    # then each later group, to what those before leave out of fold, with a penalty of its
    # own for each neuron, or turned off for it where that predicts better out of fold
    for start, end in itertools.pairwise(ENDS[-LATER - 1:-1]):
        V, rest = ridge(X[:, start:end], R - z, frames, off=True)
        W, z = np.concatenate([W, V]), z + rest
    # the last, plain contrast for noise, to what is left and to all of R: for each neuron
    # added to the rest or in its place, whichever predicts better out of fold
    V, rest = ridge(X[:, ENDS[-2]:], np.hstack([R - z, R]), frames, off=True)
    alone = ((R - rest[:, n:]) ** 2).sum(0) < ((R - z - rest[:, :n]) ** 2).sum(0)
    W = np.concatenate([W * ~alone, np.where(alone, V[:, n:], V[:, :n])])
    z = np.where(alone, rest[:, n:], z + rest[:, :n]) + my  # the out-of-fold predictions
    width, a, b = output(z, Y)
    rates = knee(a * z + b, width)
    r = [(v - v.mean(0)) / (v.std(0) + 1e-12) for v in (rates, Y)]  # standardised
    cc = (r[0] * r[1]).mean()
    print(f"cross-validated over whole segments: cc with the trial average {cc:.3f}")
    if cc < 0.05:
        warn(f"the fit found little (cross-validated cc {cc:.3f}); it will predict little")
    if 0 < high <= 1:
        warn("grey levels all lie in 0-1, not 0-255")
    # knee(a (X - mx) W + a my + b): the gain and offset folded into W and bias
    return dict(mean=mean, axes=axes, W=W * a, bias=a * my + b - mx @ W * a, width=width)


def header(w, key):
    """The shape and dtype of w[key] and, where w is an open .npz and w[key] is in C
    order, the offset of its data in the file (else 0), read from its .npy header alone."""
    if not hasattr(w, "zip"):  # not an open .npz
        return np.shape(w[key]), np.asarray(w[key]).dtype, 0
    with w.zip.open(key + ".npy") as file:  # a header that lies is found out when read
        version = min(np.lib.format.read_magic(file)[0], 2)  # 3.0 reads as 2.0
        shape, fortran, dtype = getattr(np.lib.format, f"read_array_header_{version}_0")(file)
        # where the entry starts in the .npz file, then its .npy header's length
        start = file._orig_compress_start + file.tell()
        return shape, dtype, 0 if fortran else start


def mapped(path, z, key):
    """z[key] of the open .npz z at path, memory-mapped where it is stored uncompressed in
    C order, so that it is read a part at a time."""
    shape, dtype, start = header(z, key)
    stored = z.zip.getinfo(key + ".npy").compress_type == 0 and dtype.kind in "iuf"
    return np.memmap(path, dtype, "r", start, shape) if stored and start else z[key]


def valid(w):
    """The model's arrays in w, a dict or an open .npz file, as float32, once each is found
    real, finite in float32 and of a shape that fits the others, with knee widths > 0.
    Shapes are checked first, so that no array of a wrong size is ever read."""
    keys = ("mean", "axes", "W", "bias", "width")  # no others are read
    check(hasattr(w, "keys") and set(keys) <= set(w.keys()), f"need arrays named {keys}")
    shapes, dtypes = zip(*[header(w, key)[:2] for key in keys])
    neurons = shapes[3][:1]  # (neurons,), or () when bias is not a vector
    need = ((CHANNELS,), (CHANNELS, COMPONENTS), (FEATURES, *neurons), neurons, neurons)
    check(shapes == need and neurons > (0,), f"need shapes {need} for 1 or more neurons, "
          f"not {shapes}")
    check(all(d.kind in "iuf" for d in dtypes), f"need numbers, not {list(map(str, dtypes))}")
    w = {key: np.asarray(w[key]) for key in keys}
    largest = np.max([abs(v).max() for v in w.values()])  # NaN if any is
    check(largest <= np.finfo(np.float32).max, "need numbers finite in float32")
    check((w["width"] > 0).all(), "need knee widths > 0")
    return {key: np.float32(v) for key, v in w.items()}


@functools.cache
def weights():
    """The fitted model in weights.npz, loaded once and checked."""
    try:
        with np.load(WEIGHTS, allow_pickle=False) as z:
            return valid(z)
    except Exception as error:  # whatever the failure, the file can't be used
        problem = f"{WEIGHTS} is missing or malformed ({error})"
        raise ValueError(f"{problem}; refit with --fit") from None


def predict(movie, w=None):
    """Expected spikes per bin, (frames, neurons) or (clips, frames, neurons), for a movie
    of grey levels, or the path of its .npy file, under the weights w (by default those in
    weights.npz)."""
    w = weights() if w is None else valid(w)
    path = isinstance(movie, (str, os.PathLike))
    given = load(movie) if path else np.asarray(movie)  # a file is mapped once, as it is
    several = given.ndim == 4 or given.ndim == 3 and given.shape[-1] == 12288
    shape = given.shape if several else (1, *given.shape)  # (clips, frames, ...)
    frames = shape[2:] in [(12288,), (96, 128)] and min(shape[:2], default=0) > 0
    check(frames and given.dtype.kind in "iuf", "a movie must be 1 or more clips of 1 or "
          f"more frames of 12288 or 96 x 128 grey levels, not {given.dtype} {given.shape}")
    clips = given.reshape(*shape[:2], 12288)  # (clips, frames, pixels)
    rates, high = np.empty((*shape[:2], len(w["bias"]))), 0
    for clip, start in itertools.product(range(shape[0]), range(0, shape[1], WINDOW)):
        part = clips[clip, max(start - PAST, 0):start + WINDOW]  # and the frames before
        letterbox = part[:, :PICTURE.start], part[:, PICTURE.stop:]  # checked as they are
        part = np.float32(part[:, PICTURE])  # in memory, no longer a view of the file
        high = max(high, grey(part), *map(grey, letterbox))
        release(given)
        C = channels(blocks(part)) - w["mean"]  # (frames, channels)
        X = features(components(C, w["axes"]))[min(start, PAST):]  # (window frames, features)
        rates[clip, start:start + WINDOW] = knee(X @ w["W"] + w["bias"], w["width"])
    if 0 < high <= 1:
        warn("grey levels all lie in 0-1, not 0-255")
    return rates if several else rates[0]


def save(path, make, keep, magic):
    """make()'s array, or dict of arrays, written to path through a temporary file that no
    one else may read, once path is found new, or a file starting with magic that one may
    write and replace, none of keep. Only links of one's own or root's are followed."""
    problem, target = f"won't write {path}", os.fspath(path)
    check(os.path.isfile(path) or not os.path.exists(path), f"{problem}: not a regular file")
    while os.path.islink(target):  # none that another user planted
        mine = os.lstat(target).st_uid in (0, os.geteuid())
        check(mine, f"won't follow {path}: a link of another user's")
        check(os.path.exists(target), f"{problem}: a link to nothing")
        target = os.path.join(os.path.dirname(target), os.readlink(target))
    folder = os.path.dirname(target) or "."
    try:  # a name too long fails here, before the work
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as error:
        raise ValueError(f"can't write {path}: {error.strerror}") from None
    if old:
        inputs = [k for k in keep if os.path.exists(k) and os.path.samefile(k, target)]
        check(not inputs, f"{problem}: it is also the input")
        check(old.st_mode & 0o222 and os.access(target, os.W_OK), f"{problem}: it is read-only")
        start = np.fromfile(target, np.uint8, len(magic)).tobytes()
        check(start == magic, f"{problem}: it is not a NumPy file, and would be lost")
        # in a sticky folder only the file's owner, or the folder's, may replace it
        shared = os.stat(folder)
        owners = (0, old.st_uid, shared.st_uid)
        check(shared.st_mode & stat.S_ISVTX == 0 or os.geteuid() in owners,
              f"{problem}: another user's file in a sticky folder")
    # the temporary, named after the output and readable by us alone, made before any work
    name = f".{os.path.basename(target)[:200]}."
    descriptor, tmp = attempt(lambda: tempfile.mkstemp(".tmp", name, folder),
                              f"can't write {path} (no file can be made in {folder})")
    def write():  # the whole file, flushed, so that a full disk fails here, with its own error
        with open(descriptor, "wb", closefd=False) as file:
            np.save(file, result) if magic else np.savez_compressed(file, **result)
    try:
        result = make()
        attempt(write, f"can't write {path}")
        umask = os.umask(0o077)  # the umask can only be read by setting it
        os.umask(umask)
        os.chmod(tmp, old.st_mode & 0o7777 if old else 0o666 & ~umask)  # kept, or umask's
        with contextlib.suppress(OSError):  # its group kept too, where one may give it
            old and os.chown(tmp, -1, old.st_gid)
        attempt(lambda: os.replace(tmp, target), f"can't write {path}")
    except BaseException:  # only this run's temporary is removed
        os.remove(tmp)
        raise
    finally:
        os.close(descriptor)
    return result


def main(args):
    """Runs the command line; returns the exit status: 0 done, 2 nothing written, 130
    interrupted with nothing written, 1 written but not reported."""
    try:
        start = time.time()
        with warnings.catch_warnings():
            # a numerical problem is one line too
            warnings.simplefilter("error", RuntimeWarning)
            if args in (["-h"], ["--help"]):
                report = __doc__
            elif args[:1] == ["--fit"] and len(args) <= 2:
                data = (args + ["SCNeuronModelCompetition.mat"])[1]
                neurons = len(save(WEIGHTS, lambda: valid(fit(data)), [data], b"")["bias"])
                report = f"wrote {WEIGHTS}: {neurons} neurons, in {time.time() - start:.2f} s"
            else:
                check(len(args) == 2 and "-" not in (args[0][:1], args[1][:1]), "usage: "
                      "predict.py MOVIE.npy OUT.npy, or predict.py --fit [DATA] (a name that "
                      "starts with - is written ./-name)")
                rates = save(args[1], lambda: predict(args[0]), [args[0]], b"\x93NUMPY")
                report = (f"wrote {args[1]}: {rates.shape} expected spikes per bin, mean "
                          f"{rates.mean():.3f}, in {time.time() - start:.2f} s")
    except (Exception, KeyboardInterrupt) as error:  # one line, never a traceback
        stop = isinstance(error, KeyboardInterrupt)
        problem = "interrupted, nothing written" if stop else " ".join(str(error).split())
        print(f"predict.py: {problem}", file=sys.stderr)
        return 130 if stop else 2
    try:
        print(report, flush=True)
        return 0
    except (OSError, UnicodeError):  # written all the same, so not 2
        return 1


if __name__ == "__main__":
    # a kill ends as Ctrl-C does, unless ignored, as under nohup
    for kind in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        if signal.getsignal(kind) != signal.SIG_IGN:
            signal.signal(kind, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # output into a closed pipe ends quietly
    sys.stdout.reconfigure(errors="backslashreplace")  # any output name can be reported
    status = main(sys.argv[1:])
    if status == 1:  # a report stdout can't take is let go, so exiting adds nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
