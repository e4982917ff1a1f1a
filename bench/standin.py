"""A simulated SCNeuronModelCompetition.mat with the cell types reported for mouse superior
colliculus.

    python bench/standin.py OUTDIR [--seed N] [--small]

Writes, in the competition's layout (clip = segment * 6 + repeat, 150 frames of 96 x 128 whole grey
levels 0-255 with black letterbox rows 0-15 and 80-95, float64):
  OUTDIR/standin.mat        HDF5 (MATLAB v7.3): trainingmovie_mini (288, 150, 12288) and FRhist_tr
                            (288, 150, 54), spike counts per 33.3 ms bin
  OUTDIR/heldout_movie.npy  (60, 150, 12288): 10 held-out segments x 6 repeats
  OUTDIR/heldout.npz        counts (10, 6, 150, 54), rate (10, 150, 54) the true expected counts,
                            kind (54,) each neuron's cell type, field (54, 64, 128) its spatial
                            receptive field over the picture
  OUTDIR/typing_movie.npy   (60, 150, 12288) uint8: 10 clips x 6 repeats of the stimuli that SC
                            neurons are typed with, shown to the same neurons
  OUTDIR/typing.npz         as heldout.npz, with stimulus (10,) each clip's kind of stimulus and
                            shown (10, 150) what each frame shows
--small writes 4 training and 2 held-out segments (about 0.5 GB) for a quick look.

The movie mixes three kinds of five-second segment: a dead-leaves scene (occluding discs with
power-law sizes, whose statistics match natural images; Lee, Mumford & Huang 2001, IJCV 41:35)
seen through a drifting camera with saccades; drifting sinusoidal and square-wave gratings (moving
edges); and a dim background crossed by small moving discs and dark looming discs. Objects also
cross the scenes.

The neurons, one model per cell type, each on a 32 x 64 grid (2 x 2 pixels) of the picture:
  on, off            sustained ON or OFF centre-surround fields (Wang et al. 2010, J Neurosci
                     30:16573; Gale & Murphy 2014, J Neurosci 34:13458)
  on_tr, off_tr      the same through a biphasic, transient kernel
  looming            dark expanding objects: growth of the dark area in a large field (Zhao, Liu &
                     Cang 2014, Neuron 84:202; Shang et al. 2015, Science 348:1472)
  small              small-object cells: transient energy in a small centre divided by that in a
                     wide surround, so size tuned (Gale & Murphy 2014; Ito, Feldheim & Litke
                     2017, J Neurosci 37:8428)
  orient             orientation-selective complex cells: Gabor quadrature energy (Wang et al. 2010;
                     Feinberg & Meister 2015, Nature 519:229; Ahmadlou & Heimel 2015, Nat
                     Commun 6:6773)
  direction          direction-selective motion energy (Adelson & Bergen 1985, JOSA A 2:284), as in
                     the SC's direction-selective cells (Inayat et al. 2015, J Neurosci 35:7992)
  wide               wide-field cells pooling motion over a large field (Gale & Murphy 2014)
Each has a temporal kernel with a latency of 40-150 ms (Wang et al. 2010), adapts to the recent
contrast around it (a running average over about 1.5 s) and is divisively normalised by the present
contrast energy of its neighbourhood (Carandini & Heeger 2012, Nat Rev Neurosci 13:51). Rates end
in a threshold softplus scaled to 1-10 spikes/s. Counts are over-dispersed (gamma-Poisson, with a
gain per trial), and some neurons fade over the six repeats, as SC responses are suppressed by a
stimulus that recurs (Lee, Tran, Turan & Meister 2020, eLife 9:e50678).
The typing set (Ito, Feldheim & Litke 2017, J Neurosci 37:8428; De Franceschi & Solomon 2018,
J Physiol 596:6391), on the mean grey of the natural movie: full-field ON and OFF steps; sinusoidal
gratings drifting in 8 directions; bright bars sweeping in 8 directions; dark discs looming and
receding; and bright and dark spots of 5 sizes flashed over the picture. The neurons are the same:
their stimulus is simulated with the natural movie, their drive normalised by its natural part
alone, and their counts drawn with their own over-dispersion and fading. The natural files are the
same as without it.
Everything follows from --seed.
"""
import argparse, os

import numpy as np

FRAMES, REPEATS, NEURONS = 150, 6, 54  # five-second segments at 30 Hz, repeats, neurons
SEGMENTS, SMALL = (48, 10), (4, 2)  # training and held-out segments, and with --small
ROWS, COLS = 32, 64  # the simulation grid over the 64 x 128 pixel picture
GREY = 0.45  # the natural movie's mean grey, the typing stimuli's background
KINDS = {"on": 6, "off": 6, "on_tr": 5, "off_tr": 5, "looming": 6, "small": 8, "orient": 6,
         "direction": 6, "wide": 6}  # neurons of each type


def dead_leaves(rng, rows=192, cols=320, discs=3000):
    """(rows, cols) scene in [0, 1] of occluding discs with radius density ~ r^-3."""
    scene = np.full((rows, cols), rng.uniform(0.2, 0.6), np.float32)
    radius = 2.0 / np.sqrt(1 - rng.uniform(0, 0.998, discs))  # Pareto: density ~ r^-3 from 2 px
    for r, y, x, grey in zip(np.minimum(radius, 60), rng.uniform(0, rows, discs),
                             rng.uniform(0, cols, discs), rng.beta(2, 2, discs)):
        y0, y1 = int(max(y - r, 0)), int(min(y + r + 1, rows))  # the disc's bounding box
        x0, x1 = int(max(x - r, 0)), int(min(x + r + 1, cols))
        yy, xx = np.ogrid[y0:y1, x0:x1]
        scene[y0:y1, x0:x1][(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = grey
    return scene


def disc(frame, y, x, radius, grey):
    """Nothing; paints an anti-aliased disc onto frame."""
    yy, xx = np.ogrid[:frame.shape[0], :frame.shape[1]]
    alpha = np.clip(radius + 0.5 - np.sqrt((yy - y) ** 2 + (xx - x) ** 2), 0, 1)
    frame += alpha * (grey - frame)


def segment(rng, scenes):
    """(150, 64, 128) picture of one five-second segment, grey levels in [0, 1]."""
    kind = rng.choice(["scene", "grating", "objects"], p=[0.4, 0.3, 0.3])
    yy, xx = np.mgrid[:64, :128].astype(np.float32)
    movie, objects = np.empty((FRAMES, 64, 128), np.float32), []
    scene, pos, vel = scenes[rng.integers(len(scenes))], rng.uniform([0, 0], [120, 180]), 0
    grating, phase = None, rng.uniform(0, 2 * np.pi)
    for t in range(FRAMES):
        if kind == "scene":
            if rng.random() < 1 / 30:  # a saccade about once a second
                pos = pos + rng.normal(0, 15, 2)
            vel = 0.9 * vel + rng.normal(0, 0.4, 2)
            pos = np.clip(pos + vel, 0, [scene.shape[0] - 64, scene.shape[1] - 128])
            frame = scene[int(pos[0]):int(pos[0]) + 64, int(pos[1]):int(pos[1]) + 128].copy()
        elif kind == "grating":
            if grating is None or grating["left"] == 0:  # a new grating or a blank every 0.3-1.2 s
                angle, period = rng.uniform(0, 2 * np.pi), rng.uniform(16, 64)
                grating = dict(left=int(rng.integers(10, 36)), blank=rng.random() < 0.2,
                               square=rng.random() < 0.3,
                               speed=rng.uniform(0.5, 3) / 30 * 2 * np.pi,  # 0.5-3 cycles/s
                               phase=(np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / period)
            wave = np.sin(grating["phase"] - grating["speed"] * t)
            wave = np.sign(wave) if grating["square"] else wave
            frame = 0.45 + (0 if grating["blank"] else 0.35) * wave
            grating["left"] -= 1
        else:
            frame = 0.45 + 0.05 * np.sin(xx / 40 + yy / 30 + phase)
        if rng.random() < (1 / 10 if kind == "objects" else 1 / 40):  # a new object
            looming = rng.random() < 0.35  # a dark disc growing in place; else a disc sweeping
            objects.append(dict(
                y=rng.uniform(0, 64), x=rng.uniform(0, 128),  # pixels
                r=1.5 if looming else rng.uniform(1.5, 6),  # radius, pixels
                grow=rng.uniform(0.8, 2.0) if looming else 0,  # pixels per frame
                v=0 if looming else rng.uniform(1, 5) * np.exp(2j * np.pi * rng.random()),  # x + iy
                grey=rng.uniform(0, 0.1) if looming or rng.random() < 0.6 else rng.uniform(0.8, 1),
                left=int(rng.integers(15, 45))))  # frames to live
        for ob in objects:
            disc(frame, ob["y"], ob["x"], ob["r"], ob["grey"])
            ob["y"], ob["x"] = ob["y"] + np.imag(ob["v"]), ob["x"] + np.real(ob["v"])
            ob["r"], ob["left"] = min(ob["r"] + ob["grow"], 45), ob["left"] - 1
        objects = [ob for ob in objects if ob["left"] > 0]
        movie[t] = np.clip(frame, 0, 1)
    return movie


def typing():
    """(10, 150, 64, 128) typing stimuli in [0, 1], each clip's kind (10,) and what each frame
    shows (10, 150)."""
    yy, xx = np.mgrid[:64, :128].astype(np.float32) - [[[31.5]], [[63.5]]]  # from the centre
    movie = np.full((10, FRAMES, 64, 128), GREY, np.float32)
    shown = np.full((10, FRAMES), "grey", object)
    kinds = ["steps", "gratings", "gratings", "bars", "bars", "looming", "looming", "spots",
             "spots", "spots"]
    movie[0, 30:60], movie[0, 90:120] = 0.9, 0.05  # full-field ON, then OFF, steps of 1 s
    shown[0, 30:60], shown[0, 90:120] = "on step", "off step"
    for clip, first in ((1, 0), (2, 45), (3, 0), (4, 45)):  # 4 directions a clip, 1.2 s each
        for k, degrees in enumerate(range(first, 360, 90)):
            angle, t = np.deg2rad(degrees), np.arange(36)
            along = xx * np.cos(angle) + yy * np.sin(angle)  # pixels along the direction
            frames = slice(3 + 37 * k, 39 + 37 * k)
            if kinds[clip] == "gratings":  # period 32 px, 2 cycles/s, contrast 0.35
                phase = 2 * np.pi * (along[None] / 32 - 2 * t[:, None, None] / 30)
                movie[clip, frames] = GREY + 0.35 * np.sin(phase)
            else:  # an 8 px bar, full length, across the picture at 4 px per frame
                centre = -72 + 4 * t[:, None, None]
                movie[clip, frames] = np.where(abs(along[None] - centre) < 4, 0.9, GREY)
            shown[clip, frames] = f"{kinds[clip][:-1]} {degrees}"
    for clip, places in ((5, [(0, -32), (0, 32)]), (6, [(-12, 0), (12, 48)])):
        for k, (y, x) in enumerate(places):
            for sign, start in ((1, 5 + 72 * k), (-1, 40 + 72 * k)):  # looming, then receding
                radius = 2 * 1.25 ** np.arange(16)  # 2-57 px over 0.5 s, as an object nears
                for t, r in enumerate(radius[::sign]):
                    disc(movie[clip, start + t], 31.5 + y, 63.5 + x, r, 0.05)
                shown[clip, start:start + 16] = "looming" if sign > 0 else "receding"
    places = [(y, x) for y in (-16, 16) for x in (-48, -16, 16, 48)]  # from the centre, px
    for n in range(30):  # radius 2-32 px, at 8 places, bright then dark
        size, (y, x), grey = [2, 4, 8, 16, 32][n % 5], places[n % 8], (0.9, 0.05)[n // 15]
        clip, start = 7 + n // 10, 15 * (n % 10)  # flashed for 0.33 s, then 0.17 s of grey
        for t in range(start, start + 10):
            disc(movie[clip, t], 31.5 + y, 63.5 + x, size, grey)
        shown[clip, start:start + 10] = f"{'bright' if grey > 0.5 else 'dark'} spot {size}"
    return movie, np.array(kinds), shown.astype(str)


def gauss(y, x, sigma):
    """(ROWS * COLS,) Gaussian weights over the grid, summing to 1."""
    yy, xx = np.mgrid[:ROWS, :COLS]
    g = np.exp(-0.5 * ((yy - y) ** 2 + (xx - x) ** 2) / sigma**2)
    return (g / g.sum()).ravel().astype(np.float32)


def gabor(y, x, sigma, angle, period, phase):
    """(ROWS * COLS,) Gabor weights over the grid, of zero mean."""
    yy, xx = np.mgrid[:ROWS, :COLS]
    envelope = np.exp(-0.5 * ((yy - y) ** 2 + (xx - x) ** 2) / sigma**2)
    along = (xx - x) * np.cos(angle) + (yy - y) * np.sin(angle)
    wave = np.cos(2 * np.pi * along / period + phase)
    g = envelope * wave
    return ((g - envelope * g.sum() / envelope.sum()) / np.abs(g).sum()).ravel().astype(np.float32)


def kernel(latency, transient, n=15):
    """(n,) causal temporal kernel peaking at latency frames; biphasic when transient."""
    t = np.arange(n, dtype=float)
    lobe = lambda peak: (t / peak) ** 3 * np.exp(3 * (1 - t / peak))
    k = lobe(latency) - (0.85 if transient else 0.15) * lobe(1.8 * latency)
    return k / np.abs(k).sum()


def causal(x, k):
    """x (time first) filtered along time by the causal kernel k, per segment of 150 frames."""
    x = x.reshape(-1, FRAMES, *x.shape[1:])
    out = np.zeros_like(x)
    for lag, weight in enumerate(k):
        out[:, lag:] += weight * x[:, :FRAMES - lag]
    return out.reshape(-1, *x.shape[2:])


def neurons(rng, grid, natural=None):
    """(frames, 54) true expected counts per bin, kinds (54,), fields (54, 64, 128); each
    neuron's drive is scaled by its statistics over the first `natural` frames (all if None)."""
    contrast = (grid - 0.45) / 0.45  # (frames, ROWS * COLS)
    segments = contrast.reshape(-1, FRAMES, ROWS * COLS)
    change = np.abs(np.diff(segments, axis=1, prepend=segments[:, :1])).reshape(len(grid), -1)
    # |brightening or darkening| since the last frame, 0 at each segment's start
    energy = contrast**2 + change  # local contrast energy
    rates, kinds, fields = [], [], []
    for kind, count in KINDS.items():
        for _ in range(count):
            y, x = rng.uniform([6, 8], [ROWS - 6, COLS - 8])
            size = rng.uniform(2, 4)
            latency = rng.uniform(1.2, 4.5)  # frames: 40-150 ms
            field = gauss(y, x, size)
            if kind in ("on", "off", "on_tr", "off_tr"):
                sign = 1 if kind.startswith("on") else -1
                field = sign * (field - 0.7 * gauss(y, x, 3 * size))
                drive = np.maximum(causal(contrast @ field, kernel(latency, "_tr" in kind)), 0)
            elif kind == "looming":
                size = rng.uniform(6, 10)
                field = gauss(y, x, size)
                dark = causal(np.maximum(0.25 - grid, 0) @ field, kernel(latency, False))
                dark = dark.reshape(-1, FRAMES)  # (segments, frames)
                growth = np.diff(dark, axis=1, prepend=dark[:, :1]).ravel()
                dark = dark.ravel()
                drive = np.maximum(growth, 0) * (0.02 + dark)
            elif kind == "small":
                size = rng.uniform(1, 2)
                field = gauss(y, x, size)
                centre = causal(change @ field, kernel(latency, False))
                surround = causal(change @ gauss(y, x, 6 * size), kernel(latency, False))
                drive = np.maximum(centre - 0.3 * surround, 0) / (0.05 + 2 * surround)
            elif kind in ("orient", "direction"):
                size, angle = rng.uniform(3, 6), rng.uniform(0, 2 * np.pi)
                period = rng.uniform(8, 24)  # grid points: 16-48 pixels
                even, odd = (gabor(y, x, size, angle, period, p) for p in (0, np.pi / 2))
                field = gauss(y, x, size)
                e, o = contrast @ even, contrast @ odd
                fast, slow = kernel(latency, True), kernel(latency, False)
                if kind == "orient":
                    drive = causal(e, fast) ** 2 + causal(o, fast) ** 2
                else:  # opponent motion energy: preferred minus null direction
                    a, b = causal(e, fast) + causal(o, slow), causal(o, fast) - causal(e, slow)
                    c, d = causal(e, fast) - causal(o, slow), causal(o, fast) + causal(e, slow)
                    drive = np.maximum(a**2 + b**2 - c**2 - d**2, 0)
            else:  # wide
                size = rng.uniform(10, 16)
                field = gauss(y, x, size)
                drive = causal(change @ field, kernel(latency, True)) ** 2
            near = energy @ gauss(y, x, 2.5 * size)  # contrast energy around the field, now
            slow = causal(near, np.exp(-np.arange(45) / 45) / 45 * 3)  # and over the last 1.5 s
            drive = drive / (0.1 + 0.5 * near + slow)  # normalisation and adaptation
            own = drive[:natural]  # the statistics the neuron is adapted to
            z = (drive - own.mean()) / (own.std() + 1e-9)
            shape = np.logaddexp(0, rng.uniform(1, 2.5) * (z - rng.uniform(0, 1.5)))
            mean = np.exp(rng.normal(np.log(2.5), 0.6)) / 30  # 1-10 spikes/s, as counts per bin
            rates.append(mean * (0.1 + 0.9 * shape / shape[:natural].mean()))
            kinds.append(kind)
            fields.append(np.kron(field.reshape(ROWS, COLS), np.ones((2, 2))) / 4)
    fields = np.stack(fields).astype(np.float32)
    return np.stack(rates, 1).astype(np.float32), np.array(kinds), fields


def counts(rng, rates, noise=None):
    """(segments, 6, 150, 54) over-dispersed counts: gamma-Poisson with trial gains and fading;
    and the neurons' noise (fading, gamma shape), drawn unless given."""
    segments = rates.reshape(-1, FRAMES, NEURONS)
    fading = np.where(rng.random(NEURONS) < 0.3, rng.uniform(0.15, 0.5, NEURONS), 0) \
        if noise is None else noise[0]  # per repeat
    fade = np.exp(-fading * np.arange(REPEATS)[:, None])  # (repeats, neurons)
    fade /= fade.mean(0)
    trial = rng.lognormal(0, 0.2, (len(segments), REPEATS, 1, NEURONS)) * fade[None, :, None]
    shape = rng.uniform(2, 6, NEURONS) if noise is None else noise[1]  # gamma shape: smaller is
    # more over-dispersed
    gamma = rng.gamma(shape, 1 / shape, (len(segments), REPEATS, FRAMES, NEURONS))
    return rng.poisson(segments[:, None] * trial * gamma).astype(np.float64), (fading, shape)


def simulate(rng, segments, tests):
    """(segments, 150, 64, 128) natural pictures, and the true rates (frames, 54), kinds and
    fields of neurons shown them and then the (clips, 150, 64, 128) pictures `tests`."""
    scenes = [dead_leaves(rng) for _ in range(6)]
    pictures = np.stack([segment(rng, scenes) for _ in range(segments)])
    both = np.concatenate([pictures, tests])  # shown to the same neurons
    grid = both.reshape(-1, ROWS, 2, COLS, 2).mean((2, 4)).reshape(-1, ROWS * COLS)
    return pictures, *neurons(rng, grid, pictures.size // (64 * 128))


def twin(seed, tests, segments=sum(SEGMENTS)):
    """(clips, 150, 54) the true rates, for (clips, 150, 64, 128) pictures, of the neurons that
    `python bench/standin.py OUTDIR --seed SEED` simulates (with `--small`, sum(SMALL))."""
    rates = simulate(np.random.default_rng(seed), segments, tests)[1]
    return rates[segments * FRAMES:].reshape(len(tests), FRAMES, NEURONS)


def write(outdir, rng, train, held):
    """Nothing; simulates train + held segments and writes the three files."""
    tests, stimulus, shown = typing()
    pictures, rates, kinds, fields = simulate(rng, train + held, tests)
    natural = len(pictures) * FRAMES
    pictures = np.concatenate([pictures, tests])
    spikes, noise = counts(rng, rates[:natural])
    frames = np.zeros((len(pictures), FRAMES, 96, 128))
    frames[:, :, 16:80] = np.round(255 * pictures)
    frames = frames.reshape(len(pictures), FRAMES, 12288)  # whole grey levels, letterboxed
    typed = frames[train + held:].astype(np.uint8).repeat(REPEATS, 0)
    frames, rates = frames[:train + held], rates.reshape(-1, FRAMES, NEURONS)
    import h5py
    with h5py.File(os.path.join(outdir, "standin.mat"), "w", userblock_size=512) as f:
        movie = f.create_dataset("trainingmovie_mini", (train * REPEATS, FRAMES, 12288), np.float64,
                                 chunks=(1, FRAMES, 12288))
        for s in range(train):
            movie[s * REPEATS:(s + 1) * REPEATS] = frames[s]  # broadcast to every repeat
        f["FRhist_tr"] = spikes[:train].reshape(-1, FRAMES, NEURONS)
    with open(os.path.join(outdir, "standin.mat"), "r+b") as f:  # MATLAB's v7.3 header
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, bench/standin.py".ljust(116) + bytes(12))
    np.save(os.path.join(outdir, "heldout_movie.npy"), frames[train:].repeat(REPEATS, 0))
    np.savez(os.path.join(outdir, "heldout.npz"), counts=spikes[train:],
             rate=rates[train:train + held], kind=kinds, field=fields)
    np.save(os.path.join(outdir, "typing_movie.npy"), typed)
    np.savez(os.path.join(outdir, "typing.npz"), counts=counts(rng, rates[train + held:], noise)[0],
             rate=rates[train + held:], kind=kinds, field=fields, stimulus=stimulus, shown=shown)
    print(f"wrote {outdir}: {train} training and {held} held-out segments, mean rate "
          f"{rates[:train + held].mean() * 30:.1f} spikes/s, {spikes.mean():.3f} spikes per bin; "
          f"{len(tests)} typing clips, {rates[train + held:].mean() * 30:.1f} spikes/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--small", action="store_true", help="4 training and 2 held-out segments")
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    write(args.outdir, np.random.default_rng(args.seed), *(SMALL if args.small else SEGMENTS))


if __name__ == "__main__":
    main()
