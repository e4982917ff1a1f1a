"""Draw the spatial receptive field that predict.py learns for one neuron of each cell type, beside
the simulator's true field.

    python bench/fields.py DATADIR OUT.png     # DATADIR from bench/standin.py

Fits predict.py on DATADIR/standin.mat in memory (the shipped weights.npz is not touched), then
maps each neuron's ridge weights in its strongest lag window back through the principal axes to
its weight on each 8 x 8 block's six local channels, or for orientation- and direction-selective
cells on the eight oriented channels of each 2 x 2 blocks. ON and OFF cells are drawn signed, ON
channels minus OFF channels (red brighter, blue darker); the other types by the size of their
weights over the channels, as their true fields are drawn by the size of the envelope.
"""
import os, sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import predict  # noqa: E402

data, out = sys.argv[1:3]
model = predict.fit(os.path.join(data, "standin.mat"))
W = model["W"].reshape(len(predict.LAGS), sum(predict.COMPONENTS), -1)  # (lags, pcs, neurons)
strongest = (W**2).sum(1).argmax(0)  # each neuron's strongest lag window
W = W[strongest, :, np.arange(W.shape[2])].T  # (components, neurons)
channels = (model["axes"][:768] @ W).reshape(6, 8, 16, -1)  # (local kind, rows, columns, neurons)
oriented = (model["axes"][768:] @ W).reshape(8, 4, 8, -1)  # (oriented kind, 2 x 2 block rows, ...)
with np.load(os.path.join(data, "heldout.npz")) as held:
    kinds, fields = held["kind"], held["field"]
picked = [list(kinds).index(kind) for kind in dict.fromkeys(kinds)]  # the first of each type
figure, axes = plt.subplots(2, len(picked), figsize=(1.9 * len(picked), 2.4))
for column, n in enumerate(picked):
    signed = kinds[n] in ("on", "off", "on_tr", "off_tr")
    learned = channels[0, ..., n] - channels[1, ..., n] if signed else np.sqrt(
        (channels[..., n] ** 2).sum(0))
    if kinds[n] in ("orient", "direction"):  # their weights lie mostly on the oriented channels
        learned = np.kron(np.sqrt((oriented[..., n] ** 2).sum(0)), np.ones((2, 2)))
    true = fields[n] if signed else np.abs(fields[n])
    for row, image in enumerate([true, np.kron(learned, np.ones((8, 8)))]):
        limit = np.abs(image).max()
        axes[row, column].imshow(image, cmap="RdBu_r" if signed else "gray_r",
                                 vmin=-limit if signed else 0, vmax=limit)
        axes[row, column].set_xticks([]), axes[row, column].set_yticks([])
    axes[0, column].set_title(f"{kinds[n]} #{n}", fontsize=9)
axes[0, 0].set_ylabel("simulated", fontsize=9)
axes[1, 0].set_ylabel("learned", fontsize=9)
figure.tight_layout()
figure.savefig(out, dpi=80)
print(f"wrote {out}")
