"""Score predicted spikes against held-out repeats, overall and per cell type.

    python bench/score.py PRED.npy HELDOUT.npz [OTHER.npy]

PRED.npy is (segments * repeats, frames, neurons) in the held-out clip order, or (segments, frames,
neurons). HELDOUT.npz is from bench/standin.py: counts (segments, repeats, frames, neurons), rate
(segments, frames, neurons) the true expected counts, kind (neurons,) each one's cell type (from
../shared/standin.py, which has no kind, only the line for all neurons). With OTHER.npy, a second
model's prediction, each line is followed by PRED minus OTHER, with the interval of that difference
over the same resamples: a difference whose interval holds 0 is within the noise of the held-out
segments. A HELDOUT.npz with stimulus (segments,), as typing.npz from bench/standin.py has, adds one
line per kind of stimulus, over the segments of that kind, with the mean predicted rate over the
mean true rate (rate=).

Prints one line for all neurons, then one per cell type, each averaged over its neurons, with a 95%
interval (2.5th to 97.5th percentile over 200 resamples of the held-out segments, drawn with
replacement; seeded, so a rerun prints the same):
  cc_norm   correlation with the trial-averaged counts divided by the largest correlation that
            trial-to-trial noise allows (Schoppe et al. 2016, Front Comput Neurosci 10:10), with
            signal power after Sahani & Linden (2003, NIPS 15); 1.0 is the best possible.
            Neurons whose signal power is under 5% of the variance of their trial average are
            left out, as too noisy to score.
  bits      single-trial Poisson log-likelihood gain over each neuron's mean rate, per spike
  cc_true   correlation with the true rate
"""
import sys

import warnings

import numpy as np

RESAMPLES = 200  # resamples of the held-out segments for each 95% interval


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


def summary(cc_norm, bits, cc_true, spikes, pick):
    """(cc_norm, bits per spike, cc_true) of the neurons picked."""
    bits_per_spike = (bits * spikes)[pick].sum() / max(spikes[pick].sum(), 1)  # weighted by spikes
    return np.nanmean(cc_norm[pick]), bits_per_spike, np.nanmean(cc_true[pick])


def resampled(pred, counts, rate, times=RESAMPLES, seed=0):
    """scores() for each of `times` resamples of the held-out segments, drawn with replacement."""
    pred = np.asarray(pred, np.float64)
    if pred.shape[0] == counts.shape[0] * counts.shape[1]:  # one prediction per clip: average
        pred = pred.reshape(counts.shape).mean(1)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, len(counts), len(counts)) for _ in range(times)]
    return [scores(pred[s], counts[s], rate[s]) for s in picks]


def line(name, result, again, pick, other=None, other_again=None):
    """One line of scores for the neurons picked, each with its 95% interval over the resamples;
    given another model's, the difference from it."""
    values = np.subtract(summary(*result, pick), summary(*other, pick) if other else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample may leave a type with no neuron to score
        tried = [np.subtract(summary(*r, pick), summary(*o, pick) if other else 0)
                 for r, o in zip(again, other_again or again)]
        low, high = np.nanpercentile(tried, [2.5, 97.5], 0)
    return f"{name:<10} neurons={pick.sum():<3} " + " ".join(
        f"{key}={value:.3f} [{a:.3f}, {b:.3f}]"
        for key, value, a, b in zip(("cc_norm", "bits_per_spike", "cc_true"), values, low, high))


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with np.load(sys.argv[2]) as held:
        counts, rate = held["counts"], held["rate"]
        kind = held["kind"] if "kind" in held.files else np.full(counts.shape[-1], "all")
        stimulus = held["stimulus"] if "stimulus" in held.files else []
    preds = [np.load(path) for path in sys.argv[1:2] + sys.argv[3:]]
    results = [(scores(p, counts, rate), resampled(p, counts, rate)) for p in preds]
    for name in ["all"] + [k for k in dict.fromkeys(kind) if k != "all"]:  # in order of appearance
        pick = kind == name if name != "all" else np.ones(len(kind), bool)
        print(line(name, *results[0], pick))
        if len(results) > 1:
            print(line("  - other", *results[0], pick, *results[1]))
    everyone = np.ones(len(kind), bool)
    for name in dict.fromkeys(stimulus):  # each kind of stimulus, over its segments
        clips = stimulus == name
        mine = [p.reshape(len(stimulus), -1, *p.shape[1:])[clips].reshape(-1, *p.shape[1:])
                for p in preds]  # the predictions of those segments, as given
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a neuron may be silent all through one kind
            found = [(scores(p, counts[clips], rate[clips]),
                      resampled(p, counts[clips], rate[clips])) for p in mine]
        ratio = np.mean(mine[0]) / rate[clips].mean()
        print(line(f"{name}", *found[0], everyone) + f" rate={ratio:.2f}")
        if len(found) > 1:
            print(line("  - other", *found[0], everyone, *found[1]))
