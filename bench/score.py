"""Score predicted spikes against held-out repeats, overall and per cell type.

    python bench/score.py PRED.npy HELDOUT.npz

PRED.npy is (segments * repeats, frames, neurons) in the held-out clip order, or (segments, frames,
neurons). HELDOUT.npz is from bench/standin.py: counts (segments, repeats, frames, neurons), rate
(segments, frames, neurons) the true expected counts, kind (neurons,) each one's cell type.

Prints one line for all neurons, then one per cell type, each averaged over its neurons:
  cc_norm   correlation with the trial-averaged counts divided by the largest correlation that
            trial-to-trial noise allows (Schoppe et al. 2016, Front Comput Neurosci 10:10), with
            signal power after Sahani & Linden (2003, NIPS 15); 1.0 is the best possible.
            Neurons whose signal power is under 5% of the variance of their trial average are
            left out, as too noisy to score.
  bits      single-trial Poisson log-likelihood gain over each neuron's mean rate, per spike
  cc_true   correlation with the true rate
"""
import sys

import numpy as np


def scores(pred, counts, rate):
    """(cc_norm, bits, cc_true) per neuron, NaN where a neuron can't be scored."""
    segments, repeats, frames, neurons = counts.shape
    pred = np.asarray(pred, np.float64)
    if pred.shape == (segments * repeats, frames, neurons):
        pred = pred.reshape(segments, repeats, frames, neurons).mean(1)  # repeats are identical
    if pred.shape != (segments, frames, neurons) or not ((pred >= 0) & (pred < np.inf)).all():
        raise SystemExit(f"score.py: need finite rates >= 0 shaped like the counts {counts.shape}")
    trials = counts.transpose(1, 0, 2, 3).reshape(repeats, -1, neurons)  # (repeats, time, neurons)
    p, average, true = pred.reshape(-1, neurons), trials.mean(0), rate.reshape(-1, neurons)
    # signal power = (var(sum of trials) - sum(var of each trial)) / (R (R - 1))
    signal = (trials.sum(0).var(0) - trials.var(1).sum(0)) / (repeats * (repeats - 1))
    cov = ((p - p.mean(0)) * (average - average.mean(0))).mean(0)
    good = (signal > 0.05 * average.var(0)) & (p.var(0) > 0)
    cc_norm = np.where(good, cov / np.sqrt(p.var(0) * np.abs(signal) + 1e-30), np.nan)
    mean = np.maximum(trials.mean((0, 1)), 1e-9)
    gain = (trials * np.log(np.maximum(p, 1e-9) / mean) - p + mean).sum((0, 1))  # log-likelihood
    bits = gain / np.maximum(trials.sum((0, 1)), 1) / np.log(2)
    cc_true = [np.corrcoef(a, b)[0, 1] if a.std() > 0 else np.nan for a, b in zip(p.T, true.T)]
    return cc_norm, bits, np.array(cc_true), trials.sum((0, 1))


def line(name, cc_norm, bits, cc_true, spikes, pick):
    """One line of scores for the neurons picked."""
    bits_per_spike = (bits * spikes)[pick].sum() / spikes[pick].sum()  # weighted by spikes
    return (f"{name:<10} neurons={pick.sum():<3} cc_norm={np.nanmean(cc_norm[pick]):.3f} "
            f"bits_per_spike={bits_per_spike:.3f} cc_true={np.nanmean(cc_true[pick]):.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with np.load(sys.argv[2]) as held:
        counts, rate, kind = held["counts"], held["rate"], held["kind"]
    result = scores(np.load(sys.argv[1]), counts, rate)
    print(line("all", *result, np.ones(len(kind), bool)))
    for name in dict.fromkeys(kind):  # in the order of first appearance
        print(line(name, *result, kind == name))
