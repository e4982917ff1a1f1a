"""In-silico typing: each neuron of a fitted model typed from its predicted responses to the
stimuli that superior colliculus neurons are typed with.

    python bench/insilico.py WEIGHTS.npz OUT.png [HELDOUT.npz]
    python bench/insilico.py --twin SEED OUT.png [HELDOUT.npz]

With --twin, the neurons typed are bench/standin.py's of that seed, from their true rates: the
agreement a model that predicted them perfectly would reach (on a stand-in of the standard
size, not --small).

The model (predict.py with the weights given) is shown, on the natural movie's mean grey:
  1. bright and dark 8 px spots flashed on a grid 8 px apart: the receptive field's centre
     (the strongest response), radius (of a disc of the area answering at least half that) and
     reach (the mean response to spots over 40 px from the centre, over the strongest);
  2. at that centre, a 8 px spot stepping on, bright then dark, for 1 s: the ON-OFF index
     (peak ON - peak OFF) / (peak ON + peak OFF) and the sustained index (the mean response
     0.5-1 s after the onset over its peak, of the preferred sign);
  3. full-field gratings, period 32 px, drifting at 2 cycles/s in 8 directions: the direction
     and orientation selectivity |sum R e^(i theta)| / sum R and |sum R e^(2i theta)| / sum R
     (responses R above the baseline; Mazurek, Kager & Van Hooser 2014, Front Neural Circuits
     8:92) and the preferred direction;
  4. at the centre, a dark disc looming from 2 to 57 px in 0.5 s, and one shrinking back from
     57 px after a second at that size: the looming index (L - R) / (L + R) of the peaks;
  5. at the centre, bright and dark spots of radius 2, 4, 8, 16 and 32 px, flashed for 0.33 s:
     the preferred size and the suppression by the largest, 1 - R(32) / R(preferred).
It prints these for each neuron with the type the rules in `kind` give, draws each neuron's
direction and size tuning in a panel of OUT.png, and, given a held-out file of bench/standin.py
with the true types (kind), the agreement and a confusion table.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import predict  # noqa: E402
from standin import GREY, disc, twin  # noqa: E402

SIZES = [2, 4, 8, 16, 32]  # spot radii, pixels
DIRECTIONS = np.arange(0, 360, 45)  # degrees; 0 is rightward, 90 downward
CENTRE = (31.5, 63.5)  # the picture's centre, pixels


def frames(pictures):
    """(..., frames, 12288) uint8 grey levels, letterboxed, of (..., frames, 64, 128) pictures
    in [0, 1]."""
    out = np.zeros((*pictures.shape[:-2], 96, 128), np.uint8)
    out[..., 16:80, :] = np.round(255 * np.clip(pictures, 0, 1))
    return out.reshape(*pictures.shape[:-2], 12288)


def blank(count):
    """(count, 64, 128) frames of the mean grey."""
    return np.full((count, 64, 128), GREY, np.float32)


def spots(y, x, radius, grey, on, off):
    """(on + off, 64, 128) a spot flashed for `on` frames, then `off` frames of grey."""
    movie = blank(on + off)
    for frame in movie[:on]:
        disc(frame, y, x, radius, grey)
    return movie


def mapping():
    """(26, 150, 64, 128) clips of 1 s of grey and then 10 flashes: bright then dark 8 px
    spots on a grid 8 px apart, 6 frames each and 6 of grey; and the grid's centres (y, x)."""
    centres = [(y, x) for y in np.arange(4, 64, 8) for x in np.arange(4, 128, 8)]
    flashes = [spots(y, x, 8, grey, 6, 6) for grey in (0.9, 0.05) for y, x in centres]
    flashes += [blank(12)] * (-len(flashes) % 10)  # grey, to fill the last clip
    clips = np.stack(flashes).reshape(-1, 120, 64, 128)  # (26, 10 flashes x 12 frames, 64, 128)
    grey = np.broadcast_to(blank(30), (len(clips), 30, 64, 128))
    return np.concatenate([grey, clips], 1), np.array(centres, float)


def gratings():
    """(8, 150, 64, 128) 1 s of grey, 1.2 s of a full-field grating drifting in each direction,
    then grey."""
    yy, xx = np.mgrid[:64, :128].astype(np.float32)
    t = np.arange(36)[:, None, None]
    clips = np.stack([blank(150)] * len(DIRECTIONS))
    for clip, a in zip(clips, np.deg2rad(DIRECTIONS)):
        clip[30:66] = GREY + 0.35 * np.sin(2 * np.pi * ((np.cos(a) * xx + np.sin(a) * yy) / 32
                                                        - 2 * t / 30))
    return clips


def protocol(y, x):
    """(3, 150, 64, 128) the stimuli at one centre: steps, looming and receding, sizes."""
    steps = np.concatenate([blank(30), spots(y, x, 8, 0.9, 30, 30), spots(y, x, 8, 0.05, 30, 30)])
    loom = blank(150)
    radius = 2 * 1.25 ** np.arange(16)  # 2-57 px in 0.5 s, as an object nears
    for t, r in enumerate(radius):
        disc(loom[20 + t], y, x, r, 0.05)
    for t in range(36, 60):  # held at its largest, then gone
        disc(loom[20 + t], y, x, radius[-1], 0.05)
    for t in range(80, 110):  # appears at its largest, held 1 s, then shrinks
        disc(loom[t], y, x, radius[-1], 0.05)
    for t, r in enumerate(radius[::-1]):
        disc(loom[110 + t], y, x, r, 0.05)
    sizes = np.concatenate([spots(y, x, r, grey, 10, 5) for grey in (0.9, 0.05) for r in SIZES])
    return np.stack([steps, loom, sizes])


def indices(respond):
    """A dict of per-neuron arrays: the centre (y, x), radius, reach, ON-OFF, sustained,
    direction and orientation indices, preferred direction, looming index, preferred size,
    suppression, and the direction and size tuning (neurons, 8), (neurons, 5); `respond` maps
    (clips, 150, 64, 128) pictures to (clips, 150, neurons) rates."""
    clips, centres = mapping()
    rates = respond(clips)
    base = rates[:, 20:30].mean((0, 1))  # (neurons,): on grey
    flashes = rates[:, 30:].reshape(-1, 12, rates.shape[-1])[:2 * len(centres)]  # (flashes, 12, n)
    evoked = flashes[:, 1:9].mean(1) - base  # (flashes, neurons)
    field = np.maximum(*evoked.reshape(2, len(centres), -1))  # (places, neurons): either sign
    centre = centres[field.argmax(0)]
    # the radius of a disc of the area where the response is at least half its peak
    area = (field >= 0.5 * field.max(0)).sum(0) * 8 * 8  # pixels
    radius = np.sqrt(area / np.pi)
    # the mean response, of either sign, to flashes over 40 px from the centre, over the peak
    away = np.hypot(*(centres[:, None] - centre).transpose(2, 0, 1)) > 40  # (places, neurons)
    strength = abs(evoked).reshape(2, len(centres), -1).max(0)  # (places, neurons)
    far = (strength * away).sum(0) / away.sum(0) / np.maximum(strength.max(0), 1e-9)
    own = []  # (neurons, 3, 150): each neuron's rates for the stimuli at its own centre
    for first in range(0, len(centre), 16):  # 16 neurons at a time, 240 MB of pictures
        movies = np.stack([protocol(y, x) for y, x in centre[first:first + 16]])
        rates = respond(movies.reshape(-1, 150, 64, 128)).reshape(len(movies), 3, 150, -1)
        own.append(rates[np.arange(len(movies)), :, :, first + np.arange(len(movies))])
    own = np.concatenate(own) - base[:, None, None]
    steps, loom, sizes = own.transpose(1, 0, 2)  # (neurons, 150) each
    on, off = steps[:, 30:60], steps[:, 90:120]
    peak = np.maximum(np.stack([on.max(1), off.max(1)]), 1e-9)  # (2, neurons)
    preferred = np.where(peak[0] >= peak[1], on.T, off.T).T
    tuning = np.maximum(respond(gratings())[:, 36:66].mean(1) - base, 0).T  # (neurons, 8)
    angle = np.deg2rad(DIRECTIONS)
    total = tuning.sum(1) + 1e-9
    vector = (tuning * np.exp(1j * angle)).sum(1)
    looming, receding = loom[:, 20:44].max(1), loom[:, 110:134].max(1)
    size = np.maximum(*sizes.reshape(len(centre), 2, 5, 15)[..., :10].mean(-1).transpose(1, 0, 2))
    size = np.maximum(size, 0)  # (neurons, 5): the stronger sign at each radius
    pick = size.argmax(1)
    return dict(
        y=centre[:, 0], x=centre[:, 1], radius=radius, far=far,
        on_off=(peak[0] - peak[1]) / (peak[0] + peak[1]),
        sustained=preferred[:, 15:].mean(1) / np.maximum(preferred.max(1), 1e-9),
        direction=abs(vector) / total,
        orientation=abs((tuning * np.exp(2j * angle)).sum(1)) / total,
        preferred=np.rad2deg(np.angle(vector)) % 360,
        looming=(np.maximum(looming, 0) - np.maximum(receding, 0))
        / (np.maximum(looming, 0) + np.maximum(receding, 0) + 1e-9),
        size=np.array(SIZES)[pick],
        suppression=1 - size[:, -1] / np.maximum(size[np.arange(len(pick)), pick], 1e-9),
        tuning=tuning, sizes=size)


def kind(i):
    """Each neuron's type, by rules from the physiology (not fitted to any simulator): among
    cells that gratings drive (a response at least 0.3 of the strongest to spots or gratings),
    direction- then orientation-selective cells by the usual selectivity criterion of 0.3
    (Wang et al. 2010, J Neurosci 30:16573; Inayat et al. 2015, J Neurosci 35:7992); OFF-leaning
    cells answering looming more than receding (index > 0.3) as looming cells (Zhao, Liu & Cang
    2014, Neuron 84:202) if they also prefer the largest spot (an OFF cell whose surround
    suppresses large spots answers a looming disc too, as it covers the cell's centre); cells
    with a large field (a half-maximum radius of 16 px, a quarter of the picture's height, or
    more) as wide-field cells, as are cells answering both signs (|ON-OFF| < 0.3) that prefer
    spots over 8 px, while those that prefer spots of 8 px or less are small-object cells (Gale
    & Murphy 2014, J Neurosci 34:13458); the rest ON or OFF, transient when the sustained index
    is under 0.4."""
    types = []
    gratings = i["tuning"].max(1)
    driven = gratings >= 0.3 * np.maximum(gratings, i["sizes"].max(1))
    for n in range(len(i["y"])):
        if driven[n] and i["direction"][n] >= 0.3:
            types.append("direction")
        elif driven[n] and i["orientation"][n] >= 0.3:
            types.append("orient")
        elif i["on_off"][n] < 0 and i["looming"][n] > 0.3 and i["size"][n] == SIZES[-1]:
            types.append("looming")
        elif i["radius"][n] >= 16:
            types.append("wide")
        elif abs(i["on_off"][n]) < 0.3:
            types.append("small" if i["size"][n] <= 8 else "wide")
        else:
            sign = "on" if i["on_off"][n] > 0 else "off"
            types.append(sign + ("" if i["sustained"][n] >= 0.4 else "_tr"))
    return np.array(types)


def draw(i, types, path, truth=None):
    """Nothing; saves one panel per neuron: its direction tuning (polar) and its size tuning."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(types)
    columns = 9
    rows = -(-n // columns)
    figure = plt.figure(figsize=(columns * 1.6, rows * 1.9))
    angle = np.deg2rad(np.r_[DIRECTIONS, 0])
    for k in range(n):
        ax = figure.add_subplot(rows, columns, k + 1, projection="polar")
        tuning = i["tuning"][k] / max(i["tuning"][k].max(), 1e-9)
        ax.plot(angle, np.r_[tuning, tuning[0]], color="C0")
        sizes = i["sizes"][k] / max(i["sizes"][k].max(), 1e-9)  # size tuning on the radius
        ax.plot(np.deg2rad(np.linspace(200, 340, 5)), sizes, "o-", color="C3", ms=2, lw=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylim(0, 1.05)
        title = f"{k}: {types[k]}" + (f"\n({truth[k]})" if truth is not None else "")
        color = "k" if truth is None or truth[k] == types[k] else "C3"
        ax.set_title(title, fontsize=7, color=color)
    figure.suptitle("direction tuning (blue, polar) and size tuning 2-32 px (red, lower arc); "
                    "type (true type)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main(args):
    twinned = args[:1] == ["--twin"]
    if len(args) not in (2 + twinned, 3 + twinned) or twinned and not args[1].isdigit():
        sys.exit(__doc__)
    if twinned:  # the simulator's own neurons, from their true rates
        seed, args = int(args[1]), args[2:]
        respond = lambda pictures: twin(seed, np.round(255 * np.clip(pictures, 0, 1)) / 255)
    else:
        try:
            with np.load(args[0], allow_pickle=False) as z:
                w = predict.valid(z)
        except (OSError, ValueError) as error:
            sys.exit(f"insilico.py: {args[0]}: {error}")
        respond = lambda pictures: predict.predict(frames(pictures), w)
        args = args[1:]
    i = indices(respond)
    types = kind(i)
    print("neuron   y    x radius   far on_off sustained  dsi  osi pref_deg looming size suppr"
          "  type")
    for n, t in enumerate(types):
        print(f"{n:6d} {i['y'][n]:4.0f} {i['x'][n]:4.0f} {i['radius'][n]:6.0f} {i['far'][n]:5.3f} "
              f"{i['on_off'][n]:6.2f} "
              f"{i['sustained'][n]:9.2f} {i['direction'][n]:4.2f} {i['orientation'][n]:4.2f} "
              f"{i['preferred'][n]:8.0f} {i['looming'][n]:7.2f} {i['size'][n]:4d} "
              f"{i['suppression'][n]:5.2f}  {t}")
    print(f"median response to flashes over 40 px from the centre, over the peak: "
          f"{np.median(i['far']):.3f}")
    truth = None
    if len(args) == 2:
        with np.load(args[1]) as held:
            truth = held["kind"]
        print(f"agreement with the true types: {(types == truth).mean():.2f} "
              f"({(types == truth).sum()} of {len(truth)})")
        names = list(dict.fromkeys(truth))
        found = names + sorted(set(types) - set(names))
        print("true \\ typed " + " ".join(f"{name[:7]:>7}" for name in found))
        for name in names:
            row = [((truth == name) & (types == f)).sum() for f in found]
            print(f"{name:<12} " + " ".join(f"{count:7d}" for count in row))
    draw(i, types, args[0], truth)
    print(f"wrote {args[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
