"""Planted neurons fitted from movies of four kinds, then scored on new frames.

    python bench/planted.py [--small] [--seed N]

Physiologists map receptive fields with noise, so a fit must learn from noise as well as from
natural movies. For each kind of movie, planted linear-nonlinear neurons are simulated, fitted with
predict.fit, and predicted on new segments; the correlation of the prediction with the true rate
is printed per kind (1 is perfect):
  white      every pixel a new uniform grey level every frame
  block      16 x 16 pixel blocks, new every frame
  sparse     6 bright or dark 16 x 16 pixel squares on grey, new every frame
  natural    1/f noise drifting at a speed and direction of its own in each segment
Each kind has 6 neurons: ON and OFF, driven by the mean contrast of a square of 8, 16 or 32 px at
a random place, 1 to 4 frames late, at 0.5 exp(0.8 z) spikes per bin, z the drive over its
standard deviation, with Poisson counts. Data: 30 segments x 3 repeats x 150 frames, 10 new
segments to score (--small: 16 x 2 x 80 and 4, as in the tests).
"""
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import predict  # noqa: E402

KINDS = ("white", "block", "sparse", "natural")


def pictures(kind, rng, segments, frames):
    """(segments, frames, 64, 128) grey levels 0-255 of the picture, of one kind of movie."""
    if kind == "white":
        return rng.uniform(0, 255, (segments, frames, 64, 128))
    if kind == "block":
        return rng.uniform(0, 255, (segments, frames, 4, 8)).repeat(16, 2).repeat(16, 3)
    if kind == "sparse":
        grid = np.full((segments, frames, 4 * 8), 128.0)
        squares = rng.random((segments, frames, 4 * 8)).argsort(-1)[..., :6]  # 6 places a frame
        np.put_along_axis(grid, squares, rng.choice([0.0, 255.0], squares.shape), -1)
        return grid.reshape(segments, frames, 4, 8).repeat(16, 2).repeat(16, 3)
    movie = np.empty((segments, frames, 64, 128))
    fy, fx = np.fft.fftfreq(256)[:, None], np.fft.fftfreq(384)
    for s in range(segments):  # a 1/f image, panned at up to 2 px a frame
        spectrum = rng.normal(size=(256, 384)) + 1j * rng.normal(size=(256, 384))
        image = np.fft.ifft2(spectrum / np.maximum(np.hypot(fy, fx), 1 / 256)).real
        image = 128 + 60 * (image - image.mean()) / image.std()
        vy, vx = rng.uniform(-2, 2, 2)
        for t in range(frames):
            y, x = int(96 + vy * t) % 192, int(128 + vx * t) % 256
            movie[s, t] = image[y:y + 64, x:x + 128]
    return np.clip(movie, 0, 255)


def neurons(rng):
    """Each neuron's (sign, size in px, row, column, latency in frames)."""
    return [(sign, size, rng.integers(0, 64 - size + 1), rng.integers(0, 128 - size + 1),
             rng.integers(1, 5)) for sign in (1, -1) for size in (8, 16, 32)]


def drive(picture, cells):
    """(segments, frames, neurons) each neuron's late, signed mean contrast of its square."""
    contrast = picture / 127.5 - 1
    out = np.zeros(picture.shape[:2] + (len(cells),))
    for n, (sign, size, y, x, late) in enumerate(cells):
        out[:, late:, n] = sign * contrast[:, :-late, y:y + size, x:x + size].mean((2, 3))
    return out


def movie(picture):
    """(clips, frames, 12288) uint8 frames: the picture in its black letterbox."""
    frames = np.zeros(picture.shape[:2] + (96, 128), np.uint8)
    frames[:, :, 16:80] = picture.round()
    return frames.reshape(*picture.shape[:2], 12288)


def trial(kind, seed, segments, repeats, frames, held):
    """Mean correlation of predict's rates with the true rates of one kind's new segments."""
    rng = np.random.default_rng(seed)
    cells = neurons(rng)
    train, test = (pictures(kind, rng, n, frames) for n in (segments, held))
    scale = drive(train, cells).std((0, 1))  # each neuron's drive, over its standard deviation
    rate = [0.5 * np.exp(0.8 * drive(p, cells) / scale) for p in (train, test)]
    counts = rng.poisson(rate[0].repeat(repeats, 0))
    with tempfile.TemporaryDirectory() as folder:  # fitted as a user would: from an .npz
        data = os.path.join(folder, "data.npz")
        np.savez(data, movie=movie(train).repeat(repeats, 0), counts=counts)
        weights = predict.valid(predict.fit(data))
    rates = predict.predict(movie(test), weights)
    cc = [np.corrcoef(rates[..., n].ravel(), rate[1][..., n].ravel())[0, 1]
          for n in range(len(cells))]
    return float(np.mean(cc))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick check of the pipeline")
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args()
    size = (16, 2, 80, 4) if args.small else (30, 3, 150, 10)
    for kind in KINDS:
        print(f"{kind:8s} cc with the true rate {trial(kind, args.seed, *size):.3f}", flush=True)


if __name__ == "__main__":
    main()
