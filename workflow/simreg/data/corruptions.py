"""The 15 common corruptions of CIFAR-10-C (Hendrycks & Dietterich 2019), generated with the
constants of Hendrycks' CIFAR script.

Every function here takes a batch of uint8 images (N, H, W, C), C = 1 or 3, any size, a
severity 1-5 and a ``numpy.random.Generator``, and returns uint8 images of the same shape.
The constants are those of ``make_cifar_c.py`` in hendrycks/robustness
(``ImageNet-C/create_c/make_cifar_c.py``), NOT those of ImageNet-C (``make_imagenet_c.py``),
which the ``imagecorruptions`` packages use: CIFAR-10-C's Gaussian-noise σ is 0.04-0.10 on
[0, 1] images, ImageNet-C's 0.08-0.38. :data:`CONSTANTS` lists them, and every generated file
records them.

The code is ours (numpy, scipy, PIL). Where the CIFAR script calls OpenCV, scikit-image or
ImageMagick, we compute the same operation; docs/choices.md ("Common corruptions") lists
where we differ: ImageMagick's motion blur is re-implemented from its definition, the frost
photographs are replaced by a generated texture, and images that are not 32x32 or have one
channel are handled as written below.

Like the script, a float result is truncated to uint8 (``np.uint8(x)``), not rounded.
"""

from __future__ import annotations

import functools
import io
import json
import math

import numpy as np
from scipy import ndimage

# The 15 corruptions of the benchmark, in CIFAR-10-C's file names and the paper's groups
# (App. 7.10: low, medium and high frequency).
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)
FREQUENCY_GROUPS = {
    "low": ("snow", "frost", "fog", "brightness", "contrast"),
    "medium": ("motion_blur", "zoom_blur", "defocus_blur", "glass_blur", "elastic_transform",
               "jpeg_compression", "pixelate"),
    "high": ("gaussian_noise", "shot_noise", "impulse_noise"),
}
GROUP_OF = {name: group for group, names in FREQUENCY_GROUPS.items() for name in names}
SEVERITIES = (1, 2, 3, 4, 5)
SOURCE_SCRIPT = "hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py"

# make_cifar_c.py's constants, one entry per severity 1-5.
CONSTANTS = {
    "gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],          # σ on [0, 1]
    "shot_noise": [500, 250, 100, 75, 50],                     # Poisson rate per unit intensity
    "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07],           # salt-and-pepper amount
    "defocus_blur": [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],  # disk radius, alias σ
    "glass_blur": [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],  # σ, δ, iterations
    "motion_blur": [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],  # radius, σ; angle U(-45, 45)
    "zoom_blur": [(1.0, 1.06), (1.0, 1.11), (1.0, 1.16), (1.0, 1.21), (1.0, 1.26)],  # np.arange(a, b, 0.01)
    "snow": [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],  # loc, scale, zoom, threshold, radius, σ, blend
    "frost": [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],  # image, frost weights
    "fog": [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],  # strength, wibble decay
    "brightness": [0.05, 0.1, 0.15, 0.2, 0.3],                 # added to HSV value
    "contrast": [0.75, 0.5, 0.4, 0.3, 0.15],                   # factor around the channel mean
    "elastic_transform": [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                          (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],  # × image size: α, σ, affine
    "pixelate": [0.95, 0.9, 0.85, 0.75, 0.65],                 # downscale factor (box)
    "jpeg_compression": [80, 65, 58, 50, 40],                  # JPEG quality
}
ZOOM_STEP = 0.01


def constants_json() -> str:
    return json.dumps({"script": SOURCE_SCRIPT, "constants": CONSTANTS}, sort_keys=True)


# ---- helpers -------------------------------------------------------------------------------
def _unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 as the script stores them: clip, ×255, truncate."""
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _gray(x: np.ndarray) -> np.ndarray:
    """Luma of float NHWC images (OpenCV's RGB2GRAY weights), (N, H, W, 1); C = 1 as is."""
    if x.shape[-1] == 1:
        return x
    return (0.299 * x[..., :1] + 0.587 * x[..., 1:2] + 0.114 * x[..., 2:3]).astype(x.dtype)


def _gaussian(x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0):
    """scikit-image's ``gaussian(x, sigma, multichannel=True)`` on each image of a batch."""
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode=mode, truncate=truncate)


def _zoom_matrix(n_in: int, factor: float) -> np.ndarray:
    """(round(n_in · factor), n_in) weights of scipy.ndimage.zoom's linear interpolation
    along one axis (order 1, grid_mode False: the end samples map onto each other)."""
    n_out = int(round(n_in * factor))
    position = np.arange(n_out) * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    low = np.clip(np.floor(position).astype(int), 0, n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = position - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    return matrix


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom (bilinear) the centre of each image by ``factor`` and crop back to its size (the
    script's ``clipped_zoom`` with scipy's ``zoom(order=1)``, per axis for non-square
    images; computed as two interpolation matrices)."""
    _, h, w, _ = x.shape
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    rows, cols = _zoom_matrix(ch, factor), _zoom_matrix(cw, factor)
    trim_top, trim_left = (len(rows) - h) // 2, (len(cols) - w) // 2
    rows, cols = rows[trim_top:trim_top + h], cols[trim_left:trim_left + w]
    crop = np.moveaxis(x[:, top:top + ch, left:left + cw], 3, 1)  # (N, C, ch, cw)
    zoomed = rows.astype(x.dtype) @ crop @ cols.T.astype(x.dtype)
    return np.ascontiguousarray(np.moveaxis(zoomed, 1, 3))


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """The script's anti-aliased disk kernel: a binary disk on a 17x17 grid (radius <= 8),
    normalized, then blurred by a 3x3 Gaussian of σ ``alias_blur`` (OpenCV's GaussianBlur);
    cropped here to where it is not zero."""
    half = 8 if radius <= 8 else int(radius)
    grid = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    size = 3 if radius <= 8 else 5
    taps = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * alias_blur**2))
    taps /= taps.sum()
    kernel = ndimage.correlate1d(ndimage.correlate1d(disk, taps, axis=0, mode="mirror"),
                                 taps, axis=1, mode="mirror")
    rows, cols = np.nonzero(kernel)
    return kernel[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's MotionBlurImage, per image at its own angle (degrees): a one-sided
    Gaussian of ``width = 2 ceil(radius) + 1`` taps, weight exp(-i²/2σ²) normalized, tap i
    reading the pixel at (x + round(i cos a), y + round(i sin a)), edge pixels repeated
    outside the image (ImageMagick's default virtual-pixel method)."""
    n, h, w, _ = x.shape
    width = 2 * math.ceil(radius) + 1
    taps = np.exp(-(np.arange(width) ** 2) / (2.0 * sigma**2))
    taps /= taps.sum()
    rad = np.deg2rad(angles)
    i = np.arange(width)[None, :]
    # ImageMagick rounds with ceil(v - 0.5)
    dx = np.ceil(i * np.cos(rad)[:, None] - 0.5).astype(np.int64)  # (N, width)
    dy = np.ceil(i * np.sin(rad)[:, None] - 0.5).astype(np.int64)
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    index = np.arange(n)[:, None, None]
    out = np.zeros(x.shape, dtype=np.float64)
    for k in range(width):
        r = np.clip(rows + dy[:, k, None, None], 0, h - 1)
        c = np.clip(cols + dx[:, k, None, None], 0, w - 1)
        out += taps[k] * x[index, r, c]
    return out


def _plasma(n: int, size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height maps (the script's ``plasma_fractal``), (n, size, size) in
    [0, 1]; ``size`` a power of two. As in the script, the random term of each step is
    ``wibble * U(-wibble, wibble)``, wibble starting at 100 and divided by ``decay``."""
    maps = np.zeros((n, size, size), dtype=np.float64)
    step, wibble = size, 100.0

    def wibbled_mean(array):
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=1)
        square = square + np.roll(square, -1, axis=2)
        maps[:, half:size:step, half:size:step] = wibbled_mean(square)
        centres = maps[:, half:size:step, half:size:step]
        corners = maps[:, 0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2)
        maps[:, 0:size:step, half:size:step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1)
        maps[:, half:size:step, 0:size:step] = wibbled_mean(top)
        step //= 2
        wibble /= decay
    maps -= maps.min(axis=(1, 2), keepdims=True)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def _power_of_two(n: int) -> int:
    return 1 << max(1, (n - 1).bit_length())


# ---- the corruptions -----------------------------------------------------------------------
def gaussian_noise(images, severity, rng):
    x = _unit(images)
    return _to_uint8(x + rng.normal(size=x.shape, scale=CONSTANTS["gaussian_noise"][severity - 1]))


def shot_noise(images, severity, rng):
    c = CONSTANTS["shot_noise"][severity - 1]
    return _to_uint8(rng.poisson(_unit(images) * c) / c)


def impulse_noise(images, severity, rng):
    """scikit-image's 's&p' noise: each value (each channel) replaced with probability
    ``amount``, by 0 or 1 with equal probability."""
    x = _unit(images)
    amount = CONSTANTS["impulse_noise"][severity - 1]
    flipped = rng.random(x.shape) < amount
    salted = rng.random(x.shape) < 0.5
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return _to_uint8(x)


def defocus_blur(images, severity, rng):
    radius, alias_blur = CONSTANTS["defocus_blur"][severity - 1]
    kernel = _disk(radius, alias_blur)[None, :, :, None]
    return _to_uint8(ndimage.correlate(_unit(images), kernel, mode="mirror"))


def glass_blur(images, severity, rng):
    """Blur, then for each pixel from the bottom-right inwards take the value of a neighbour
    at a random offset in [-δ, δ) (the script's ``randint(-δ, δ)``), then blur again.

    The script writes a swap, ``x[h, w], x[h', w'] = x[h', w'], x[h, w]``, but on numpy
    arrays the right-hand side holds views, so the neighbour keeps its value: a copy, not a
    swap. CIFAR-10-C was made that way, and so is this."""
    sigma, delta, iterations = CONSTANTS["glass_blur"][severity - 1]
    n, h, w, _ = images.shape
    x = (_gaussian(_unit(images), sigma) * 255).astype(np.uint8)
    index = np.arange(n)
    for _ in range(iterations):
        for row in range(h - delta, delta, -1):
            for col in range(w - delta, delta, -1):
                dx, dy = rng.integers(-delta, delta, size=(2, n))
                x[index, row, col] = x[index, row + dy, col + dx]
    return _to_uint8(_gaussian(x / 255.0, sigma))


def motion_blur(images, severity, rng):
    radius, sigma = CONSTANTS["motion_blur"][severity - 1]
    angles = rng.uniform(-45, 45, size=len(images))
    blurred = _motion_blur(images.astype(np.float64), radius, sigma, angles)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)  # ImageMagick rounds to 8 bits


def zoom_blur(images, severity, rng):
    start, stop = CONSTANTS["zoom_blur"][severity - 1]
    x = _unit(images)
    out = np.zeros_like(x)
    factors = np.arange(start, stop, ZOOM_STEP)
    for factor in factors:
        out += _clipped_zoom(x, float(factor))
    return _to_uint8((x + out) / (len(factors) + 1))


def snow(images, severity, rng):
    loc, scale, zoom, threshold, radius, sigma, blend = CONSTANTS["snow"][severity - 1]
    x = _unit(images)
    n, h, w, _ = x.shape
    layer = rng.normal(size=(n, h, w, 1), loc=loc, scale=scale)
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8)  # the script's 8-bit PNG
    angles = rng.uniform(-135, -45, size=n)
    layer = np.clip(np.rint(_motion_blur(layer.astype(np.float64), radius, sigma, angles)),
                    0, 255) / 255.0
    x = blend * x + (1 - blend) * np.maximum(x, _gray(x) * 1.5 + 0.5)
    return _to_uint8(x + layer + np.rot90(layer, k=2, axes=(1, 2)))


FROST_TEXTURES = 5      # the script draws one of its first five frost photographs
FROST_TEXTURE_SIZE = 96  # the photographs after the script's 0.2x resize are a few hundred px


def frost_textures(rng: np.random.Generator, size: int = FROST_TEXTURE_SIZE,
                   count: int = FROST_TEXTURES) -> np.ndarray:
    """Generated stand-ins for the frost photographs (uint8, (count, size, size, 3)): ice
    needles (short random line segments) over a plasma-fractal haze, pale blue-white.
    docs/choices.md says why and how they differ from the photographs."""
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    haze = _plasma(count, _power_of_two(size), 2.0, rng)[:, :size, :size]
    yy, xx = np.mgrid[0:size, 0:size]
    for t in range(count):
        needles = np.zeros((size, size))
        for _ in range(size * 3):
            y0, x0 = rng.uniform(0, size, 2)
            angle, length = rng.uniform(0, np.pi), rng.uniform(2, size / 6)
            steps = np.linspace(0, length, int(length * 2) + 2)
            ys = np.clip((y0 + steps * np.sin(angle)).astype(int), 0, size - 1)
            xs = np.clip((x0 + steps * np.cos(angle)).astype(int), 0, size - 1)
            needles[ys, xs] += rng.uniform(0.3, 1.0)
        needles = ndimage.gaussian_filter(needles, 0.7)
        needles /= needles.max()
        value = np.clip(0.55 * haze[t] + 0.8 * needles + 0.1 + 0.05 * (yy + xx) / size, 0, 1)
        tint = np.array([0.82, 0.9, 1.0])  # pale ice blue
        out[t] = (value[..., None] * tint * 255).astype(np.uint8)
    return out


@functools.lru_cache(maxsize=4)
def _default_textures(size: int) -> np.ndarray:
    return frost_textures(np.random.default_rng(0), size)


def frost(images, severity, rng, textures: np.ndarray | None = None):
    """c0 · x + c1 · a random crop of a frost texture (one of FROST_TEXTURES, per image)."""
    image_weight, frost_weight = CONSTANTS["frost"][severity - 1]
    n, h, w, channels = images.shape
    if textures is None:
        textures = _default_textures(max(FROST_TEXTURE_SIZE, h + 1, w + 1))
    tex = textures.astype(np.float64)
    if channels == 1:
        tex = (19595 * tex[..., 0] + 38470 * tex[..., 1] + 7471 * tex[..., 2])[..., None] / 65536
    which = rng.integers(len(textures), size=n)
    top = rng.integers(0, tex.shape[1] - h, size=n)
    left = rng.integers(0, tex.shape[2] - w, size=n)
    rows = top[:, None, None] + np.arange(h)[None, :, None]
    cols = left[:, None, None] + np.arange(w)[None, None, :]
    crops = tex[which[:, None, None], rows, cols]
    return np.clip(image_weight * images.astype(np.float64) + frost_weight * crops,
                   0, 255).astype(np.uint8)


def fog(images, severity, rng):
    strength, decay = CONSTANTS["fog"][severity - 1]
    x = _unit(images).astype(np.float64)
    n, h, w, _ = x.shape
    peak = x.max(axis=(1, 2, 3), keepdims=True)
    size = _power_of_two(max(h, w))
    x = x + strength * _plasma(n, size, decay, rng)[:, :h, :w, None]
    return _to_uint8(x * peak / (peak + strength))


def brightness(images, severity, rng):
    """HSV value + c, clipped; hue and saturation kept. With V = max over channels, that is
    every channel scaled by V'/V (a black pixel becomes gray V')."""
    c = CONSTANTS["brightness"][severity - 1]
    x = _unit(images).astype(np.float64)
    value = x.max(axis=-1, keepdims=True)
    new = np.clip(value + c, 0, 1)
    scaled = np.where(value > 0, x * new / np.where(value > 0, value, 1), new)
    return _to_uint8(scaled)


def contrast(images, severity, rng):
    c = CONSTANTS["contrast"][severity - 1]
    x = _unit(images).astype(np.float64)
    means = x.mean(axis=(1, 2), keepdims=True)
    return _to_uint8((x - means) * c + means)


def elastic_transform(images, severity, rng):
    """A random affine warp (three points moved by U(-c2, c2)), then a smooth random
    displacement field (U(-1, 1) blurred by σ = c1, times α = c0), bilinear; c0, c1, c2 are
    the script's fractions of the image size (32 for CIFAR)."""
    alpha_f, sigma_f, affine_f = CONSTANTS["elastic_transform"][severity - 1]
    x = _unit(images).astype(np.float64)
    n, h, w, channels = x.shape
    size = min(h, w)
    alpha, sigma, affine = alpha_f * size, sigma_f * size, affine_f * size
    # affine: OpenCV's getAffineTransform + warpAffine (bilinear, reflect-101 border)
    centre = np.array([w, h], dtype=np.float64) // 2
    square = size // 3
    src = np.array([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    dst = src[None] + rng.uniform(-affine, affine, size=(n, 3, 2))
    ones = np.ones((3, 1))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # dst -> src map of each image: solve [dst 1] M = src
    inverse = np.linalg.solve(np.concatenate([dst, np.broadcast_to(ones, (n, 3, 1))], axis=2),
                              np.broadcast_to(src, (n, 3, 2)))  # (n, 3, 2)
    src_x = xx[None] * inverse[:, 0, 0, None, None] + yy[None] * inverse[:, 1, 0, None, None] \
        + inverse[:, 2, 0, None, None]
    src_y = xx[None] * inverse[:, 0, 1, None, None] + yy[None] * inverse[:, 1, 1, None, None] \
        + inverse[:, 2, 1, None, None]
    x = _sample(x, src_y, src_x, "mirror")
    # displacement field (scikit-image gaussian, reflect, truncate 3), then scipy's
    # map_coordinates (bilinear, reflect)
    if alpha > 0:
        fields = rng.uniform(-1, 1, size=(2, n, h, w))
        fields = ndimage.gaussian_filter(fields, sigma=(0, 0, sigma, sigma), mode="reflect",
                                         truncate=3) * alpha
        x = _sample(x, yy[None] + fields[1], xx[None] + fields[0], "reflect")
    return _to_uint8(x)


def _sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear samples of each image of ``x`` (N, H, W, C) at (rows, cols) (N, H, W)."""
    n, h, w, channels = x.shape
    shape = (n, h, w, channels)
    coords = np.stack([
        np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None, None], shape),
        np.broadcast_to(rows[..., None], shape),
        np.broadcast_to(cols[..., None], shape),
        np.broadcast_to(np.arange(channels, dtype=np.float64), shape),
    ])
    return ndimage.map_coordinates(x, coords, order=1, mode=mode)


def _pil_each(images, function):
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        result = np.asarray(function(pil))
        out[i] = result[..., None] if result.ndim == 2 else result
    return out


def pixelate(images, severity, rng):
    from PIL import Image

    c = CONSTANTS["pixelate"][severity - 1]
    h, w = images.shape[1:3]
    small = (max(1, int(w * c)), max(1, int(h * c)))
    return _pil_each(images, lambda im: im.resize(small, Image.BOX).resize((w, h), Image.BOX))


def jpeg_compression(images, severity, rng):
    from PIL import Image

    quality = CONSTANTS["jpeg_compression"][severity - 1]

    def compress(image):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert(image.mode)

    return _pil_each(images, compress)


FUNCTIONS = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(images: np.ndarray, corruption: str, severity: int,
            rng: np.random.Generator, **options) -> np.ndarray:
    """``images`` (uint8 NHWC, C = 1 or 3) under ``corruption`` at ``severity`` (1-5)."""
    if corruption not in FUNCTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; known: {list(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1-5, got {severity}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 (N, H, W, 1|3) images, got {images.dtype} {images.shape}")
    out = FUNCTIONS[corruption](images, severity, rng, **options)
    assert out.shape == images.shape and out.dtype == np.uint8, (corruption, out.shape, out.dtype)
    return out
