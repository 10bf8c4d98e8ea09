"""Write a synthetic low-dose CT dataset in the TomoGAN HDF5 layout.

Usage::

    python -m data_tools.make_ct_dataset --out data.h5 [--kind supervised|noisy|pairs]
        [--n_train 64 --n_test 16 --i0 1e4 ...]

All stacks are (N, H, W) float32 in attenuation units (1/mm): ``ns`` = low-dose (noisy),
``ns2`` = a second, independent low-dose scan of the same slices, ``gt`` = full-dose (clean)
reconstruction.  The file also holds ``theta`` (projection angles in degrees) and the
simulation settings as root attributes.  Which stacks are written depends on ``--kind``:

``supervised`` (default)
    ``train_ns``, ``train_gt``, ``test_ns``, ``test_gt``: noisy/clean pairs for supervised
    training (TomoGAN).
``noisy``
    ``train_ns`` only for training (no clean training data, as in a real experiment), plus
    ``test_ns`` and ``test_gt``.  ``test_gt`` is for evaluation only: self-supervised training
    never reads it.  Filtered back-projection correlates the noise of neighbouring pixels,
    which Noise2Self (``--mode n2s``) assumes independent, so it removes less of it here
    than from raw projections (``data_tools.make_projection_dataset``).
``pairs``
    ``train_ns`` and ``train_ns2``, two independent Poisson noise draws of the same slices,
    each reconstructed by the same FBP (Noise2Noise training pairs), plus ``test_ns``,
    ``test_ns2`` and ``test_gt`` (again, ``test_gt`` for evaluation only).

For a given seed, ``train_ns`` and ``test_ns`` (and ``*_gt``) are identical across kinds: the
second noise draw comes from its own random stream, so ``supervised`` files are bit-identical
to those written before ``--kind`` existed.  Non-supervised files carry a ``kind`` attribute.

Per slice:

1. An anatomy-like phantom (thorax, abdomen or head with fat, organs, lungs, bowel gas, cortical
   bone shells, calcifications, patient table / head-rest and cushions) is cut analytically out
   of a random 3D object made of ellipsoids and z-invariant boxes, with smooth textures from
   random low-frequency 3D plane waves.  Consecutive slices of one "volume" are therefore
   correlated like adjacent CT slices; different volumes are independent draws.
2. The slice is rendered at 2x resolution and 2x2-mean downsampled (partial-volume edges).
3. Line integrals ``p = radon(mu) * pixel_mm`` (parallel beam, ``circle=True``).
4. Low dose as in LoDoPaB-CT: ``counts ~ Poisson(i0 * exp(-p))``, clamped at >= 0.1,
   ``p_noisy = -log(counts / i0)`` (for ``pairs``, a second independent ``counts`` draw).
5. All sinograms are reconstructed with ramp-filtered back-projection, so clean and noisy
   share the same view-sampling artefacts and differ only by the dose noise (the TomoGAN
   convention).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from skimage.transform import iradon, radon

__all__ = [
    "DEFAULT_FOV_MM",
    "DEFAULT_VIEWS",
    "GENERATOR",
    "KINDS",
    "CTDatasetError",
    "OutputExistsError",
    "Phantom3D",
    "ScanVariety",
    "low_dose_line_integrals",
    "make_ct_dataset",
    "mean_psnr",
    "phantom_slice",
    "random_phantom",
    "simulate_scan",
    "simulate_slices",
]

GENERATOR = "data_tools.make_ct_dataset 1.0"
#: Default number of projection angles in [0, 180).  For H = 256 the angular Nyquist rate is
#: ~pi/2 * H = 402 views; 360 (0.5 degree steps) keeps view-aliasing streaks faint while staying
#: fast.  Use fewer views for sparse-view data.
DEFAULT_VIEWS = 360
#: Default field of view: pixel_mm defaults to DEFAULT_FOV_MM / size, which puts the longest
#: line integrals through the body at p ~ 3.5-5 (realistic for clinical CT).
DEFAULT_FOV_MM = 256.0
#: Distance between adjacent slices in normalised units (1 = half the field of view), i.e.
#: 2.56 mm at the default field of view.
SLICE_STEP = 0.02
#: Lowest photon count kept before taking the log (LoDoPaB-CT convention).
COUNT_FLOOR = 0.1
#: Dataset kinds and the stacks each writes per split (train, test), in writing order.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "supervised": (("ns", "gt"), ("ns", "gt")),
    "noisy": (("ns",), ("ns", "gt")),
    "pairs": (("ns", "ns2"), ("ns", "ns2", "gt")),
}

_SUPERSAMPLE = 2
_RADIUS = 0.9  # all anatomy lies inside this normalised radius (reconstruction circle is 1)


class CTDatasetError(ValueError):
    """Invalid settings for the dataset generator (the CLI reports these and exits 2)."""


class OutputExistsError(CTDatasetError):
    """The output file exists and overwriting was not requested."""


# --------------------------------------------------------------------------------------------
# 3D phantom
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ellipsoid:
    """Ellipsoid with in-plane rotation ``theta`` whose axis may be sheared along z.

    ``c = inf`` gives an elliptic cylinder.  The cross-section at height z is an ellipse with
    the same orientation, centre ``(cx + sx*dz, cy + sy*dz)`` and semi-axes scaled by
    ``sqrt(1 - (dz/c)^2)`` -- computed analytically, so no volume is ever stored.
    """

    cx: float
    cy: float
    cz: float
    a: float
    b: float
    c: float
    value: float
    theta: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    texture: float = 0.0  # relative amplitude of the texture field
    field: int = 0  # which texture field modulates the value

    def section(self, z: float) -> tuple[float, float, float, float] | None:
        dz = z - self.cz
        s = 1.0 - (dz / self.c) ** 2
        if s <= 0.0:
            return None
        r = math.sqrt(s)
        return self.cx + self.sx * dz, self.cy + self.sy * dz, self.a * r, self.b * r


@dataclass(frozen=True)
class _Box:
    """Axis-aligned box that does not change along z (patient table, cushions)."""

    x0: float
    x1: float
    y0: float
    y1: float
    value: float
    texture: float = 0.0
    field: int = 0


@dataclass
class Phantom3D:
    """A random 3D phantom: objects painted in order, plus plane-wave texture fields.

    Coordinates are normalised: x to the right and y downwards in [-1, 1] across the image
    (the reconstruction circle has radius 1), z in the same units along the patient axis.
    Values are linear attenuation coefficients in 1/mm.
    """

    kind: str
    objects: list[_Ellipsoid | _Box] = field(default_factory=list)
    # one (K, 5) array [kx, ky, kz, phase, amplitude] per texture field; unit variance each
    waves: list[np.ndarray] = field(default_factory=list)

    def texture(self, index: int, z: float, coords: np.ndarray) -> np.ndarray:
        """Texture field ``index`` on the slice at height z (rows = y, columns = x)."""
        out = np.zeros((coords.size, coords.size))
        for kx, ky, kz, phase, amp in self.waves[index]:
            # cos(ky*y + kz*z + phase + kx*x) as a sum of two outer products: cheap
            row = ky * coords + (kz * z + phase)
            col = kx * coords
            out += amp * (np.outer(np.cos(row), np.cos(col)) - np.outer(np.sin(row), np.sin(col)))
        return out


def _span(lo: float, hi: float, n: int) -> slice:
    """Pixel index range covering normalised coordinates [lo, hi] on an n-pixel axis."""
    i0 = max(math.floor((lo + 1.0) * 0.5 * n - 0.5), 0)
    i1 = min(math.ceil((hi + 1.0) * 0.5 * n - 0.5) + 1, n)
    return slice(i0, max(i0, i1))


def _circle_mask(size: int) -> np.ndarray:
    """skimage's reconstruction circle (radon/iradon with circle=True) for a size x size image."""
    idx = np.arange(size) - size // 2
    return idx[:, None] ** 2 + idx[None, :] ** 2 <= (size // 2) ** 2


def phantom_slice(phantom: Phantom3D, z: float, size: int) -> np.ndarray:
    """Attenuation image (1/mm, float64, size x size) of ``phantom`` at height ``z``.

    Rendered at 2x resolution and 2x2-mean downsampled so object edges get partial-volume
    values, then zeroed outside skimage's reconstruction circle so ``radon(circle=True)``
    is exact.
    """
    n = _SUPERSAMPLE * size
    coords = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    fields = [phantom.texture(i, z, coords) for i in range(len(phantom.waves))]
    img = np.zeros((n, n))
    for obj in phantom.objects:
        if isinstance(obj, _Box):
            rows, cols = _span(obj.y0, obj.y1, n), _span(obj.x0, obj.x1, n)
            ys, xs = coords[rows], coords[cols]
            inside = ((ys >= obj.y0) & (ys <= obj.y1))[:, None] & ((xs >= obj.x0) & (xs <= obj.x1))[
                None, :
            ]
        else:
            sec = obj.section(z)
            if sec is None:
                continue
            ex, ey, ea, eb = sec
            r = max(ea, eb)
            rows, cols = _span(ey - r, ey + r, n), _span(ex - r, ex + r, n)
            dy = coords[rows][:, None] - ey
            dx = coords[cols][None, :] - ex
            ct, st = math.cos(obj.theta), math.sin(obj.theta)
            u = (dx * ct + dy * st) / ea
            v = (dy * ct - dx * st) / eb
            inside = u * u + v * v <= 1.0
        if not inside.any():
            continue
        region = img[rows, cols]  # a view: writing into it paints img
        if obj.texture:
            values = obj.value * (1.0 + obj.texture * fields[obj.field][rows, cols])
            region[inside] = values[inside]
        else:
            region[inside] = obj.value
    np.maximum(img, 0.0, out=img)
    img = img.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
    img[~_circle_mask(size)] = 0.0
    return img


# ---- random anatomy ------------------------------------------------------------------------


def _waves(rng: np.random.Generator, k: int, lam_lo: float, lam_hi: float) -> np.ndarray:
    """k random 3D plane waves with wavelengths in [lam_lo, lam_hi]; unit total variance."""
    direction = rng.normal(size=(k, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavenumber = 2 * np.pi / np.exp(rng.uniform(np.log(lam_lo), np.log(lam_hi), size=k))
    amp = rng.uniform(0.5, 1.0, size=k)
    amp *= math.sqrt(2.0 / np.sum(amp**2))  # sum(amp^2)/2 = 1 -> unit variance
    phase = rng.uniform(0, 2 * np.pi, size=k)
    return np.column_stack([direction * wavenumber[:, None], phase, amp])


def _y_extent(a: float, b: float, theta: float) -> float:
    """Half height of a rotated ellipse."""
    return math.hypot(a * math.sin(theta), b * math.cos(theta))


def _shell(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    a: float,
    b: float,
    thickness: float,
    inner_value: float,
    *,
    bone: float,
    theta: float = 0.0,
    c: float = math.inf,
    cz: float = 0.0,
    sx: float = 0.0,
    sy: float = 0.0,
    inner_texture: float = 0.03,
) -> list[_Ellipsoid]:
    """A bone shell (cortex) around a softer core, with thickness varying around the ring."""
    ta, tb = thickness * rng.uniform(0.7, 1.4, size=2)
    ox, oy = thickness * rng.uniform(-0.3, 0.3, size=2)
    common = dict(cz=cz, c=c, theta=theta, sx=sx, sy=sy)
    return [
        _Ellipsoid(cx, cy, a=a, b=b, value=bone, texture=0.04, **common),
        _Ellipsoid(
            cx + ox,
            cy + oy,
            a=max(a - ta, 0.3 * a),
            b=max(b - tb, 0.3 * b),
            value=inner_value,
            texture=inner_texture,
            **common,
        ),
    ]


def _spine(
    rng: np.random.Generator, vx: float, vy: float, zc: float, max_y: float
) -> list[_Ellipsoid]:
    """Stack of vertebrae (cortical shell + marrow, posterior arch, canal) with discs.

    ``vy`` is moved up if needed so the spinous process stays above ``max_y`` (inside the body).
    """
    u = rng.uniform
    a = u(0.075, 0.105)
    b = a * u(0.75, 0.95)
    canal_r = u(0.03, 0.045)
    vy = min(vy, max_y - (b + 2 * canal_r + 0.095) - 0.03)
    objs = [_Ellipsoid(vx, vy, zc, a * 0.97, b * 0.97, math.inf, value=u(0.021, 0.0225))]
    half = u(0.08, 0.12)  # half height of a vertebral body
    pitch = 2 * half + u(0.025, 0.05)
    z = zc - u(0.0, pitch) - 2 * pitch
    bone, marrow = u(0.045, 0.06), u(0.023, 0.03)
    tilt = rng.normal(0.0, 0.05, size=2)
    while z < zc + 2 * pitch:
        common = dict(c=half * u(1.05, 1.25), cz=z, sx=tilt[0], sy=tilt[1])
        objs += _shell(rng, vx, vy, a, b, u(0.01, 0.02), marrow, bone=bone, **common)
        arch_y = vy + b + canal_r + 0.01
        objs += _shell(
            rng,
            vx,
            arch_y,
            canal_r + 0.02,
            canal_r + 0.018,
            0.02,
            u(0.0195, 0.0205),
            bone=bone,
            **common,
        )
        objs.append(_Ellipsoid(vx, arch_y + canal_r + 0.04, a=0.02, b=0.045, value=bone, **common))
        z += pitch
    return objs


def _table(
    rng: np.random.Generator, bottom: float, ex: float, ea: float, with_cushion: bool
) -> list[_Box | _Ellipsoid]:
    """Patient table (thin dense-ish bar) below ``bottom``, with an optional cushion."""
    u = rng.uniform
    objs: list[_Box | _Ellipsoid] = []
    gap = u(0.03, 0.07) if with_cushion else u(0.005, 0.03)
    y0 = bottom + gap
    y1 = y0 + u(0.015, 0.035)
    if y1 > _RADIUS - 0.01:
        return objs
    w = min(math.sqrt(_RADIUS**2 - y1**2), u(0.6, 1.0) * ea + 0.2)
    if with_cushion:  # painted before the body, so only the part below the body shows
        wc = min(w, u(0.45, 0.8) * ea)
        objs.append(_Box(-wc + ex, wc + ex, bottom - 0.12, y0, u(0.003, 0.006), texture=0.1))
    objs.append(_Box(-w, w, y0, y1, u(0.008, 0.025)))
    return objs


def _torso(rng: np.random.Generator, zc: float, kind: str) -> list[_Ellipsoid | _Box]:
    u = rng.uniform
    a, b = u(0.72, 0.86), u(0.5, 0.64)
    cx, cy = u(-0.03, 0.03), u(-0.12, -0.04)
    theta = u(-0.08, 0.08)
    sx, sy = np.clip(rng.normal(0.0, 0.03, size=2), -0.06, 0.06)
    scale = min(1.0, (_RADIUS - 0.05 - math.hypot(cx, cy)) / max(a, b))
    a, b = a * scale, b * scale
    c, cz = u(2.0, 4.0), zc + u(-0.5, 0.5)
    ea, eb = a, b  # body section near the volume centre (c >> volume height)
    body = dict(cz=cz, c=c, theta=theta, sx=sx, sy=sy)

    objs: list[_Ellipsoid | _Box] = []
    if rng.random() < 0.7:
        objs += _table(rng, cy + _y_extent(a, b, theta), cx, ea, rng.random() < 0.7)
    fat = u(0.02, 0.07)
    soft = u(0.0195, 0.0215)
    objs.append(_Ellipsoid(cx, cy, a=a, b=b, value=u(0.0172, 0.019), texture=0.03, **body))
    objs.append(
        _Ellipsoid(
            cx, cy, a=a - fat, b=b - fat * u(0.6, 1.2), value=soft, texture=u(0.02, 0.05), **body
        )
    )

    def organ(x: float, y: float, oa: float, ob: float, value: float, **kw) -> _Ellipsoid:
        kw.setdefault("c", u(0.25, 0.8))
        kw.setdefault("cz", zc + u(-0.3, 0.3))
        kw.setdefault("texture", u(0.01, 0.04))
        return _Ellipsoid(cx + x * ea, cy + y * eb, a=oa, b=ob, value=value, **kw)

    spine_y = cy + eb * u(0.42, 0.52)
    if kind == "thorax":
        for side in (-1, 1):
            lx = side * u(0.36, 0.48)
            la = min(u(0.24, 0.36) * ea, ea * (1 - abs(lx)) - fat - 0.04)
            objs.append(
                organ(
                    lx,
                    u(-0.15, 0.0),
                    la,
                    u(0.45, 0.62) * eb,
                    u(0.0025, 0.006),
                    theta=side * u(0.0, 0.3),
                    texture=u(0.25, 0.4),
                    field=1,
                    c=u(0.5, 1.0),
                )
            )
        objs.append(
            organ(
                u(-0.05, 0.15),
                u(-0.15, 0.15),
                u(0.17, 0.25) * ea,
                u(0.3, 0.45) * eb,
                u(0.0205, 0.0225),
                theta=u(-np.pi, np.pi),
            )
        )
        objs.append(organ(0.05, 0.3, 0.045, 0.045, u(0.022, 0.03), c=math.inf))  # aorta
        for _ in range(rng.integers(5, 11)):  # ribs: small oblique shells near the body wall
            phi = u(-np.pi, np.pi)
            rx = cx + (ea - fat * 1.5) * 0.93 * math.cos(phi)
            ry = cy + (eb - fat * 1.5) * 0.93 * math.sin(phi)
            objs += _shell(
                rng,
                rx,
                ry,
                u(0.025, 0.05),
                u(0.014, 0.022),
                u(0.006, 0.01),
                u(0.022, 0.028),
                bone=u(0.045, 0.06),
                theta=phi + np.pi / 2,
                c=u(0.04, 0.1),
                cz=zc + u(-0.25, 0.25),
                sx=rng.normal(0, 0.3),
                sy=rng.normal(0, 0.3),
            )
        objs += _shell(
            rng,
            cx,
            cy - eb * 0.9 + fat,
            0.06,
            0.022,
            0.008,
            u(0.022, 0.028),
            bone=u(0.045, 0.06),
            c=u(0.2, 0.5),
            cz=zc + u(-0.3, 0.3),
        )  # sternum
    else:  # abdomen / pelvis
        objs.append(
            organ(
                -u(0.25, 0.4),
                -u(0.0, 0.2),
                u(0.3, 0.42) * ea,
                u(0.35, 0.5) * eb,
                u(0.0205, 0.0225),
                theta=u(-0.5, 0.5),
            )
        )  # liver
        objs.append(
            organ(
                u(0.4, 0.55),
                -u(0.0, 0.3),
                u(0.1, 0.16),
                u(0.15, 0.22),
                u(0.0205, 0.0225),
                theta=u(-0.6, 0.6),
            )
        )  # spleen
        for side in (-1, 1):  # kidneys
            objs.append(
                organ(
                    side * u(0.22, 0.32),
                    u(0.2, 0.35),
                    u(0.06, 0.09),
                    u(0.09, 0.13),
                    u(0.021, 0.0235),
                    theta=side * u(0.1, 0.5),
                    c=u(0.15, 0.3),
                )
            )
        objs.append(organ(0.08, 0.15, 0.04, 0.04, u(0.022, 0.03), c=math.inf))  # aorta
        for _ in range(rng.integers(2, 8)):  # bowel gas (air) and contrast-filled bowel
            r = u(0.0, 0.55)
            phi = u(-np.pi, np.pi)
            gas = rng.random() < 0.75
            objs.append(
                organ(
                    r * math.cos(phi),
                    r * math.sin(phi) - 0.1,
                    u(0.02, 0.08),
                    u(0.02, 0.07),
                    0.0 if gas else u(0.024, 0.032),
                    theta=u(-np.pi, np.pi),
                    c=u(0.04, 0.15),
                    texture=0.0,
                )
            )
        if rng.random() < 0.35:  # iliac wings
            for side in (-1, 1):
                objs += _shell(
                    rng,
                    cx + side * u(0.45, 0.58) * ea,
                    cy + u(-0.05, 0.2) * eb,
                    u(0.05, 0.09),
                    u(0.18, 0.26),
                    u(0.012, 0.025),
                    u(0.023, 0.03),
                    bone=u(0.045, 0.06),
                    theta=side * u(0.3, 0.7),
                    c=u(0.4, 0.8),
                    cz=zc + u(-0.3, 0.3),
                )
    objs += _spine(rng, cx + u(-0.02, 0.02), spine_y, zc, cy + eb - fat)
    for _ in range(rng.integers(0, 4)):  # small dense calcifications / clips
        r, phi = u(0.0, 0.7), u(-np.pi, np.pi)
        objs.append(
            organ(
                r * math.cos(phi),
                r * math.sin(phi),
                u(0.006, 0.02),
                u(0.006, 0.02),
                u(0.05, 0.09),
                c=u(0.02, 0.06),
                texture=0.0,
            )
        )
    return objs


def _head(rng: np.random.Generator, zc: float) -> list[_Ellipsoid | _Box]:
    u = rng.uniform
    a = u(0.56, 0.68)
    b = a * u(1.1, 1.25)
    cx, cy = u(-0.03, 0.03), u(-0.12, -0.05)
    theta = u(-0.1, 0.1)
    scale = min(1.0, (_RADIUS - 0.1 - math.hypot(cx, cy)) / max(a, b))
    a, b = a * scale, b * scale
    c, cz = u(0.9, 1.3), zc + u(-0.4, 0.4)
    ea, eb = a, b
    objs: list[_Ellipsoid | _Box] = []
    bottom = cy + _y_extent(a, b, theta)
    if rng.random() < 0.7:  # head-rest: cushion crescent + holder bar
        cb = min(u(0.05, 0.1), _RADIUS - 0.06 - bottom)
        if cb > 0.02:
            objs.append(
                _Ellipsoid(
                    cx,
                    bottom - 0.05,
                    0.0,
                    u(0.5, 0.7) * ea,
                    cb + 0.05,
                    math.inf,
                    value=u(0.003, 0.006),
                    texture=0.1,
                )
            )
            objs += _table(rng, bottom + cb, cx, ea * 0.6, with_cushion=False)
    common = dict(cz=cz, c=c, theta=theta)
    scalp = u(0.015, 0.035)
    objs.append(_Ellipsoid(cx, cy, a=a, b=b, value=u(0.0195, 0.021), texture=0.02, **common))
    brain = u(0.0203, 0.0212)
    objs += _shell(
        rng,
        cx,
        cy,
        a - scalp,
        b - scalp,
        u(0.025, 0.05),
        brain,
        bone=u(0.045, 0.06),
        inner_texture=u(0.01, 0.03),
        **common,
    )

    def inner(x: float, y: float, oa: float, ob: float, value: float, **kw) -> _Ellipsoid:
        kw.setdefault("c", u(0.15, 0.5))
        kw.setdefault("cz", zc + u(-0.3, 0.3))
        kw.setdefault("theta", u(-np.pi, np.pi))
        return _Ellipsoid(cx + x * ea, cy + y * eb, a=oa, b=ob, value=value, **kw)

    for _ in range(rng.integers(2, 5)):  # white-matter regions: very low contrast
        objs.append(
            inner(
                u(-0.4, 0.4),
                u(-0.4, 0.4),
                u(0.1, 0.25),
                u(0.1, 0.3),
                brain - u(0.0002, 0.0007),
                texture=0.02,
            )
        )
    for side in (-1, 1):  # lateral ventricles (CSF)
        objs.append(
            inner(
                side * u(0.08, 0.16),
                u(-0.15, 0.1),
                u(0.03, 0.06),
                u(0.12, 0.22),
                u(0.0192, 0.0199),
                theta=side * u(0.0, 0.3),
            )
        )
    for _ in range(rng.integers(0, 4)):  # paranasal sinuses / mastoid air in a bony rim
        x, y = u(-0.25, 0.25), -u(0.6, 0.78)
        r = u(0.03, 0.07)
        objs += _shell(
            rng,
            cx + x * ea,
            cy + y * eb,
            r + 0.012,
            r * u(0.7, 1.0) + 0.012,
            0.012,
            0.0,
            bone=u(0.04, 0.055),
            theta=u(-np.pi, np.pi),
            c=u(0.05, 0.15),
            cz=zc + u(-0.2, 0.2),
            inner_texture=0.0,
        )
    for _ in range(rng.integers(0, 4)):  # calcifications
        objs.append(
            inner(
                u(-0.5, 0.5),
                u(-0.5, 0.5),
                u(0.006, 0.018),
                u(0.006, 0.018),
                u(0.05, 0.09),
                c=u(0.02, 0.06),
            )
        )
    return objs


def random_phantom(rng: np.random.Generator, z_center: float = 0.0) -> Phantom3D:
    """Draw a random anatomy-like 3D phantom centred (along z) at ``z_center``.

    Thorax, abdomen/pelvis and head archetypes with randomised sizes, positions, attenuation
    values and textures, so the dataset is not dominated by one geometry or contrast.
    """
    kind = str(rng.choice(["thorax", "abdomen", "head"], p=[0.4, 0.4, 0.2]))
    objects = _head(rng, z_center) if kind == "head" else _torso(rng, z_center, kind)
    waves = [_waves(rng, 6, 0.15, 0.7), _waves(rng, 8, 0.04, 0.12)]
    return Phantom3D(kind=kind, objects=objects, waves=waves)


# --------------------------------------------------------------------------------------------
# scanner simulation
# --------------------------------------------------------------------------------------------


def low_dose_line_integrals(p: np.ndarray, i0: float, rng: np.random.Generator) -> np.ndarray:
    """The LoDoPaB-CT noise model on line integrals ``p``: Poisson counts at ``i0`` photons
    per ray, clamped at ``COUNT_FLOOR``, back to line integrals by ``-log``."""
    counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
    return -np.log(np.maximum(counts, COUNT_FLOOR) / i0)


def simulate_scan(
    mu: np.ndarray,
    theta: np.ndarray,
    i0: float,
    pixel_mm: float,
    rng: np.random.Generator,
    pair_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, ...]:
    """Low-dose and noise-free FBP reconstructions (1/mm, float64) of attenuation image ``mu``.

    Both come from the same geometry and filter, so they differ only by Poisson noise of
    ``i0`` photons per ray (LoDoPaB-CT model, counts clamped at ``COUNT_FLOOR``).  Returns
    ``(noisy, clean)``; with ``pair_rng``, ``(noisy, clean, noisy2)`` where ``noisy2`` is a
    second scan whose noise is drawn from ``pair_rng`` (``rng`` is used exactly as without it,
    so ``noisy`` and ``clean`` do not change).
    """
    size = mu.shape[0]
    p = radon(mu, theta=theta, circle=True) * pixel_mm
    recon = dict(theta=theta, output_size=size, filter_name="ramp", circle=True)

    def low_dose(gen: np.random.Generator) -> np.ndarray:
        return iradon(low_dose_line_integrals(p, i0, gen), **recon) / pixel_mm

    noisy = low_dose(rng)
    clean = iradon(p, **recon) / pixel_mm
    if pair_rng is None:
        return noisy, clean
    return noisy, clean, low_dose(pair_rng)


def _theta(views: int) -> np.ndarray:
    return np.arange(views, dtype=np.float64) * (180.0 / views)


def _default_pixel_mm(size: int) -> float:
    return DEFAULT_FOV_MM / size


def _check(
    *,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float | None,
    slices_per_volume: int,
    **counts: int,
) -> float:
    """Raise CTDatasetError for a bad setting; return the pixel size (default FOV / size)."""
    if pixel_mm is None:
        pixel_mm = _default_pixel_mm(size)
    for name, n in counts.items():
        if int(n) != n or n <= 0:
            raise CTDatasetError(f"{name} must be a positive integer, got {n}")
    if int(size) != size or size < 16 or size % 2:
        raise CTDatasetError(f"size must be an even integer >= 16, got {size}")
    if int(views) != views or views < 1:
        raise CTDatasetError(f"views must be an integer >= 1, got {views}")
    if not (math.isfinite(i0) and i0 > 0):
        raise CTDatasetError(f"i0 (photons per ray) must be a positive number, got {i0}")
    if not (math.isfinite(pixel_mm) and pixel_mm > 0):
        raise CTDatasetError(f"pixel_mm must be a positive number, got {pixel_mm}")
    if int(slices_per_volume) != slices_per_volume or slices_per_volume < 1:
        raise CTDatasetError(f"slices_per_volume must be an integer >= 1, got {slices_per_volume}")
    return pixel_mm


def simulate_slices(
    n: int,
    size: int = 256,
    views: int = DEFAULT_VIEWS,
    i0: float = 1e4,
    pixel_mm: float | None = None,
    slices_per_volume: int = 16,
    rng: np.random.Generator | int | None = None,
    pairs: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield ``n`` (noisy, clean) float32 (size, size) reconstructions, one slice at a time.

    Slices come in runs of ``slices_per_volume`` adjacent slices (SLICE_STEP apart) through one
    random 3D phantom; each run uses its own child seed drawn from ``rng``, so the first k
    volumes do not depend on ``n``.  ``pixel_mm`` defaults to DEFAULT_FOV_MM / size.
    With ``pairs``, yields (noisy, clean, noisy2): ``noisy2`` is a second scan with noise from
    an extra child seed of each run, so ``noisy`` and ``clean`` are the same as without
    ``pairs``.  Arguments are validated immediately (CTDatasetError), not on first iteration.
    """
    pixel_mm = _check(
        n=n, size=size, views=views, i0=i0, pixel_mm=pixel_mm, slices_per_volume=slices_per_volume
    )
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return _slices(
        int(n),
        int(size),
        int(views),
        float(i0),
        float(pixel_mm),
        int(slices_per_volume),
        gen,
        bool(pairs),
    )


def _slices(
    n: int,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float,
    per_volume: int,
    rng: np.random.Generator,
    pairs: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    theta = _theta(views)
    done = 0
    while done < n:
        vol_seed = np.random.SeedSequence(int(rng.integers(2**63)))
        phantom_rng, noise_rng = (np.random.default_rng(s) for s in vol_seed.spawn(2))
        # a third child seed (spawning more children never changes the first two)
        pair_rng = np.random.default_rng(vol_seed.spawn(1)[0]) if pairs else None
        z_center = (per_volume - 1) * SLICE_STEP / 2
        phantom = random_phantom(phantom_rng, z_center)
        for k in range(min(per_volume, n - done)):
            mu = phantom_slice(phantom, k * SLICE_STEP, size)
            scans = simulate_scan(mu, theta, i0, pixel_mm, noise_rng, pair_rng)
            yield tuple(scan.astype(np.float32) for scan in scans)
            done += 1


@dataclass(frozen=True)
class ScanVariety:
    """How the scans of a training set vary, so one model learns every dose and view count.

    Each volume is scanned ``draws`` times, each scan with independent Poisson noise at
    its own dose, log-uniform in ``[i0, i0_max]`` (users do not know their photon count),
    and with probability ``sparse_fraction`` from only ``v`` of the views (``v`` drawn
    from ``sparse_views``; each must divide the full view count). The clean target is
    always the full-view, noise-free reconstruction, so sparse scans teach the removal
    of view-aliasing streaks as well as noise. All slices of one scan share its
    settings, like the slices of a real scan (models with ``--depth`` > 1 read them
    together).
    """

    i0_max: float | None = None
    sparse_fraction: float = 0.0
    sparse_views: tuple[int, ...] = (45,)
    draws: int = 1

    @property
    def varied(self) -> bool:
        return self.i0_max is not None or self.sparse_fraction > 0 or self.draws > 1

    def check(self, i0: float, views: int) -> None:
        if self.i0_max is not None and not (math.isfinite(self.i0_max) and self.i0_max >= i0):
            raise CTDatasetError(f"i0_max must be a number >= i0 ({i0:g}), got {self.i0_max}")
        if not 0 <= self.sparse_fraction <= 1:
            raise CTDatasetError(f"sparse_fraction must be in [0, 1], got {self.sparse_fraction}")
        for v in self.sparse_views if self.sparse_fraction > 0 else ():
            if int(v) != v or v < 1 or views % v:
                raise CTDatasetError(f"sparse_views must divide views ({views}) evenly, got {v}")
        if int(self.draws) != self.draws or self.draws < 1:
            raise CTDatasetError(f"draws must be an integer >= 1, got {self.draws}")

    def scan(self, rng: np.random.Generator, i0: float, views: int) -> tuple[float, int]:
        """(photons per ray, view stride) of one scan."""
        dose = (
            i0
            if self.i0_max is None
            else float(np.exp(rng.uniform(np.log(i0), np.log(self.i0_max))))
        )
        stride = 1
        if rng.uniform() < self.sparse_fraction:
            stride = views // int(self.sparse_views[rng.integers(len(self.sparse_views))])
        return dose, stride


def _varied_slices(
    n: int,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float,
    per_volume: int,
    rng: np.random.Generator,
    variety: ScanVariety,
) -> Iterator[tuple[np.ndarray, ...]]:
    """`_slices` under a `ScanVariety`: volume by volume, each scanned ``draws`` times."""
    theta = _theta(views)
    recon = dict(output_size=size, filter_name="ramp", circle=True)
    done = 0
    while done < n:
        vol_seed = np.random.SeedSequence(int(rng.integers(2**63)))
        phantom_rng, noise_rng, scan_rng = (np.random.default_rng(s) for s in vol_seed.spawn(3))
        phantom = random_phantom(phantom_rng, (per_volume - 1) * SLICE_STEP / 2)
        count = min(per_volume, -(-(n - done) // variety.draws))
        sinograms = [
            radon(phantom_slice(phantom, k * SLICE_STEP, size), theta=theta, circle=True) * pixel_mm
            for k in range(count)
        ]
        cleans = [
            (iradon(p, theta=theta, **recon) / pixel_mm).astype(np.float32) for p in sinograms
        ]
        for _ in range(variety.draws):
            dose, stride = variety.scan(scan_rng, i0, views)
            for p, clean in zip(sinograms, cleans, strict=True):
                if done >= n:
                    return
                p_noisy = low_dose_line_integrals(p[:, ::stride], dose, noise_rng)
                noisy = iradon(p_noisy, theta=theta[::stride], **recon) / pixel_mm
                yield noisy.astype(np.float32), clean
                done += 1


def mean_psnr(noisy: np.ndarray, clean: np.ndarray) -> float:
    """Mean per-slice PSNR (dB) of ``noisy`` vs ``clean`` stacks (N, H, W).

    ``data_range`` is max - min of ``clean`` over the whole stack, so all slices share one
    scale (as in TomoGAN evaluation).
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    if noisy.shape != clean.shape or noisy.ndim != 3:
        raise ValueError(f"expected two equal (N, H, W) stacks, got {noisy.shape}, {clean.shape}")
    data_range = float(clean.max() - clean.min())
    mse = np.mean((noisy - clean) ** 2, axis=(1, 2))
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(data_range**2 / mse)
    return float(np.mean(psnr))


# --------------------------------------------------------------------------------------------
# HDF5 output
# --------------------------------------------------------------------------------------------


class _Progress:
    """Progress with ETA on stderr: one rewritten line on a terminal, else a line per 10%."""

    def __init__(
        self, total: int, enabled: bool, prog: str = "make_ct_dataset", unit: str = "slices"
    ) -> None:
        self.total, self.enabled = total, enabled
        self.prog, self.unit = prog, unit
        self.start = time.monotonic()
        self.live = enabled and sys.stderr.isatty()
        self.reported = 0  # tenths already logged when not on a terminal

    def update(self, done: int, label: str) -> None:
        if not self.enabled:
            return
        tenths = 10 * done // self.total
        if not self.live and tenths <= self.reported and done != self.total:
            return
        self.reported = tenths
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else float("nan")
        line = (
            f"{self.prog}: {label} {done}/{self.total} {self.unit}, "
            f"{elapsed:5.1f}s elapsed, ETA {eta:5.1f}s"
        )
        sys.stderr.write(f"\r{line} " if self.live else f"{line}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _check_output(path: str, overwrite: bool) -> None:
    """Raise CTDatasetError unless ``path`` is a file name that may be written."""
    if os.path.isdir(path):
        raise CTDatasetError(f"output path is a directory: {path}")
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(f"output file exists: {path} (pass --overwrite to replace it)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CTDatasetError(f"output directory does not exist: {directory}")


@contextmanager
def _temporary_outputs(paths: Sequence[str]) -> Iterator[list[str]]:
    """Temporary names for ``paths``, renamed onto them when the block ends normally.

    The names sit next to their outputs and are renamed in order; if the block raises
    (Ctrl-C and SIGTERM included), every temporary file is removed instead.
    """
    tmps = [f"{path}.tmp-{os.getpid()}" for path in paths]
    try:
        yield tmps
        for path, tmp in zip(paths, tmps, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise


def make_ct_dataset(
    path: str | os.PathLike[str],
    n_train: int = 64,
    n_test: int = 16,
    size: int = 256,
    views: int = DEFAULT_VIEWS,
    i0: float = 1e4,
    pixel_mm: float | None = None,
    slices_per_volume: int = 16,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    kind: str = "supervised",
    variety: ScanVariety | None = None,
) -> None:
    """Write a synthetic low-dose CT dataset to ``path`` in the TomoGAN HDF5 layout.

    ``kind`` picks the stacks (see `KINDS` and the module docstring): ``"supervised"``
    (noisy/clean pairs), ``"noisy"`` (noisy training slices only) or ``"pairs"`` (two
    independent noisy scans per training slice); test splits always include ``test_gt``,
    for evaluation only.  Deterministic for given arguments.  Train and test use
    independent child seeds of ``seed``, so changing ``n_train`` leaves the test set
    unchanged.  The file is written to a temporary name next to ``path`` and renamed when
    complete, so an interrupted run never leaves a partial file at ``path``.  Raises
    CTDatasetError (OutputExistsError if ``path`` exists and not ``overwrite``).
    ``variety`` (supervised only) varies dose, view count and noise draws per scan
    (`ScanVariety`); without it every scan has ``i0`` photons and all ``views``.
    """
    path = os.fspath(path)
    if kind not in KINDS:
        raise CTDatasetError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    pixel_mm = _check(
        n_train=n_train,
        n_test=n_test,
        size=size,
        views=views,
        i0=i0,
        pixel_mm=pixel_mm,
        slices_per_volume=slices_per_volume,
    )
    if int(seed) != seed or seed < 0:
        raise CTDatasetError(f"seed must be a non-negative integer, got {seed}")
    variety = variety or ScanVariety()
    variety.check(float(i0), int(views))
    if variety.varied and kind != "supervised":
        raise CTDatasetError("dose ranges, sparse views and draws apply to --kind supervised")
    _check_output(path, overwrite)

    train_seed, test_seed = np.random.SeedSequence(int(seed)).spawn(2)
    theta = _theta(views)
    splits: Sequence[tuple[str, int, np.random.SeedSequence]] = (
        ("train", int(n_train), train_seed),
        ("test", int(n_test), test_seed),
    )
    bar = _Progress(int(n_train) + int(n_test), progress)
    try:
        with _temporary_outputs([path]) as (tmp,), h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "i0": float(i0),
                    "views": int(views),
                    "pixel_mm": float(pixel_mm),
                    "seed": int(seed),
                    "size": int(size),
                    "slices_per_volume": int(slices_per_volume),
                    "slice_step_mm": SLICE_STEP * size * pixel_mm / 2,
                    "n_train": int(n_train),
                    "n_test": int(n_test),
                    "units": "1/mm",
                    "generator": GENERATOR,
                    "description": (
                        "Synthetic low-dose CT: anatomy-like 3D ellipsoid phantoms, parallel-beam "
                        "radon, Poisson noise counts~Poisson(i0*exp(-p)) clamped >= 0.1; ns/gt = "
                        "ramp FBP of noisy/noise-free sinograms (same views)."
                    ),
                }
            )
            if variety.varied:
                f.attrs.update(
                    {
                        "i0_max": float(variety.i0_max or i0),
                        "sparse_fraction": float(variety.sparse_fraction),
                        "sparse_views": np.asarray(variety.sparse_views, np.int64),
                        "draws": int(variety.draws),
                        "variety": (
                            "each volume scanned `draws` times, dose log-uniform in"
                            " [i0, i0_max], a `sparse_fraction` of the scans from only"
                            " `sparse_views` views; gt = full-view noise-free FBP"
                        ),
                    }
                )
            if kind != "supervised":  # supervised files stay bit-identical to older ones
                f.attrs["kind"] = kind
                f.attrs["training_keys"] = ",".join(f"train_{s}" for s in KINDS[kind][0])
                f.attrs["note"] = (
                    "Self-supervised dataset: training reads only the train_* stacks; "
                    "test_gt is for evaluation only."
                )
            f.create_dataset("theta", data=theta).attrs["units"] = "degrees"
            done = 0
            for (name, n, split_seed), stacks in zip(splits, KINDS[kind], strict=True):
                shape = (n, size, size)
                datasets = {
                    stack: f.create_dataset(
                        f"{name}_{stack}", shape, dtype="f4", chunks=(1, size, size)
                    )
                    for stack in stacks
                }
                if kind != "supervised" and "gt" in datasets:
                    datasets["gt"].attrs["use"] = "evaluation only; never read for training"
                if variety.varied:
                    stream = _varied_slices(
                        n,
                        int(size),
                        int(views),
                        float(i0),
                        float(pixel_mm),
                        int(slices_per_volume),
                        np.random.default_rng(split_seed),
                        variety,
                    )
                else:
                    stream = simulate_slices(
                        n,
                        size,
                        views,
                        i0,
                        pixel_mm,
                        slices_per_volume,
                        np.random.default_rng(split_seed),
                        pairs="ns2" in datasets,
                    )
                for i, scans in enumerate(stream):
                    for stack, image in zip(("ns", "gt", "ns2"), scans, strict=False):
                        if stack in datasets:
                            datasets[stack][i] = image
                    done += 1
                    bar.update(done, name)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _define_flags() -> None:
    """Register the CLI flags (only when run as a program, so importing never clashes)."""
    from absl import flags

    flags.DEFINE_string("out", None, "Output HDF5 file (required).")
    flags.DEFINE_enum(
        "kind",
        "supervised",
        list(KINDS),
        "supervised: train_ns/train_gt pairs; noisy: train_ns only (self-supervised); pairs: "
        "train_ns/train_ns2, two independent noisy scans (Noise2Noise). Test splits always "
        "hold test_gt, for evaluation only.",
    )
    flags.DEFINE_integer("n_train", 64, "Number of training slices.")
    flags.DEFINE_integer("n_test", 16, "Number of test slices (independent volumes).")
    flags.DEFINE_integer("size", 256, "Image height = width in pixels (even, >= 16).")
    flags.DEFINE_integer(
        "views",
        DEFAULT_VIEWS,
        "Projection angles, uniform in [0, 180) degrees. 360 is near the angular Nyquist rate "
        "(~pi/2*size) for size 256; fewer views give sparse-view data (streaks in both ns and gt).",
    )
    flags.DEFINE_float("i0", 1e4, "Incident photons per detector ray (lower = noisier).")
    flags.DEFINE_float(
        "pixel_mm",
        None,
        f"Pixel size in mm (default {DEFAULT_FOV_MM:g}/size, i.e. a {DEFAULT_FOV_MM:g} mm field "
        "of view: body line integrals reach p ~ 3.5-5).",
    )
    flags.DEFINE_integer(
        "slices_per_volume", 16, "Adjacent, correlated slices cut from each random 3D phantom."
    )
    flags.DEFINE_float(
        "i0_max",
        None,
        "With it, each scan's dose is log-uniform in [--i0, --i0_max] (one model for all doses).",
    )
    flags.DEFINE_float(
        "sparse_fraction",
        0.0,
        "Share of scans made from only --sparse_views views; their target is still the"
        " full-view clean reconstruction (teaches streak removal).",
    )
    flags.DEFINE_list(
        "sparse_views", ["45"], "View counts for sparse scans, each dividing --views."
    )
    flags.DEFINE_integer(
        "draws", 1, "Independent scans (noise, dose, views) of every volume (supervised)."
    )
    flags.DEFINE_integer("seed", 0, "Random seed (same flags + seed -> bit-identical arrays).")
    flags.DEFINE_boolean("overwrite", False, "Replace --out if it exists (otherwise exit 2).")


def parse_flags(argv: list[str], prog: str = "make_ct_dataset") -> list[str]:
    """absl flag parsing, but a bad flag is one line on stderr and exit 2 (not absl's 1)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)


def run_main(
    prog: str,
    argv: list[str],
    make: Callable[..., None],
    names: Sequence[str],
    summary: Callable[[Any, float], str],
) -> None:
    """A generator's ``main``: check the arguments, write ``--out``, print the summary.

    Calls ``make(--out, progress=True, name=--name ...)`` for each flag in ``names`` (the
    flags are named as ``make``'s keywords), then prints ``summary(flags.FLAGS, seconds)``.
    A missing ``--out``, a stray argument or a CTDatasetError is one line on stderr and
    exit 2.
    """
    from absl import flags

    cfg = flags.FLAGS
    problem = None
    if len(argv) > 1:
        problem = f"unexpected arguments: {' '.join(argv[1:])}"
    elif not cfg.out:
        problem = "--out is required (the HDF5 file to write)"
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(2)
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C, so the partial temporary files go too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    start = time.monotonic()
    try:
        make(cfg.out, progress=True, **{name: getattr(cfg, name) for name in names})
    except CTDatasetError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(summary(cfg, time.monotonic() - start))


def main(argv: list[str]) -> None:
    names = (
        "n_train", "n_test", "size", "views", "i0", "pixel_mm", "slices_per_volume", "seed",
        "overwrite", "kind",
    )  # fmt: skip
    from absl import flags

    cfg = flags.FLAGS
    try:
        views = tuple(int(v) for v in cfg.sparse_views)
    except ValueError:
        print(f"make_ct_dataset: error: --sparse_views must be integers, got {cfg.sparse_views}",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    variety = ScanVariety(cfg.i0_max, cfg.sparse_fraction, views, cfg.draws)

    def make(path: str, **kwargs: Any) -> None:
        make_ct_dataset(path, variety=variety, **kwargs)

    def summary(cfg: Any, seconds: float) -> str:
        return _summary(cfg.out, cfg.kind, seconds)

    run_main("make_ct_dataset", argv, make, names, summary)


def _summary(path: str, kind: str, seconds: float) -> str:
    """The one-line report of what a run wrote, per kind."""
    with h5py.File(path, "r") as f:
        train_shape = f["train_ns"].shape
        test_ns, test_gt = f["test_ns"][...], f["test_gt"][...]
        psnr2 = mean_psnr(f["test_ns2"][...], test_gt) if kind == "pairs" else None
    psnr = f"mean PSNR test_ns vs test_gt {mean_psnr(test_ns, test_gt):.2f} dB"
    if kind == "supervised":
        what = f"train_ns/train_gt {train_shape}, test_ns/test_gt {test_ns.shape}"
    elif kind == "noisy":
        what = (
            f"train_ns {train_shape} (noisy only, no clean training data), test_ns/test_gt "
            f"{test_ns.shape} (test_gt for evaluation only)"
        )
    else:
        what = (
            f"train_ns/train_ns2 {train_shape} (independent noise pairs), "
            f"test_ns/test_ns2/test_gt {test_ns.shape} (test_gt for evaluation only)"
        )
        psnr += f" (test_ns2 {psnr2:.2f} dB)"
    return f"make_ct_dataset: wrote {path}: {what} float32 [1/mm]; {psnr}; {seconds:.1f}s"


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main, flags_parser=parse_flags)
