"""The model people would pick today, trained on the same stand-in as predict.py and scored the same
way: a convolutional core with a Gaussian readout per neuron, the Sensorium 2022 baseline family.

    python bench/cnn.py DATADIR [--minutes M] [--seed S] [--epochs E] [--save PRED.npy]
                        [--typing TYPING.npy]  # torch

DATADIR is from bench/standin.py (or ../shared/standin.py): standin.mat in the competition's layout
(clip = segment * 6 + repeat), heldout_movie.npy and heldout.npz. On the CPU:
  input    the picture rows 16-79 as 2 x 2 pixel means (32 x 64), z-scored with the training movie's
           mean and standard deviation; the last 12 frames are the input channels, the clip's first
           frame repeated before its start
  core     3 convolutions (kernels 7, 5, 5; 32 channels; same padding, no bias), each followed by
           batch norm and ELU
  readout  per neuron a position in the core's map, sampled bilinearly and jittered by a learned
           Gaussian while training, a weight per core channel and a bias; ELU + 1 (Lurz et al. 2021,
           ICLR, "Generalization in data-driven models of primary visual cortex")
  training Poisson loss on each segment's trial-averaged counts (the same loss as on every trial,
           since a segment's repeats show the same frames); Adam at 1e-3, batches of 64 frames; a
           Laplacian smoothness penalty on the first layer's kernels and L1 on the readout weights;
           8 whole training segments (all their repeats) held out for validation; the learning rate
           times 0.3 when validation has not improved for 3 epochs, stopping after the third cut;
           the best weights restored at the end; a wall-clock cap of M minutes (default 15)
--typing also predicts the typing set (typing_movie.npy from bench/standin.py) and writes it there,
for bench/score.py TYPING.npy DATADIR/typing.npz.
Prints one line (training time, epochs, whether the cap was reached, peak memory, held-out scores
from bench/score.py) and score.py's line for each cell type when heldout.npz names them.
Deterministic for a seed on one machine when the same number of epochs runs: the wall-clock cap can
stop a run on a busier machine at an earlier epoch, so the line gives the epochs and --epochs E
repeats a run exactly. Other machines, thread counts and torch versions round differently.
"""
import argparse, os, resource, sys, time

import h5py
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score  # noqa: E402

FRAMES_IN = 12  # frames of history as input channels
HELD = 8  # training segments held out for validation


def shrink(movie):
    """(clips, frames, 32, 64) float32 2 x 2 pixel means of the picture rows 16-79."""
    picture = np.asarray(movie, np.float32).reshape(len(movie), -1, 96, 128)[:, :, 16:80]
    return picture.reshape(*picture.shape[:2], 32, 2, 64, 2).mean((3, 5))


def padded(clips):
    """(clips, 11 + frames, 32, 64): each clip after 11 copies of its first frame."""
    return np.concatenate([clips[:, :1].repeat(FRAMES_IN - 1, 1), clips], 1)


def windows(padded, clip, frame):
    """(samples, 12, 32, 64) inputs: the last 12 frames up to each (clip, frame)."""
    return padded[clip[:, None], frame[:, None] + np.arange(FRAMES_IN)]


class Network(nn.Module):
    """Convolutional core and Gaussian readout: (batch, 12, 32, 64) -> (batch, neurons)."""

    def __init__(self, neurons, channels=32):
        super().__init__()
        layers, width = [], FRAMES_IN
        for kernel in (7, 5, 5):
            layers += [nn.Conv2d(width, channels, kernel, padding=kernel // 2, bias=False),
                       nn.BatchNorm2d(channels), nn.ELU()]
            width = channels
        self.core = nn.Sequential(*layers)
        self.mu = nn.Parameter(torch.empty(neurons, 2).uniform_(-0.5, 0.5))  # positions in [-1, 1]
        self.sigma = nn.Parameter(torch.full((neurons, 1), 0.2))  # jitter of the positions
        self.weight = nn.Parameter(torch.full((channels, neurons), 1 / channels))
        self.bias = nn.Parameter(torch.zeros(neurons))

    def forward(self, x):
        maps = self.core(x)  # (batch, channels, 32, 64)
        grid = self.mu.expand(len(x), -1, -1)  # (batch, neurons, 2)
        if self.training:  # sample each neuron's position around its mean
            grid = grid + self.sigma * torch.randn_like(grid)
        sampled = F.grid_sample(maps, grid.clamp(-1, 1)[:, :, None], align_corners=False)
        return F.elu((sampled[..., 0] * self.weight).sum(1) + self.bias) + 1  # (batch, neurons)

    def penalty(self):
        """Laplacian smoothness of the first layer's kernels and L1 of the readout weights."""
        kernels = self.core[0].weight.reshape(-1, 1, 7, 7)
        laplace = torch.tensor([[0.0, -1, 0], [-1, 4, -1], [0, -1, 0]])[None, None]
        smooth = F.conv2d(kernels, laplace).pow(2).sum() / kernels.pow(2).sum()
        return 1e-2 * smooth + 1e-4 * self.weight.abs().sum() / self.weight.shape[1]


def poisson(rates, counts):
    """Mean Poisson negative log-likelihood, without the counts' own term."""
    return (rates - counts * torch.log(rates + 1e-8)).mean()


def predict(network, clips, batch=150):
    """(clips, frames, neurons) float64 rates of the network, in evaluation mode, for normalised
    clips (clips, frames, 32, 64)."""
    network.eval()
    pad, index = padded(clips), np.indices(clips.shape[:2]).reshape(2, -1)
    with torch.no_grad():
        rates = [network(torch.from_numpy(windows(pad, *index[:, i:i + batch]))).numpy()
                 for i in range(0, index.shape[1], batch)]
    return np.concatenate(rates).reshape(*clips.shape[:2], -1).astype(np.float64)


def train(clips, counts, seed, minutes, epochs, log=print):
    """The network trained on normalised clips (segments, frames, 32, 64) and their mean counts
    (segments, frames, neurons), validated on HELD segments, and a summary of the training."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    held = rng.choice(len(clips), max(min(HELD, len(clips) // 4), 1), replace=False)
    fit = np.setdiff1d(np.arange(len(clips)), held)
    pad, index = padded(clips[fit]), np.indices(counts[fit].shape[:2]).reshape(2, -1)
    y = counts[fit].reshape(-1, counts.shape[-1])  # (samples, neurons), in the order of index
    network = Network(counts.shape[-1])
    with torch.no_grad():  # start each neuron's bias at its mean rate
        network.bias += torch.log(torch.expm1(torch.from_numpy(y.mean(0)).float().clamp(1e-3)))
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.3, patience=3)
    best, best_state, epoch, cuts, capped, losses = np.inf, None, 0, 0, False, []
    start = time.time()
    while epoch < epochs and cuts < 3:
        if time.time() - start > 60 * minutes:
            capped = True
            break
        network.train()
        order, total = rng.permutation(len(y)), 0.0
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            inputs = torch.from_numpy(windows(pad, *index[:, batch]))
            loss = poisson(network(inputs), torch.from_numpy(y[batch]))
            optimiser.zero_grad()
            (loss + network.penalty()).backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / len(y))
        valid = poisson(torch.from_numpy(predict(network, clips[held])),
                        torch.from_numpy(counts[held].astype(np.float64))).item()
        if valid < best:
            best, best_state = valid, {k: v.clone() for k, v in network.state_dict().items()}
        lr = optimiser.param_groups[0]["lr"]
        schedule.step(valid)
        cuts += optimiser.param_groups[0]["lr"] < lr
        epoch += 1
        log(f"epoch {epoch}: training loss {losses[-1]:.4f}, validation {valid:.4f}, "
            f"{time.time() - start:.0f} s")
    network.load_state_dict(best_state)
    return network, dict(train_s=time.time() - start, epochs=epoch, capped=capped, losses=losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datadir")
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10**6, help="stop after this many epochs")
    parser.add_argument("--save", help="also write the held-out prediction to this .npy file")
    parser.add_argument("--typing", help="also write the typing set's prediction to this file")
    args = parser.parse_args()
    with h5py.File(os.path.join(args.datadir, "standin.mat"), "r") as f:
        movie, counts = f["trainingmovie_mini"], f["FRhist_tr"][:]
        segments = len(movie) // 6
        assert (movie[5, 0] == movie[0, 0]).all(), "need clip = segment * 6 + repeat"
        clips = np.concatenate([shrink(movie[6 * s][None]) for s in range(segments)])  # once each
    mean, std = clips.mean(), clips.std()
    counts = counts.reshape(segments, 6, *counts.shape[1:]).mean(1).astype(np.float32)
    network, summary = train((clips - mean) / std, counts, args.seed, args.minutes, args.epochs,
                             log=lambda text: print(text, file=sys.stderr))
    held_movie = lambda: np.load(os.path.join(args.datadir, "heldout_movie.npy"), mmap_mode="r")
    pred = np.concatenate([predict(network, (shrink(held_movie()[i][None]) - mean) / std)
                           for i in range(len(held_movie()))])  # every clip, each mapped anew
    if args.save:
        np.save(args.save, pred)
    if args.typing:
        typing = np.load(os.path.join(args.datadir, "typing_movie.npy"), mmap_mode="r")
        np.save(args.typing, np.concatenate([predict(network, (shrink(clip[None]) - mean) / std)
                                             for clip in typing]))
    with np.load(os.path.join(args.datadir, "heldout.npz")) as held:
        result = score.scores(pred, held["counts"], held["rate"])
        again = score.resampled(pred, held["counts"], held["rate"])
        kinds = held["kind"] if "kind" in held else np.array(["all"] * pred.shape[-1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    params = sum(p.numel() for p in network.parameters())
    print(f"train_s={summary['train_s']:.0f} epochs={summary['epochs']} "
          f"capped={summary['capped']} peak_mb={peak} parameters={params} "
          f"{score.line('all', result, again, np.ones(len(kinds), bool))[11:]}")
    for name in dict.fromkeys(kinds) if "all" not in kinds else []:
        print(score.line(name, result, again, kinds == name))


if __name__ == "__main__":
    main()
