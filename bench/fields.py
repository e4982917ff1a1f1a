"""Draw the spatial receptive field of every neuron in a weights.npz from predict.py, beside the
simulator's true field when there is one.

    python bench/fields.py WEIGHTS.npz OUT.png [HELDOUT.npz]

WEIGHTS.npz is any fit of predict.py: the shipped one, one made with `python predict.py --fit` on
the competition's file, or one on a stand-in. Each neuron's ridge weights are split into the groups
of channels, of which four are drawn (local, oriented, motion, small-object); in each the weights
of the strongest window of lags are mapped back through the principal axes to the channels, and
the group on which the neuron puts the most weight, relative to the other neurons (its weights'
norm over the median norm), is drawn:
  ON/OFF            local, signed: ON minus OFF channels over the 8 x 16 blocks of 8 x 8 pixels
                    (red brighter, blue darker), when these outweigh the other local channels
  transient/energy  local otherwise: the size of the weights on the brightening, darkening and
                    energy channels of each block
  oriented          the size of the weights on the 4 oriented channels of each 2 x 2 blocks
  motion            the size of the weights on the 16 motion-energy channels (8 filters, 2 signs)
                    of each 2 x 2 blocks
  small             the size of the weights on the small-object channel of each block
With HELDOUT.npz from bench/standin.py (kind and field), each learned field is drawn below the
true one (signed for ON and OFF cells, else its envelope) and titled with the neuron's cell type.
"""
import os, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import predict  # noqa: E402


def fields(weights):
    """(neurons, 64, 128) learned fields over the picture's pixels, and each one's group name."""
    W, axes, start, drawn = weights["W"], weights["axes"], 0, []
    for rows, cols, _, lags in predict.GROUPS:
        k = cols.stop - cols.start
        w = W[start:start + len(lags) * k].reshape(len(lags), k, -1)  # (lags, components, neurons)
        start += len(lags) * k
        strongest = (w**2).sum(1).argmax(0)  # each neuron's strongest window of lags
        channels = axes[rows, cols] @ w[strongest, :, np.arange(w.shape[2])].T  # (channels, n)
        norm = np.sqrt((w**2).sum((0, 1)))  # (neurons,)
        drawn.append((norm / np.median(norm), channels))
    drawn = [drawn[g] for g in (0, 1, 4, 5)]  # not the plain, adapted or looming groups
    (_, local), (_, oriented), (_, moving), (_, small) = drawn
    local, oriented = local.reshape(6, 8, 16, -1), oriented.reshape(4, 4, 8, -1)
    moving = moving.reshape(8, 4, 2, 8, -1).transpose(0, 2, 1, 3, 4).reshape(16, 4, 8, -1)
    size = lambda a: np.sqrt((a**2).sum(0))  # over the kinds of channel
    coarse = lambda a: np.kron(size(a), np.ones((2, 2, 1)))  # 4 x 8 places drawn on 8 x 16
    maps = [local[0] - local[1], size(local[2:]), coarse(oriented), coarse(moving),
            np.abs(small).reshape(8, 16, -1)]  # each (8, 16, neurons)
    group = np.argmax([weight for weight, _ in drawn], 0)  # the group weighted most, for a neuron
    group += (group > 0) + ((group == 0) & ((maps[0]**2).sum((0, 1)) < (maps[1]**2).sum((0, 1))))
    picked = np.stack([maps[g][..., n] for n, g in enumerate(group)])  # (neurons, 8, 16)
    names = np.array(["ON/OFF", "transient/energy", "oriented", "motion", "small"])
    return np.kron(picked, np.ones((1, 8, 8))), names[group]


def main():
    with np.load(sys.argv[1]) as z:
        learned, groups = fields(z)
    truth, kinds = None, groups
    if len(sys.argv) > 3:
        with np.load(sys.argv[3]) as held:
            truth, kinds = held["field"], held["kind"]
    columns = 9
    rows = -(-len(learned) // columns) * (1 if truth is None else 2)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 0.95 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for n, image in enumerate(learned):
        row, column = divmod(n, columns)
        images = [image] if truth is None else [truth[n], image]
        for k, picture in enumerate(images):
            signed = groups[n] == "ON/OFF"
            if truth is not None and k == 0:  # the true field: signed for ON and OFF cells only
                signed = kinds[n] in ("on", "off", "on_tr", "off_tr")
                picture = picture if signed else np.abs(picture)
            limit = np.abs(picture).max() + 1e-12
            low = -limit if signed else picture.min() if k == len(images) - 1 else 0
            ax = axes[row * len(images) + k, column]
            ax.imshow(picture, cmap="RdBu_r" if signed else "gray_r", vmin=low, vmax=limit)
        title = f"#{n} {kinds[n]}" + ("" if truth is None else f" ({groups[n]})")
        axes[row * len(images), column].set_title(title, fontsize=7)
    figure.tight_layout(pad=0.3)
    figure.savefig(sys.argv[2], dpi=60)
    print(f"wrote {sys.argv[2]}: {len(learned)} neurons")


if __name__ == "__main__":
    main()
