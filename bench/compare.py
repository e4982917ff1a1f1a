"""Draw models side by side per cell type: cc_norm and bits per spike, each with its 95% interval
over resamples of the held-out segments (as bench/score.py prints them).

    python bench/compare.py HELDOUT.npz OUT.png NAME=PRED.npy [NAME=PRED.npy ...]

HELDOUT.npz is from bench/standin.py; each PRED.npy is one model's held-out prediction, as
predict.py or `bench/cnn.py --save` writes it.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import score


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    with np.load(sys.argv[1]) as held:
        counts, rate, kind = held["counts"], held["rate"], held["kind"]
    names = ["all"] + list(dict.fromkeys(kind))
    picks = [np.ones(len(kind), bool)] + [kind == name for name in names[1:]]
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    models = [argument.split("=", 1) for argument in sys.argv[3:]]
    for m, (label, path) in enumerate(models):
        pred = np.load(path)
        result, again = score.scores(pred, counts, rate), score.resampled(pred, counts, rate)
        values = np.array([score.summary(*result, pick)[:2] for pick in picks])  # (types, 2)
        tried = np.array([[score.summary(*r, pick)[:2] for pick in picks] for r in again])
        low, high = np.nanpercentile(tried, [2.5, 97.5], 0)
        x = np.arange(len(names)) + (m - (len(models) - 1) / 2) * 0.8 / len(models)
        for k, ax in enumerate(axes):
            ax.errorbar(x, values[:, k], yerr=[values[:, k] - low[:, k], high[:, k] - values[:, k]],
                        fmt="o", capsize=2, label=label)
    for ax, title in zip(axes, ["cc_norm", "bits per spike"]):
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_title(title)
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    figure.suptitle("held-out scores per cell type, 95% intervals over resampled segments "
                    "(simulated neurons)", fontsize=10)
    figure.tight_layout()
    figure.savefig(sys.argv[2], dpi=90)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
