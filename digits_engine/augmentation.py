"""Random changes of training image batches: flips, 90° turns, rotation and
scale, HSV shifts, contrast and noise, and the random crop.

numpy only (the model form draws its preview grid with this code, and the UI
process never imports TensorFlow); the worker runs the very same functions on
its training batches through tf.numpy_function. Every function takes a whole
batch, N x H x W x C uint8, and draws its random numbers from the Generator it
is given, so one seed gives one sequence of batches.

Options are a model job's params: an absent, zero, False or "none" value
turns its operation off.
"""
import numpy as np

FLIPS = ("none", "horizontal", "vertical", "both")
OPTIONS = ("aug_flip", "aug_rot90", "aug_rotation", "aug_scale", "aug_noise", "aug_hue", "aug_saturation",
           "aug_value", "aug_contrast")
GEOMETRIC = ("aug_flip", "aug_rot90", "aug_rotation", "aug_scale")


def enabled(params: dict) -> bool:
    """Whether any augmentation is asked for (else the pipeline skips it entirely)."""
    return any(_on(params, name) for name in OPTIONS)


def geometric(params: dict) -> bool:
    """Whether an asked augmentation moves pixels (and so must move a segmentation mask too)."""
    return any(_on(params, name) for name in GEOMETRIC)


def _on(params: dict, name: str) -> bool:
    value = params.get(name)
    return bool(value) and value != "none"


def augment(images: np.ndarray, options: dict, rng: np.random.Generator) -> np.ndarray:
    """The batch with the asked random changes, a different draw for every image; same shape, uint8."""
    return augment_with_masks(images, None, options, rng)[0]


def augment_with_masks(images: np.ndarray, masks: np.ndarray | None, options: dict, rng: np.random.Generator):
    """(images, masks): geometric changes applied alike to both (masks sampled nearest, so class ids stay
    class ids), colour changes to the images only. masks: N x H x W x 1 integers, or None."""
    images = np.asarray(images)
    if not enabled(options) or len(images) == 0:
        return images, masks
    images, masks = _flip(images, masks, options.get("aug_flip") or "none", rng)
    if options.get("aug_rot90"):
        images, masks = _rot90(images, masks, rng)
    pixels = images.astype(np.float32)
    if _on(options, "aug_rotation") or _on(options, "aug_scale"):
        pixels, masks = _rotate_and_scale(pixels, masks, float(options.get("aug_rotation") or 0),
                                          float(options.get("aug_scale") or 0), rng)
    if pixels.shape[-1] == 3 and any(_on(options, k) for k in ("aug_hue", "aug_saturation", "aug_value")):
        pixels = _hsv_shift(pixels, float(options.get("aug_hue") or 0), float(options.get("aug_saturation") or 0),
                            float(options.get("aug_value") or 0), rng)
    if _on(options, "aug_contrast"):
        pixels = _contrast(pixels, float(options["aug_contrast"]), rng)
    if _on(options, "aug_noise"):
        pixels = pixels + rng.normal(0.0, float(options["aug_noise"]) * 255.0, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), masks


def random_crop(images: np.ndarray, size: int, rng: np.random.Generator, masks: np.ndarray | None = None):
    """(images, masks) cut to size x size at a random place in each image (masks at the same place)."""
    n, height, width = images.shape[:3]
    top = rng.integers(0, height - size + 1, n)
    left = rng.integers(0, width - size + 1, n)
    rows = (top[:, None] + np.arange(size))[:, :, None]  # N x size x 1
    cols = (left[:, None] + np.arange(size))[:, None, :]  # N x 1 x size
    which = np.arange(n)[:, None, None]
    return images[which, rows, cols], None if masks is None else masks[which, rows, cols]


def centre_crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the size x size centre of an image: where validation and inference crop."""
    return (height - size) // 2, (width - size) // 2


def _pick(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) < 0.5


def _where(chosen: np.ndarray, changed: np.ndarray, original: np.ndarray) -> np.ndarray:
    return np.where(chosen[:, None, None, None], changed, original)


def _flip(images, masks, mode: str, rng):
    """Each image flipped with probability 1/2 along each asked axis ("both": independently)."""
    for axis, modes in ((2, ("horizontal", "both")), (1, ("vertical", "both"))):
        if mode in modes:
            chosen = _pick(len(images), rng)
            images = _where(chosen, np.flip(images, axis), images)
            if masks is not None:
                masks = _where(chosen, np.flip(masks, axis), masks)
    return images, masks


def _rot90(images, masks, rng):
    """Each image turned by a random multiple of 90° (of 180° when it is not square: the shape must stay)."""
    square = images.shape[1] == images.shape[2]
    turns = rng.integers(0, 4, len(images)) if square else 2 * rng.integers(0, 2, len(images))
    images, masks = images.copy(), None if masks is None else masks.copy()
    for k in np.unique(turns):
        chosen = turns == k
        images[chosen] = np.rot90(images[chosen], k, axes=(1, 2))
        if masks is not None:
            masks[chosen] = np.rot90(masks[chosen], k, axes=(1, 2))
    return images, masks


def _rotate_and_scale(pixels, masks, max_degrees: float, max_scale: float, rng):
    """One affine warp a batch: each image turned by up to ±max_degrees about its centre and zoomed by
    1 ± max_scale, same size out; bilinear for images, nearest for masks; edges filled by reflection."""
    n, height, width = pixels.shape[:3]
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees, n))
    zoom = rng.uniform(1.0 - max_scale, 1.0 + max_scale, n)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    y, x = np.meshgrid(np.arange(height) - cy, np.arange(width) - cx, indexing="ij")
    cos, sin = (np.cos(angle) / zoom)[:, None, None], (np.sin(angle) / zoom)[:, None, None]
    # where each output pixel comes from: the inverse rotation and zoom of its position
    src_y = _reflect(cos * y - sin * x + cy, height)
    src_x = _reflect(sin * y + cos * x + cx, width)
    if masks is not None:
        which = np.arange(n)[:, None, None]
        masks = masks[which, np.rint(src_y).astype(np.intp), np.rint(src_x).astype(np.intp)]
    return _bilinear(pixels, src_y, src_x), masks


def _reflect(coords: np.ndarray, size: int) -> np.ndarray:
    """Coordinates outside 0..size-1 mirrored back inside (…2 1 0 1 2…)."""
    if size == 1:
        return np.zeros_like(coords)
    period = 2.0 * (size - 1)
    folded = np.mod(coords, period)
    return np.where(folded > size - 1, period - folded, folded)


def _bilinear(pixels: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    height, width = pixels.shape[1:3]
    y0 = np.clip(np.floor(src_y).astype(np.intp), 0, height - 1)
    x0 = np.clip(np.floor(src_x).astype(np.intp), 0, width - 1)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    wy, wx = (src_y - y0)[..., None], (src_x - x0)[..., None]
    which = np.arange(len(pixels))[:, None, None]
    top = pixels[which, y0, x0] * (1 - wx) + pixels[which, y0, x1] * wx
    bottom = pixels[which, y1, x0] * (1 - wx) + pixels[which, y1, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def _hsv_shift(pixels, max_hue: float, max_saturation: float, max_value: float, rng):
    """Hue turned by up to ±max_hue of the colour circle, saturation and value scaled by 1 ± their maxima."""
    n = len(pixels)
    hue = rng.uniform(-max_hue, max_hue, n)[:, None, None]
    saturation = rng.uniform(1 - max_saturation, 1 + max_saturation, n)[:, None, None]
    value = rng.uniform(1 - max_value, 1 + max_value, n)[:, None, None]
    h, s, v = rgb_to_hsv(pixels / 255.0)
    return hsv_to_rgb(np.mod(h + hue, 1.0), np.clip(s * saturation, 0, 1), np.clip(v * value, 0, 1)) * 255.0


def _contrast(pixels, max_change: float, rng):
    """Each image's distance from its own mean colour scaled by 1 ± max_change."""
    factor = rng.uniform(1 - max_change, 1 + max_change, len(pixels))[:, None, None, None]
    mean = pixels.mean(axis=(1, 2), keepdims=True)
    return (pixels - mean) * factor + mean


def rgb_to_hsv(rgb: np.ndarray):
    """(h, s, v), each N x H x W in 0..1, from N x H x W x 3 RGB in 0..1."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(axis=-1)
    spread = v - rgb.min(axis=-1)
    s = np.where(v > 0, spread / np.where(v > 0, v, 1), 0.0)
    safe = np.where(spread > 0, spread, 1)
    h = np.where(v == r, (g - b) / safe, np.where(v == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = np.where(spread > 0, np.mod(h / 6.0, 1.0), 0.0)
    return h, s, v


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """N x H x W x 3 RGB in 0..1 from h, s, v in 0..1."""
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    sector = sector.astype(np.int64) % 6
    choices = [np.stack(c, axis=-1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    return np.choose(sector[..., None], choices)
