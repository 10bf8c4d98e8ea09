"""Training phantoms: random anatomy-like 3D objects, cut analytically into CT slices.

`random_phantom` draws a thorax, abdomen/pelvis or head made of ellipsoids and z-invariant
boxes (fat, organs, lungs, bowel gas, cortical bone shells, calcifications, patient table /
head-rest and cushions) with smooth textures from random low-frequency 3D plane waves;
`phantom_slice` renders one slice of it.  Nothing is voxelised: every slice is computed
from the object list, so consecutive slices of one phantom are correlated like adjacent
CT slices and any slice spacing costs the same.  The same building blocks (`Ellipsoid`,
`Box`, `Phantom3D`, `plane_waves`) make the held-out styles of `data_tools.phantoms_heldout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "SLICE_STEP",
    "Box",
    "Ellipsoid",
    "Phantom3D",
    "phantom_slice",
    "plane_waves",
    "random_phantom",
]

#: Distance between adjacent slices in normalised units (1 = half the field of view), i.e.
#: 2.56 mm at the default field of view.
SLICE_STEP = 0.02

_SUPERSAMPLE = 2
_RADIUS = 0.9  # all anatomy lies inside this normalised radius (reconstruction circle is 1)


@dataclass(frozen=True)
class Ellipsoid:
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
        """``(centre x, centre y, a, b)`` of the cross-section at height z, None if missed."""
        dz = z - self.cz
        s = 1.0 - (dz / self.c) ** 2
        if s <= 0.0:
            return None
        r = math.sqrt(s)
        return self.cx + self.sx * dz, self.cy + self.sy * dz, self.a * r, self.b * r


@dataclass(frozen=True)
class Box:
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
    objects: list[Ellipsoid | Box] = field(default_factory=list)
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
        if isinstance(obj, Box):
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


def plane_waves(rng: np.random.Generator, k: int, lam_lo: float, lam_hi: float) -> np.ndarray:
    """k random 3D plane waves with wavelengths in [lam_lo, lam_hi]; unit total variance.

    A (k, 5) array of rows ``[kx, ky, kz, phase, amplitude]`` for `Phantom3D.waves`: the
    smooth, slice-to-slice coherent texture of soft tissue, cheap to evaluate per slice.
    """
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
) -> list[Ellipsoid]:
    """A bone shell (cortex) around a softer core, with thickness varying around the ring."""
    ta, tb = thickness * rng.uniform(0.7, 1.4, size=2)
    ox, oy = thickness * rng.uniform(-0.3, 0.3, size=2)
    common = dict(cz=cz, c=c, theta=theta, sx=sx, sy=sy)
    return [
        Ellipsoid(cx, cy, a=a, b=b, value=bone, texture=0.04, **common),
        Ellipsoid(
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
) -> list[Ellipsoid]:
    """Stack of vertebrae (cortical shell + marrow, posterior arch, canal) with discs.

    ``vy`` is moved up if needed so the spinous process stays above ``max_y`` (inside the body).
    """
    u = rng.uniform
    a = u(0.075, 0.105)
    b = a * u(0.75, 0.95)
    canal_r = u(0.03, 0.045)
    vy = min(vy, max_y - (b + 2 * canal_r + 0.095) - 0.03)
    objs = [Ellipsoid(vx, vy, zc, a * 0.97, b * 0.97, math.inf, value=u(0.021, 0.0225))]
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
        objs.append(Ellipsoid(vx, arch_y + canal_r + 0.04, a=0.02, b=0.045, value=bone, **common))
        z += pitch
    return objs


def _table(
    rng: np.random.Generator, bottom: float, ex: float, ea: float, with_cushion: bool
) -> list[Box | Ellipsoid]:
    """Patient table (thin dense-ish bar) below ``bottom``, with an optional cushion."""
    u = rng.uniform
    objs: list[Box | Ellipsoid] = []
    gap = u(0.03, 0.07) if with_cushion else u(0.005, 0.03)
    y0 = bottom + gap
    y1 = y0 + u(0.015, 0.035)
    if y1 > _RADIUS - 0.01:
        return objs
    w = min(math.sqrt(_RADIUS**2 - y1**2), u(0.6, 1.0) * ea + 0.2)
    if with_cushion:  # painted before the body, so only the part below the body shows
        wc = min(w, u(0.45, 0.8) * ea)
        objs.append(Box(-wc + ex, wc + ex, bottom - 0.12, y0, u(0.003, 0.006), texture=0.1))
    objs.append(Box(-w, w, y0, y1, u(0.008, 0.025)))
    return objs


def _torso(rng: np.random.Generator, zc: float, kind: str) -> list[Ellipsoid | Box]:
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

    objs: list[Ellipsoid | Box] = []
    if rng.random() < 0.7:
        objs += _table(rng, cy + _y_extent(a, b, theta), cx, ea, rng.random() < 0.7)
    fat = u(0.02, 0.07)
    soft = u(0.0195, 0.0215)
    objs.append(Ellipsoid(cx, cy, a=a, b=b, value=u(0.0172, 0.019), texture=0.03, **body))
    objs.append(
        Ellipsoid(
            cx, cy, a=a - fat, b=b - fat * u(0.6, 1.2), value=soft, texture=u(0.02, 0.05), **body
        )
    )

    def organ(x: float, y: float, oa: float, ob: float, value: float, **kw) -> Ellipsoid:
        kw.setdefault("c", u(0.25, 0.8))
        kw.setdefault("cz", zc + u(-0.3, 0.3))
        kw.setdefault("texture", u(0.01, 0.04))
        return Ellipsoid(cx + x * ea, cy + y * eb, a=oa, b=ob, value=value, **kw)

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


def _head(rng: np.random.Generator, zc: float) -> list[Ellipsoid | Box]:
    u = rng.uniform
    a = u(0.56, 0.68)
    b = a * u(1.1, 1.25)
    cx, cy = u(-0.03, 0.03), u(-0.12, -0.05)
    theta = u(-0.1, 0.1)
    scale = min(1.0, (_RADIUS - 0.1 - math.hypot(cx, cy)) / max(a, b))
    a, b = a * scale, b * scale
    c, cz = u(0.9, 1.3), zc + u(-0.4, 0.4)
    ea, eb = a, b
    objs: list[Ellipsoid | Box] = []
    bottom = cy + _y_extent(a, b, theta)
    if rng.random() < 0.7:  # head-rest: cushion crescent + holder bar
        cb = min(u(0.05, 0.1), _RADIUS - 0.06 - bottom)
        if cb > 0.02:
            objs.append(
                Ellipsoid(
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
    objs.append(Ellipsoid(cx, cy, a=a, b=b, value=u(0.0195, 0.021), texture=0.02, **common))
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

    def inner(x: float, y: float, oa: float, ob: float, value: float, **kw) -> Ellipsoid:
        kw.setdefault("c", u(0.15, 0.5))
        kw.setdefault("cz", zc + u(-0.3, 0.3))
        kw.setdefault("theta", u(-np.pi, np.pi))
        return Ellipsoid(cx + x * ea, cy + y * eb, a=oa, b=ob, value=value, **kw)

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
    waves = [plane_waves(rng, 6, 0.15, 0.7), plane_waves(rng, 8, 0.04, 0.12)]
    return Phantom3D(kind=kind, objects=objects, waves=waves)
