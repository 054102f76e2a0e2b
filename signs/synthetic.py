"""A synthetic stand-in for SIGNS: procedurally drawn hands showing 0 to 5 raised fingers.

It exists so that the notebook and the training script run end to end on a machine without
the real photographs. Every image is drawn with signed distance functions (anti-aliased by
construction, no image library needed) from one seeded generator, so a given seed always
gives the same bytes.
"""

import numpy as np

SIZE = 64
CLASSES = np.arange(6, dtype=np.int64)

# Fingers in hand coordinates (palm centre at the origin, palm half-width 1, y up):
# name -> (base x, base y, direction in degrees from vertical, raised length, radius).
_FINGERS = {
    "index": (-0.62, 0.85, 13.0, 1.75, 0.21),
    "middle": (-0.2, 0.95, 2.0, 1.95, 0.22),
    "ring": (0.24, 0.92, -10.0, 1.8, 0.21),
    "pinky": (0.66, 0.78, -23.0, 1.4, 0.19),
}
_PIXEL_CENTRES = tuple(np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + np.float32(0.5))
_THUMB = (-0.85, -0.15, 48.0, 1.35, 0.27)

# Which fingers are raised to show each count (3 as in SIGNS: thumb, index, middle).
_RAISED = {
    0: ((),),
    1: (("index",),),
    2: (("index", "middle"),),
    3: (("thumb", "index", "middle"),),
    4: (("index", "middle", "ring", "pinky"),),
    5: (("thumb", "index", "middle", "ring", "pinky"),),
}


def make_synthetic_signs(per_class, seed):
    """Draw `per_class` images of each of the 6 classes, in a seeded random order.

    Args:
        per_class: number of images per class.
        seed: seed of the generator; the same seed gives identical arrays.

    Returns:
        (x, y): x uint8 of shape (6 * per_class, 64, 64, 3), y int64 of shape (6 * per_class,).
    """
    rng = np.random.default_rng(seed)
    y = np.repeat(CLASSES, per_class)
    y = y[rng.permutation(len(y))]
    x = np.stack([draw_hand(int(label), rng) for label in y])
    return x, y


def draw_hand(fingers_up, rng):
    """One 64x64x3 uint8 image of a hand with `fingers_up` raised fingers on a plain background."""
    rows, cols = _PIXEL_CENTRES
    image = _background(rng, rows, cols)

    scale = rng.uniform(10.0, 13.0)  # palm half-width in pixels
    angle = np.deg2rad(rng.uniform(-15.0, 15.0))
    centre = (rng.uniform(39.0, 46.0), rng.uniform(26.0, 38.0))  # (row, col)
    mirror = -1.0 if rng.random() < 0.5 else 1.0
    hx, hy = _to_hand_coordinates(rows, cols, centre, angle, scale, mirror)

    skin = _skin_tone(rng)
    light = 0.85 + 0.15 * np.clip(0.5 + 0.25 * (hx + hy), 0.0, 1.0)  # soft side lighting
    raised = set(_RAISED[fingers_up][rng.integers(len(_RAISED[fingers_up]))])

    shapes = [_capsule(hx, hy, (0.0, -0.6), (rng.uniform(-0.3, 0.3), -5.0), 0.62)]  # forearm
    shapes.append(_ellipse(hx, hy, 1.0, 1.05))  # palm
    for name, (bx, by, tilt, length, radius) in _FINGERS.items():
        if name in raised:
            tilt += rng.uniform(-4.0, 4.0) + (6.0 if fingers_up == 2 and name == "index" else 0.0)
            shapes.append(_finger(hx, hy, bx, by, tilt, length * rng.uniform(0.9, 1.08), radius))
        else:
            shapes.append(_finger(hx, hy, bx, by - 0.15, tilt + 180.0, 0.45, radius * 1.1))
    tx, ty, tilt, length, radius = _THUMB
    if "thumb" in raised:
        shapes.append(_finger(hx, hy, tx, ty, tilt + rng.uniform(-10.0, 10.0), length, radius))
    else:
        shapes.append(_finger(hx, hy, tx, ty, -70.0, 0.95, radius))  # folded across the palm

    shade, cover = np.zeros_like(hx), np.zeros_like(hx)
    for distance, radius in shapes:
        shade, cover = _paint(shade, cover, distance * scale, radius * scale)

    hand = (shade * light)[..., None] * skin
    image = hand + (1.0 - cover)[..., None] * image
    image += rng.normal(0.0, rng.uniform(1.0, 5.0), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _background(rng, rows, cols):
    """A light, slightly tinted wall with a linear gradient, like the photographs'."""
    base = rng.uniform(185.0, 235.0) + rng.uniform(-8.0, 8.0, size=3)
    direction = rng.uniform(0.0, 2.0 * np.pi)
    ramp = (np.cos(direction) * cols + np.sin(direction) * rows) / SIZE - 0.5
    return base + rng.uniform(5.0, 25.0) * ramp[..., None]


def _skin_tone(rng):
    """An RGB skin colour between dark and light tones."""
    dark, light = np.array([105.0, 70.0, 50.0]), np.array([235.0, 195.0, 170.0])
    return dark + rng.uniform(0.0, 1.0) * (light - dark) + rng.uniform(-10.0, 10.0, size=3)


def _to_hand_coordinates(rows, cols, centre, angle, scale, mirror):
    """Map pixel centres to hand coordinates (y up, palm half-width 1)."""
    dx, dy = (cols - centre[1]) / scale, (centre[0] - rows) / scale
    c, s = np.cos(angle), np.sin(angle)
    return mirror * (c * dx + s * dy), -s * dx + c * dy


def _capsule(hx, hy, a, b, radius):
    """(signed distance to a segment's centre line, radius) of a rounded rod from a to b."""
    ax, ay = a
    vx, vy = b[0] - ax, b[1] - ay
    t = np.clip(((hx - ax) * vx + (hy - ay) * vy) / (vx * vx + vy * vy), 0.0, 1.0)
    return np.hypot(hx - ax - t * vx, hy - ay - t * vy), radius


def _finger(hx, hy, bx, by, tilt_degrees, length, radius):
    """A finger as a capsule from its base, `tilt_degrees` from vertical (positive leans left)."""
    tilt = np.deg2rad(tilt_degrees)
    tip = (bx - length * np.sin(tilt), by + length * np.cos(tilt))
    return _capsule(hx, hy, (bx, by), tip, radius)


def _ellipse(hx, hy, half_width, half_height):
    """(approximate distance from the centre scaled to the radius, radius) of an ellipse."""
    radius = min(half_width, half_height)
    return np.hypot(hx / half_width, hy / half_height) * radius, radius


def _paint(shade, cover, distance, radius):
    """Composite one shape over the hand drawn so far, in one channel (all shapes share the skin).

    Anti-aliased edge, and a darker rim so that touching fingers stay apart. Returns the new
    (shade, cover) maps: shading of the skin colour, and how much of each pixel is hand.
    """
    alpha = np.clip(radius - distance + 0.5, 0.0, 1.0)
    rim = np.minimum(distance / radius, 1.0)
    return alpha * (1.0 - 0.35 * rim**3) + (1.0 - alpha) * shade, alpha + (1.0 - alpha) * cover
