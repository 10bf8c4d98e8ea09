"""Held-out phantom styles: anatomy, textures and supports that training never sees.

Training phantoms (`data_tools.phantoms`) are thorax, abdomen and vault-level head slices
at 1 mm pixels.  A benchmark scored on those says how well a model fits that generator;
these styles are built to be *unlike* it (see `data_tools.make_heldout_ct` for the file
and the scanning protocol):

``knee``   (0.7 mm pixels, 179 mm field of view) a single limb at the patello-femoral level
           (femur + patella) or just below the joint (tibia + fibula): cortical shells of
           varying thickness around trabecular bone (a ridge-network texture, not the plane
           waves of training), muscle groups separated by thin fat planes, popliteal fat with
           vessels, subcutaneous fat, skin, a foam bolster and a curved sandwich tabletop.
``head2``  (0.8 mm pixels, 205 mm) a skull-base slice: orbits, ethmoid and sphenoid air,
           clivus, pons, cerebellum with folia texture, dense petrous bones, pneumatised
           mastoids, ear canals and pinnae, a thin skull and a U-shaped foam-lined cradle.
``pelvis`` (1.4 mm pixels, 358 mm) the hip-joint level: femoral heads in acetabula, necks
           and trochanters, ischia, pubic rami, coccyx, bladder, uterus/prostate, rectum with
           gas and stool, phleboliths, femoral vessels, muscles in fat planes, a mattress and
           a curved tabletop.
``shepp``  (0.9 mm pixels, 230 mm) a randomly perturbed, textured Shepp-Logan phantom at the
           original 1-4 % soft-tissue inner contrasts, in attenuation units.

Objects are placed in millimetres by a small frame builder and stored as the same
`Ellipsoid` / `Box` primitives as training, so `phantom_slice` renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_tools.errors import CTDatasetError
from data_tools.phantoms import SLICE_STEP, Box, Ellipsoid, Phantom3D, plane_waves

__all__ = [
    "HELDOUT_SLICE_STEP",
    "STYLES",
    "STYLE_FOV_MM",
    "HeldoutPhantom",
    "heldout_phantom",
]

#: Phantom styles, in seed order (each style's child seed is fixed by its place here).
STYLES = ("knee", "head2", "pelvis", "shepp")
#: Field of view per style (mm); pixel_mm = FOV / size: 0.7, 0.8, 1.4 and 0.9 mm at size 256.
STYLE_FOV_MM = {"knee": 0.7 * 256, "head2": 0.8 * 256, "pelvis": 1.4 * 256, "shepp": 0.9 * 256}
#: Slice distance in normalised units (1 = half the field of view): 0.6x training's SLICE_STEP.
HELDOUT_SLICE_STEP = 0.6 * SLICE_STEP

_R_MAX = 0.95  # anatomy and supports stay inside this fraction of the reconstruction circle
# texture fields of every held-out phantom (indices into Phantom3D.waves)
_F_LOW, _F_MID, _F_TRAB, _F_FINE = range(4)
_RIDGE_W = 0.35  # width of the trabecular ridges, in standard deviations of the wave field
_RIDGE_MEAN = _RIDGE_W / math.sqrt(_RIDGE_W**2 + 1.0)
_RIDGE_STD = math.sqrt(_RIDGE_W / math.sqrt(_RIDGE_W**2 + 2.0) - _RIDGE_MEAN**2)


# --------------------------------------------------------------------------------------------
# phantom building blocks
# --------------------------------------------------------------------------------------------


@dataclass
class HeldoutPhantom(Phantom3D):
    """Phantom3D whose ``ridged`` texture fields are turned into a trabecular-like network.

    A ridged field is ``exp(-g^2 / (2 w^2))`` of the plane-wave field g (approximately unit
    Gaussian), standardised to zero mean and unit variance: bright thin walls along the zero
    set of g (a 3D labyrinth, so adjacent slices show related trabeculae), darker spaces
    between.  Training never uses this texture.
    """

    ridged: tuple[int, ...] = ()

    def texture(self, index: int, z: float, coords: np.ndarray) -> np.ndarray:
        """Texture field ``index`` at height z, ridged if ``index`` is in ``ridged``."""
        out = super().texture(index, z, coords)
        if index in self.ridged:
            out = (np.exp(-(out**2) / (2.0 * _RIDGE_W**2)) - _RIDGE_MEAN) / _RIDGE_STD
        return out


class _Builder:
    """Collects the objects of one phantom, placed in millimetres in a local frame.

    Local coordinates (x right, y down = posterior for a supine patient, in mm) are scaled by
    ``scale``, rotated by ``rotation`` and moved to ``origin`` (world mm, image centre = 0),
    then normalised by ``half_mm`` (half the field of view).  ``dz`` offsets (local mm) place
    an object's centre along z relative to the slab centre ``zc`` (normalised).  The whole
    frame leans by ``tilt`` (in-plane shift per unit z, shared by all objects so the anatomy
    stays coherent from slice to slice).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        half_mm: float,
        zc: float,
        objects: list[Ellipsoid | Box] | None = None,
        *,
        origin: tuple[float, float] = (0.0, 0.0),
        rotation: float = 0.0,
        scale: float = 1.0,
        tilt: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.rng, self.half, self.zc = rng, half_mm, zc
        self.objects: list[Ellipsoid | Box] = [] if objects is None else objects
        self.origin, self.rotation, self.scale = origin, rotation, scale
        self.tilt = (float(tilt[0]), float(tilt[1]))

    def frame(self, **kw: Any) -> _Builder:
        """Another frame that paints into the same object list."""
        return _Builder(self.rng, self.half, self.zc, self.objects, **kw)

    def world(self, x: float, y: float) -> tuple[float, float]:
        """World millimetres of local point (x, y)."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        k = self.scale
        return self.origin[0] + k * (x * c - y * s), self.origin[1] + k * (x * s + y * c)

    def ell(
        self,
        x: float,
        y: float,
        a: float,
        b: float,
        value: float,
        *,
        theta: float = 0.0,
        c: float = math.inf,
        dz: float = 0.0,
        section: bool = True,
        texture: float = 0.0,
        field: int = 0,
        lean: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """Paint an ellipsoid; with ``section``, (a, b) is its cross-section at the slab centre.

        ``c`` is the z semi-axis (inf: elliptic cylinder), ``dz`` the centre's z offset.
        Without ``section`` (spheres, air cells) a, b, c are the true semi-axes, so an object
        whose centre is off the slab may be small or missing in some slices.
        """
        if math.isfinite(c):
            dz = float(np.clip(dz, -0.85 * c, 0.85 * c))
            if section:
                r = math.sqrt(1.0 - (dz / c) ** 2)
                a, b = a / r, b / r
        s = self.scale / self.half
        wx, wy = self.world(x, y)
        sx, sy = self.tilt[0] + lean[0], self.tilt[1] + lean[1]
        cz = self.zc + dz * s
        # the leaning axis passes through (wx, wy) at the slab centre
        cx = wx / self.half + sx * (cz - self.zc)
        cy = wy / self.half + sy * (cz - self.zc)
        self.objects.append(
            Ellipsoid(
                cx,
                cy,
                cz,
                a=a * s,
                b=b * s,
                c=c * s,
                value=value,
                theta=theta + self.rotation,
                sx=sx,
                sy=sy,
                texture=texture,
                field=field,
            )
        )

    def seg(
        self, x0: float, y0: float, x1: float, y1: float, half_width: float, value: float, **kw
    ) -> None:
        """An ellipse whose long axis runs from (x0, y0) to (x1, y1): walls, canals, muscles."""
        length = math.hypot(x1 - x0, y1 - y0) / 2.0
        self.ell(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            max(length, half_width),
            half_width,
            value,
            theta=math.atan2(y1 - y0, x1 - x0),
            **kw,
        )

    def shell(
        self,
        x: float,
        y: float,
        a: float,
        b: float,
        thickness: float,
        inner: float,
        *,
        bone: float,
        theta: float = 0.0,
        vary: float = 0.45,
        inner_texture: float = 0.0,
        inner_field: int = _F_LOW,
        **kw,
    ) -> None:
        """Cortex of varying thickness (per axis and off-centre core) around a core value."""
        u = self.rng.uniform
        ta, tb = thickness * u(1.0 - vary, 1.0 + vary, size=2)
        ox, oy = thickness * u(-0.45, 0.45, size=2)
        c, st = math.cos(theta), math.sin(theta)
        self.ell(x, y, a, b, bone, theta=theta, texture=0.03, field=_F_MID, **kw)
        self.ell(
            x + ox * c - oy * st,
            y + ox * st + oy * c,
            max(a - ta, 0.3 * a),
            max(b - tb, 0.3 * b),
            inner,
            theta=theta,
            texture=inner_texture,
            field=inner_field,
            **kw,
        )

    def bone(
        self,
        x: float,
        y: float,
        a: float,
        b: float,
        *,
        cortex: float,
        bone: float,
        marrow: float,
        trabecular: float,
        **kw,
    ) -> None:
        """A bone: cortical shell around trabecular bone with the ridge-network texture."""
        self.shell(
            x,
            y,
            a,
            b,
            cortex,
            marrow,
            bone=bone,
            inner_texture=trabecular,
            inner_field=_F_TRAB,
            **kw,
        )

    def bone_seg(self, x0: float, y0: float, x1: float, y1: float, half_width: float, **kw) -> None:
        """`bone` along a segment (femoral neck, ischium, pubic ramus)."""
        length = max(math.hypot(x1 - x0, y1 - y0) / 2.0, half_width)
        self.bone(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            length,
            half_width,
            theta=math.atan2(y1 - y0, x1 - x0),
            **kw,
        )

    def box(
        self, x0: float, x1: float, y0: float, y1: float, value: float, texture: float = 0.0
    ) -> None:
        """Axis-aligned z-invariant box in world mm (supports and cut-outs; ignores the frame)."""
        h = self.half
        self.objects.append(Box(x0 / h, x1 / h, y0 / h, y1 / h, value, texture, _F_MID))


def _u(rng: np.random.Generator):
    return rng.uniform


def _curved_table(
    w: _Builder, top_y: float, *, pad: float = 0.0, pad_value: float = 0.0
) -> float | None:
    """Curved carbon-fibre sandwich tabletop whose upper surface is at ``top_y`` (world mm).

    Concave upwards (a ring of a large circle centred above the patient), two carbon skins
    around a foam core, optionally with a ``pad`` mm foam mattress on top.  Cut to stay inside
    the reconstruction circle.  Returns the table's lowest y, or None if it does not fit.
    Paint it before the patient (the patient overwrites it).
    """
    u = _u(w.rng)
    lim = _R_MAX * w.half
    radius, thick, skin = u(300.0, 500.0), u(8.0, 15.0), u(1.0, 1.8)
    bottom = top_y + thick
    if bottom >= lim - 1.0:
        return None
    carbon, core = u(0.02, 0.03), u(0.001, 0.003)
    cy = top_y - radius  # circle centre, far above
    rings = [(radius + thick, carbon), (radius + thick - skin, core), (radius + skin, carbon)]
    if pad > 0:
        rings += [(radius, pad_value), (radius - pad, 0.0)]
    else:
        rings.append((radius, 0.0))
    for r, value in rings:
        w.ell(0.0, cy, r, r, value, texture=0.08 if value == pad_value else 0.0, field=_F_MID)
    depth = u(10.0, 25.0) + pad
    half_width = math.sqrt(max(lim**2 - bottom**2, 0.0))
    big = 2.0 * w.half
    w.box(-big, big, -big, top_y - depth, 0.0)  # keep only the bottom of the ring
    w.box(-big, -half_width, -big, big, 0.0)
    w.box(half_width, big, -big, big, 0.0)
    return bottom


def _fat_ring_muscle(
    f: _Builder,
    x: float,
    y: float,
    a: float,
    b: float,
    value: float,
    fat: float,
    plane: float,
    **kw,
) -> None:
    """A muscle group with a thin fat plane around it (overlapping groups stay separated)."""
    kw.setdefault("texture", f.rng.uniform(0.008, 0.018))
    kw.setdefault("field", _F_FINE)
    theta = kw.pop("theta", 0.0)
    f.ell(x, y, a + plane, b + plane, fat, theta=theta, c=kw.get("c", math.inf), dz=kw.get("dz", 0))
    f.ell(x, y, a, b, value, theta=theta, **kw)


# --------------------------------------------------------------------------------------------
# styles
# --------------------------------------------------------------------------------------------


def _knee(rng: np.random.Generator, zc: float, half: float) -> list[Ellipsoid | Box]:
    """Single knee/proximal leg: femur + patella or tibia + fibula, muscles, fat planes."""
    u = rng.uniform
    w = _Builder(rng, half, zc)
    lat = 1.0 if rng.random() < 0.5 else -1.0  # which side is lateral (left or right knee)
    femoral = rng.random() < 0.5  # femur + patella (else tibia + fibula)
    big_a, big_b = u(50.0, 62.0), u(48.0, 58.0)
    cx, cy, rot = u(-6.0, 6.0), u(-16.0, -8.0), u(-0.15, 0.15)
    tilt = tuple(np.clip(rng.normal(0.0, 0.05, size=2), -0.1, 0.1))
    leg = w.frame(origin=(cx, cy), rotation=rot, tilt=tilt)
    bottom = cy + math.hypot(big_a * math.sin(rot), big_b * math.cos(rot))

    # supports: foam bolster under the knee, then the curved tabletop
    bolster = rng.random() < 0.7
    bb = u(7.0, 13.0)
    if rng.random() < 0.85:  # the table first: its cut-outs would erase anything before it
        _curved_table(w, bottom + (1.3 * bb if bolster else 0.0) + u(0.0, 2.0))
    if bolster:
        w.ell(
            cx + u(-5, 5),
            bottom + 0.3 * bb,
            u(28.0, 42.0),
            bb,
            u(0.003, 0.007),
            texture=0.1,
            field=_F_MID,
        )

    skin_t, fat_t = u(1.2, 2.2), u(4.0, 12.0)
    skin, fat, muscle = u(0.0200, 0.0210), u(0.0170, 0.0180), u(0.0202, 0.0213)
    leg.ell(0, 0, big_a, big_b, skin, texture=0.01, field=_F_LOW)
    leg.ell(0, 0, big_a - skin_t, big_b - skin_t, fat, texture=0.02, field=_F_LOW)
    ma, mb = big_a - skin_t - fat_t, big_b - skin_t - fat_t * u(0.6, 1.3)
    mox, moy = u(-2.0, 2.0), u(-1.0, 3.0)
    leg.ell(mox, moy, ma, mb, muscle, texture=0.012, field=_F_MID)

    # muscle groups around the compartment, not where bone is subcutaneous
    skip = -math.pi / 2 if femoral else math.atan2(-0.7, -lat * 0.7)
    n = int(rng.integers(5, 9))
    phis = skip + 0.8 + (2 * math.pi - 1.6) * (np.arange(n) + u(0.2, 0.8, size=n)) / n
    radius = 0.5 * (ma + mb)
    for phi in phis:
        ra = u(0.26, 0.36) * min(ma, mb)
        ta = 0.6 * radius * (2 * math.pi - 1.6) / n * u(0.55, 0.8)
        _fat_ring_muscle(
            leg,
            mox + 0.58 * ma * math.cos(phi),
            moy + 0.58 * mb * math.sin(phi),
            ra,
            ta,
            muscle * (1 + u(-0.02, 0.025)),
            fat * u(0.99, 1.02),
            u(0.7, 1.8),
            theta=phi,
        )

    bone_v, marrow = u(0.045, 0.058), u(0.021, 0.026)
    trab = u(0.1, 0.2)
    top = -big_b + skin_t
    if femoral:
        pa, pb = u(17.0, 24.0), u(8.0, 12.0)
        py, px = top + u(3.0, 8.0) + pb, u(-4.0, 4.0) + lat * u(0.0, 4.0)
        gap = u(2.5, 5.0)
        fa, fb = min(u(30.0, 38.0), 0.62 * big_a), u(22.0, 30.0)
        back = mb + moy - 18.0  # keep >= 18 mm of posterior soft tissue
        fb = min(fb, (back - (py + pb + gap)) / 2.0)
        fy, fx = py + pb + gap + fb, 0.5 * px + u(-3.0, 3.0)
        # popliteal fat with vessels and nerve, behind the femur
        pop_y = fy + fb + u(6.0, 10.0)
        leg.ell(
            fx + lat * u(-4, 4), pop_y, u(9.0, 14.0), u(6.0, 9.0), fat, texture=0.02, field=_F_LOW
        )
        for dx, r, v in (
            (-3.5, u(2.5, 3.5), u(0.0200, 0.0207)),
            (3.5, u(3.0, 4.5), u(0.0197, 0.0204)),
        ):
            leg.ell(fx + dx * lat, pop_y + u(-1, 1), r, r * u(0.8, 1.0), v)
        leg.ell(fx + lat * u(6, 9), pop_y + u(2, 4), u(1.8, 2.8), u(1.8, 2.5), u(0.0199, 0.0204))
        # prepatellar fat, quadriceps/patellar tendon, joint fluid and cartilage
        leg.ell(px, py - 2.0, pa + u(5, 9), pb + u(3, 6), fat, texture=0.02, field=_F_LOW)
        leg.ell(px, py - 0.5, pa + u(2, 4), pb + u(1.5, 3), u(0.0208, 0.0216))
        leg.ell(fx, py + pb + gap / 2, fa * u(0.7, 0.9), gap / 2 + u(1.0, 2.5), u(0.0192, 0.0197))
        leg.ell(fx, fy, fa + u(1.5, 2.5), fb + u(1.5, 2.5), u(0.0205, 0.0212), theta=u(-0.1, 0.1))
        ftheta = u(-0.15, 0.15)
        leg.bone(
            fx,
            fy,
            fa,
            fb,
            cortex=u(1.5, 3.5),
            bone=bone_v,
            marrow=marrow,
            trabecular=trab,
            theta=ftheta,
            c=u(50.0, 120.0),
            dz=u(-30.0, 30.0),
        )
        if rng.random() < 0.55:  # intercondylar notch: cortical roof, ligaments/fat inside
            # (open posteriorly: the fill reaches past the rim behind the femur)
            na, nb, t = u(6.0, 10.0), u(7.0, 12.0), u(1.2, 2.0)
            nx, ny = fx + u(-3, 3), fy + fb - nb * u(0.3, 0.7)
            leg.ell(nx, ny, na + t, nb + t, bone_v, theta=ftheta)
            leg.ell(
                nx,
                ny + t + 2.0,
                na,
                nb + t + 2.0,
                u(0.0185, 0.0203),
                theta=ftheta,
                texture=0.03,
                field=_F_MID,
            )
        leg.bone(
            px,
            py,
            pa,
            pb,
            cortex=u(1.0, 2.0),
            bone=bone_v,
            marrow=marrow * u(0.97, 1.05),
            trabecular=trab,
            theta=u(-0.25, 0.25),
            c=u(14.0, 22.0),
            dz=u(-5.0, 5.0),
        )
    else:
        tub = rng.random() < 0.6
        ta, tb = u(24.0, 33.0), u(19.0, 26.0)
        ty, tx = top + (u(6.0, 9.0) if tub else u(2.5, 6.0)) + tb, -lat * u(2.0, 8.0)
        fr = u(7.0, 11.0)
        fx = tx + lat * (ta * u(0.7, 0.9) + fr + u(1.0, 4.0))  # posterolateral
        fx = lat * min(abs(fx), ma - fr - 4.0)
        fy = ty + tb * u(0.5, 0.9)
        # interosseous membrane, popliteal vessels behind the tibia
        leg.seg(tx + lat * ta * 0.7, ty + tb * 0.3, fx, fy, u(0.5, 0.8), u(0.0208, 0.0215))
        pop_y = ty + tb + u(6.0, 10.0)
        leg.ell(tx + lat * 4, pop_y, u(7.0, 11.0), u(5.0, 7.0), fat)
        for dx, r in ((0.0, u(2.0, 3.0)), (4.5 * lat, u(2.5, 4.0))):
            leg.ell(tx + lat * 4 + dx, pop_y, r, r, u(0.0198, 0.0206))
        ttheta = lat * u(-0.3, 0.1)
        if tub:
            leg.ell(tx + lat * u(0, 5), ty - tb + u(1.0, 3.0), u(6.0, 10.0), u(3.0, 6.0), bone_v)
        leg.ell(
            tx - lat * ta * 0.4, ty - tb * 0.5, u(5.0, 8.0), u(3.0, 5.0), bone_v, theta=ttheta
        )  # anteromedial crest
        leg.bone(
            tx,
            ty,
            ta,
            tb,
            cortex=u(1.5, 4.0),
            bone=bone_v,
            marrow=marrow,
            trabecular=trab,
            theta=ttheta,
            c=u(60.0, 150.0),
            dz=u(-30.0, 30.0),
        )
        leg.bone(
            fx,
            fy,
            fr * u(1.0, 1.2),
            fr,
            cortex=u(2.0, 3.5),
            bone=bone_v,
            marrow=marrow * u(1.0, 1.1),
            trabecular=trab * 0.7,
            theta=u(-np.pi, np.pi),
        )
    if rng.random() < 0.3:  # vascular calcification
        leg.ell(
            u(-0.3, 0.3) * ma,
            moy + u(0.4, 0.7) * mb,
            u(0.8, 1.6),
            u(0.8, 1.6),
            u(0.05, 0.08),
            c=u(1.0, 3.0),
            dz=u(-2.0, 2.0),
            section=False,
        )
    return w.objects


def _head2(rng: np.random.Generator, zc: float, half: float) -> list[Ellipsoid | Box]:
    """Skull-base head: orbits, sinuses, petrous bones, mastoids, posterior fossa; cradle."""
    u = rng.uniform
    w = _Builder(rng, half, zc)
    big_a, big_b = 72.0 * u(0.95, 1.05), 86.0 * u(0.95, 1.05)
    nose = rng.random() < 0.7
    nose_off, nose_b = u(0.0, 4.0), u(7.0, 10.0)
    front = big_b + (nose_off + nose_b if nose else 0.0)
    pad, shell_t = u(3.0, 8.0), u(3.0, 5.0)
    lim = _R_MAX * w.half - 2.0
    sf = min(u(0.9, 1.04), (2 * lim - pad - shell_t) / (big_b + front))
    sf = min(sf, (lim - pad - shell_t - 4.0) / big_a)
    slack = max(0.0, (2 * lim - sf * (big_b + front) - pad - shell_t) / 2)
    cy = (sf * (front - big_b) - pad - shell_t) / 2 + u(-1.0, 1.0) * slack
    cx = u(-4.0, 4.0)
    rot = u(-0.08, 0.08)
    tilt = tuple(np.clip(rng.normal(0.0, 0.04, size=2), -0.08, 0.08))

    # U-shaped rigid cradle lined with foam, open at the top (training: flat bar + crescent)
    oa, ob = sf * big_a + pad, sf * big_b + pad
    w.ell(cx, cy, oa + shell_t, ob + shell_t, u(0.012, 0.022))
    w.ell(cx, cy, oa, ob, u(0.002, 0.005), texture=0.1, field=_F_MID)
    w.box(-2 * half, 2 * half, -2 * half, cy + u(-5.0, 15.0), 0.0)

    f = w.frame(origin=(cx, cy), rotation=rot, scale=sf, tilt=tilt)
    skin, fat, soft = u(0.0198, 0.0207), u(0.0172, 0.0182), u(0.0200, 0.0208)
    bone_v = u(0.046, 0.058)
    csf = u(0.0192, 0.0197)
    brain = u(0.0203, 0.0209)
    hc, hdz = u(110.0, 170.0), u(-30.0, 30.0)  # the head is rounded along z
    if nose:
        f.ell(0, -big_b - nose_off, u(6.0, 9.0), nose_b, skin, c=u(25, 40), dz=u(-5, 5))
    f.ell(0, 0, big_a, big_b, skin, texture=0.01, field=_F_LOW, c=hc, dz=hdz)
    fat_t = u(1.5, 4.0)
    f.ell(0, 0, big_a - 1.8, big_b - 1.8, fat, c=hc, dz=hdz)
    f.ell(
        0,
        0,
        big_a - 1.8 - fat_t,
        big_b - 1.8 - fat_t,
        soft,
        texture=0.01,
        field=_F_LOW,
        c=hc,
        dz=hdz,
    )

    skull_t = u(1.5, 3.5)
    yc = u(10.0, 18.0)
    bc = big_b - (1.8 + fat_t + u(1.5, 3.0)) - skull_t - yc
    ac = big_a - 1.8 - fat_t - u(3.0, 6.0) - skull_t
    for s in (-1.0, 1.0):  # temporalis muscles in the temporal fossae
        tx = s * (0.9 * ac + skull_t + u(2.5, 4.0))
        f.ell(
            tx,
            yc - 0.5 * bc,
            u(3.5, 5.5),
            u(16.0, 24.0),
            u(0.0204, 0.0212),
            theta=s * u(0.15, 0.4),
            texture=0.01,
            field=_F_FINE,
        )
    f.shell(
        0,
        yc,
        ac + skull_t,
        bc + skull_t,
        skull_t,
        brain,
        bone=bone_v,
        vary=0.5,
        inner_texture=0.008,
        inner_field=_F_LOW,
        c=hc,
        dz=hdz,
    )

    # middle and posterior fossae
    y_cl = u(-14.0, -6.0)
    cla, clb = u(8.0, 11.0), u(6.0, 9.0)
    for s in (-1.0, 1.0):  # temporal lobes (very low contrast grey matter)
        f.ell(
            s * 0.5 * ac,
            y_cl - u(8, 14),
            u(0.25, 0.32) * ac,
            u(14.0, 20.0),
            brain * u(1.003, 1.01),
            theta=s * u(0.2, 0.5),
            texture=0.01,
            field=_F_MID,
            c=u(20, 40),
            dz=u(-8, 8),
        )
    pa, pb = u(13.0, 17.0), u(10.0, 13.0)
    y_pons = y_cl + clb + u(2.5, 4.0) + pb
    f.ell(0, y_pons - 1.5, pa + u(2, 4), pb + u(2, 3.5), csf)  # prepontine cistern
    f.ell(0, y_pons, pa, pb, u(0.0205, 0.0211), texture=0.008, field=_F_MID)
    y4 = y_pons + pb + u(2.0, 4.0)
    for s in (-1.0, 1.0):  # cerebellar hemispheres with folia
        f.ell(
            s * u(18.0, 25.0),
            y4 + u(18.0, 26.0),
            u(21.0, 28.0),
            u(19.0, 26.0),
            u(0.0202, 0.0208),
            theta=s * u(-0.3, 0.3),
            texture=u(0.012, 0.02),
            field=_F_FINE,
        )
    f.ell(
        0,
        y4 + u(12.0, 18.0),
        u(7.0, 10.0),
        u(12.0, 18.0),
        u(0.0204, 0.0209),
        texture=0.012,
        field=_F_FINE,
    )  # vermis
    f.ell(0, y4, u(4.0, 7.0), u(3.0, 5.0), csf, theta=u(-0.2, 0.2), c=u(6, 10), dz=u(-2, 2))
    f.ell(0, yc + bc - 1.0, u(5.0, 8.0), u(2.5, 4.5), bone_v)  # internal occipital protuberance
    for s in (-1.0, 1.0):  # sigmoid / transverse sinuses
        f.ell(
            s * 0.74 * ac,
            yc + 0.5 * bc,
            u(2.5, 4.5),
            u(5.0, 8.0),
            u(0.0205, 0.0212),
            theta=s * u(-0.8, -0.3),
        )

    # petrous bones with inner ear, mastoids with air cells, ear canals and pinnae
    for s in (-1.0, 1.0):
        lx, ly = s * ac * u(0.84, 0.94), y_cl + u(20.0, 30.0)
        mx, my = s * u(10.0, 15.0), y_cl - u(0.0, 4.0)
        f.seg(lx, ly, mx, my, u(5.5, 8.0), u(0.052, 0.06), texture=0.02, field=_F_MID)
        t = u(0.35, 0.55)
        ix, iy = lx + t * (mx - lx), ly + t * (my - ly)
        ang = math.atan2(my - ly, mx - lx)
        f.ell(
            ix + 2.0 * math.sin(ang),
            iy + 2.0,
            u(3.5, 5.0),
            u(1.3, 2.0),
            csf,
            theta=ang + u(-0.5, 0.5),
        )  # internal auditory canal
        f.ell(
            ix - s * u(4, 6),
            iy + u(-1, 1),
            u(1.5, 2.5),
            u(1.2, 2.0),
            u(0.0198, 0.0205),
            c=3.0,
            dz=u(-1, 1),
            section=False,
        )  # vestibule / cochlea
        ma, mb = u(8.0, 12.0), u(10.0, 15.0)
        mcx = s * min(ac + skull_t - u(2.0, 6.0), big_a - 3.0 - ma)
        mcy = ly + u(6.0, 14.0)
        f.ell(mcx, mcy, ma, mb, u(0.036, 0.046), theta=s * u(-0.4, 0.2), texture=0.03, field=_F_MID)
        if rng.random() < 0.85:  # pneumatised mastoid: honeycomb of air cells
            for _ in range(int(rng.integers(6, 22))):
                rr, pp = math.sqrt(u(0.0, 1.0)) * 0.8, u(-np.pi, np.pi)
                r = u(1.0, 3.2)
                f.ell(
                    mcx + rr * ma * math.cos(pp),
                    mcy + rr * mb * math.sin(pp),
                    r,
                    r * u(0.7, 1.3),
                    0.0,
                    theta=u(-np.pi, np.pi),
                    c=u(2.0, 5.0),
                    dz=u(-4.0, 4.0),
                    section=False,
                )
        if rng.random() < 0.65:  # external ear canal, middle ear, ossicles, pinna
            ey = ly - u(2.0, 8.0)
            f.ell(
                s * (big_a + u(3.0, 6.0)),
                ey + u(-3.0, 6.0),
                u(3.0, 5.0),
                u(14.0, 22.0),
                skin,
                theta=s * u(-0.3, 0.1),
                c=u(25, 35),
                dz=u(-5, 5),
            )
            f.seg(
                s * (big_a + 2.0),
                ey,
                s * 0.8 * ac,
                ey + u(1.0, 4.0),
                u(2.8, 4.0),
                0.0,
                c=u(4.0, 7.0),
                dz=u(-2.0, 2.0),
            )
            f.ell(s * 0.78 * ac, ey + 2.0, u(3.0, 4.0), u(2.5, 3.5), 0.0, c=4.0)
            f.ell(s * 0.78 * ac, ey + 2.0, u(0.7, 1.1), u(0.7, 1.1), u(0.04, 0.05), c=2.0)
    f.bone(
        0,
        y_cl,
        cla,
        clb,
        cortex=u(1.5, 2.5),
        bone=bone_v,
        marrow=u(0.024, 0.03),
        trabecular=0.12,
        theta=u(-0.2, 0.2),
    )  # clivus

    # sphenoid sinus, ethmoid air cells, nasal septum
    sa, sb = u(10.0, 15.0), u(7.0, 11.0)
    y_sph = y_cl - clb - u(1.0, 3.0) - sb
    f.shell(u(-3, 3), y_sph, sa, sb, u(1.0, 2.0), 0.0, bone=bone_v * u(0.85, 1.0))
    f.seg(u(-4, 4), y_sph - sb, u(-4, 4), y_sph + sb, u(0.5, 0.8), bone_v * 0.85)
    xg, rg = u(29.0, 34.0), u(11.0, 12.5)
    y_skin = -big_b * math.sqrt(max(1.0 - (xg / big_a) ** 2, 0.05))
    yg = y_skin + u(3.0, 6.0) + rg
    eth_a = xg - rg - u(2.5, 4.0)
    eth_top, eth_bot = yg - u(4.0, 8.0), y_sph - sb + 1.0
    eth_y, eth_b = (eth_top + eth_bot) / 2, max((eth_bot - eth_top) / 2, 6.0)
    f.ell(0, eth_y, eth_a, eth_b, u(0.028, 0.038), texture=0.05, field=_F_MID)
    for s in (-1.0, 1.0):
        for col in range(2):
            for row in range(int(eth_b * 2 / 5.5)):
                r = u(1.8, 3.3)
                f.ell(
                    s * (2.5 + col * 5.5 + u(0.5, 2.0)),
                    eth_top + 3.0 + row * 5.5 + u(-0.8, 0.8),
                    r,
                    r * u(0.8, 1.2),
                    0.0,
                    theta=u(-np.pi, np.pi),
                    c=u(3.0, 6.0),
                    dz=u(-3.0, 3.0),
                    section=False,
                )
    f.seg(0, eth_top - 2, 0, eth_bot, u(0.6, 0.9), bone_v * 0.8)

    # orbits: fat, walls, recti, optic nerve, globe, lens
    for s in (-1.0, 1.0):
        gx = s * xg
        ax, ay = s * u(11.0, 15.0), yg + u(30.0, 38.0)
        oc = u(18.0, 25.0)
        f.seg(ax, ay, gx, yg - 2.0, u(13.0, 16.0), fat, c=oc, texture=0.02, field=_F_LOW)
        f.seg(
            gx + s * (rg + u(2.0, 4.0)),
            yg - u(0.0, 4.0),
            ax + s * 2.0,
            ay,
            u(1.5, 3.0),
            bone_v,
            c=oc,
        )  # lateral wall
        f.seg(
            gx - s * (rg + u(1.0, 2.5)), yg - u(2.0, 6.0), ax, ay, u(0.6, 1.0), u(0.035, 0.05), c=oc
        )  # lamina papyracea
        rect = u(0.0205, 0.0212)
        f.seg(gx + s * (rg - 1.0), yg + 0.5 * rg, ax + s * 2.0, ay - 2.0, u(1.8, 2.6), rect, c=oc)
        f.seg(gx - s * (rg - 1.0), yg + 0.5 * rg, ax, ay - 2.0, u(1.8, 2.6), rect, c=oc)
        f.seg(
            gx + s * u(-2.0, 1.0), yg + rg - 1.0, ax, ay, u(1.8, 2.4), u(0.0200, 0.0206), c=oc
        )  # optic nerve
        gdz = u(-4.0, 4.0)
        f.ell(gx, yg, rg, rg, u(0.0205, 0.0212), c=rg, dz=gdz, section=False)
        f.ell(gx, yg, rg - 0.9, rg - 0.9, u(0.0193, 0.0197), c=rg - 0.9, dz=gdz, section=False)
        f.ell(
            gx,
            yg - rg + u(3.2, 4.2),
            4.5,
            u(1.7, 2.1),
            u(0.0213, 0.0222),
            c=4.5,
            dz=gdz,
            section=False,
        )  # lens
    if nose:  # nasal bones, an inverted V
        for s in (-1.0, 1.0):
            f.seg(
                s * u(5.0, 7.0),
                -big_b + 2.0,
                0,
                -big_b - nose_off - 1.0,
                u(0.8, 1.2),
                bone_v,
                c=20.0,
            )
    return w.objects


def _pelvis(rng: np.random.Generator, zc: float, half: float) -> list[Ellipsoid | Box]:
    """Hip-joint level: femoral heads, acetabula, pelvic organs, thick fat, curved table."""
    u = rng.uniform
    w = _Builder(rng, half, zc)
    sf = u(0.74, 0.88)  # template is a large adult; scaled to a small one (line integrals)
    big_a, big_b = u(155.0, 170.0), u(105.0, 120.0)
    pad, lim = u(15.0, 35.0), _R_MAX * w.half
    ext = sf * big_b
    cy = min(-(pad * 0.6 + 14.0) / 2 + u(-6.0, 6.0), lim - 5.0 - ext - pad - 15.0)
    cy = max(cy, -lim + 5.0 + ext)
    f = w.frame(
        origin=(u(-5.0, 5.0), cy),
        rotation=u(-0.05, 0.05),
        scale=sf,
        tilt=tuple(np.clip(rng.normal(0.0, 0.02, size=2), -0.04, 0.04)),
    )
    _curved_table(w, cy + ext + pad * 0.75, pad=pad, pad_value=u(0.001, 0.003))

    skin, fat, muscle = u(0.0200, 0.0210), u(0.0171, 0.0180), u(0.0203, 0.0214)
    skin_t = u(1.5, 3.0)
    fat_lat, fat_ant, fat_post = u(12.0, 22.0), u(25.0, 45.0), u(22.0, 40.0)
    body = [(0.0, -0.06 * big_b, big_a * 0.97, 0.9 * big_b, 0.0)]
    body += [
        (s * 0.42 * big_a, 0.25 * big_b, 0.56 * big_a, 0.72 * big_b, s * 0.15) for s in (-1, 1)
    ]
    for inset, value, tex in ((0.0, skin, 0.01), (skin_t, fat, 0.025)):
        for x, y, a, b, th in body:
            f.ell(x, y, a - inset, b - inset, value, theta=th, texture=tex, field=_F_LOW)
    x0, y0, a0, b0, _ = body[0]
    f.ell(
        x0,
        y0 + u(-3, 3),
        a0 - skin_t - fat_lat,
        b0 - skin_t - fat_ant,
        muscle,
        texture=0.012,
        field=_F_MID,
    )
    plane = u(1.5, 3.0)
    for x, y, a, b, th in body[1:]:  # gluteus maximus under the buttock fat
        _fat_ring_muscle(
            f,
            x,
            y + 4.0,
            a - skin_t - fat_lat - 4.0,
            b - skin_t - fat_post,
            muscle * u(0.99, 1.01),
            fat,
            plane,
            theta=th,
        )

    xh, yh, rh = u(84.0, 94.0), u(-10.0, 5.0), u(22.0, 26.0)
    off, wa, wb = u(3.0, 6.0), u(7.0, 11.0), u(10.0, 14.0)
    acet_medial = xh - off - (rh + wa)
    a_cav = acet_medial - u(4.0, 9.0)
    y_cav, b_cav = yh + u(8.0, 16.0), u(48.0, 58.0)
    bone_v, marrow, trab = u(0.045, 0.058), u(0.022, 0.027), u(0.1, 0.18)
    for s in (-1.0, 1.0):  # muscles around the hip, each in its fat plane
        _fat_ring_muscle(
            f,
            s * (xh + u(14, 22)),
            yh + u(14, 24),
            u(14, 20),
            u(22, 30),
            muscle * u(0.99, 1.02),
            fat,
            plane * 0.6,
            theta=s * u(0.3, 0.8),
        )  # gluteus medius / minimus
        _fat_ring_muscle(
            f,
            s * (xh - u(4, 10)),
            yh - rh - u(14, 20),
            u(13, 18),
            u(10, 14),
            muscle * u(0.99, 1.02),
            fat,
            plane * 0.6,
            theta=s * u(-0.3, 0.3),
        )  # iliopsoas
        for _ in range(int(rng.integers(2, 4))):  # sartorius, rectus femoris, TFL
            r = u(7.0, 12.0)
            _fat_ring_muscle(
                f,
                s * (xh + u(0, 28)),
                yh - rh - u(30, 44),
                r,
                r * u(0.6, 1.0),
                muscle * u(0.99, 1.02),
                fat,
                plane * 0.6,
                theta=u(-np.pi, np.pi),
            )
        vy = yh - rh - u(30.0, 36.0)  # femoral triangle: fat, artery, vein, nodes
        f.ell(s * (xh - 22.0), vy, u(12.0, 16.0), u(8.0, 11.0), fat)
        art = u(0.026, 0.032) if rng.random() < 0.25 else u(0.0200, 0.0206)
        f.ell(s * (xh - 18.0), vy, u(3.5, 5.0), u(3.5, 5.0), art)
        f.ell(s * (xh - 27.0), vy + u(-1, 2), u(5.0, 7.0), u(4.0, 6.0), u(0.0199, 0.0205))
        for _ in range(int(rng.integers(0, 3))):
            f.ell(
                s * (xh + u(-35, 10)),
                vy - u(4, 16),
                u(2.5, 5.0),
                u(1.5, 3.0),
                u(0.0200, 0.0207),
                theta=u(-np.pi, np.pi),
                c=u(4, 8),
                dz=u(-4, 4),
                section=False,
            )
    f.ell(0, y_cav, a_cav, b_cav, fat, texture=0.03, field=_F_LOW)  # pelvic fat
    for s in (-1.0, 1.0):
        _fat_ring_muscle(
            f,
            s * (acet_medial - u(3.0, 6.0)),
            y_cav + u(0, 8),
            u(6.0, 9.0),
            u(22.0, 30.0),
            muscle * u(0.99, 1.02),
            fat,
            plane * 0.5,
            theta=s * u(1.4, 1.7),
        )  # obturator internus
        # bones: acetabulum, joint space, neck + greater trochanter, femoral head
        f.bone(
            s * (xh - off),
            yh + u(-2, 2),
            rh + wa,
            rh + wb,
            cortex=u(1.5, 3.0),
            bone=bone_v,
            marrow=marrow,
            trabecular=trab,
            theta=u(-0.2, 0.2),
        )
        f.ell(s * xh, yh, rh + u(2.0, 3.5), rh + u(2.0, 3.5), u(0.0203, 0.0210))
        if rng.random() < 0.6:
            neck, tr = u(20.0, 28.0), u(12.0, 16.0)
            ny = yh + u(-6.0, 6.0)
            f.bone_seg(
                s * xh,
                yh,
                s * (xh + neck),
                ny,
                u(12.0, 15.0),
                cortex=u(1.5, 3.0),
                bone=bone_v,
                marrow=marrow,
                trabecular=trab,
            )
            f.bone(
                s * (xh + neck),
                ny,
                tr,
                tr * u(0.8, 1.1),
                cortex=u(1.2, 2.5),
                bone=bone_v,
                marrow=marrow,
                trabecular=trab,
                theta=u(-0.5, 0.5),
            )
        f.bone(
            s * xh,
            yh,
            rh,
            rh * u(0.96, 1.04),
            cortex=u(1.0, 2.0),
            bone=bone_v,
            marrow=marrow * u(1.0, 1.08),
            trabecular=trab,
            c=u(26.0, 32.0),
            dz=u(-8.0, 8.0),
        )
        f.bone_seg(
            s * (xh - 12.0),
            yh + rh + 6.0,
            s * (xh - u(28.0, 36.0)),
            yh + rh + u(22, 32),
            u(7.0, 10.0),
            cortex=u(1.5, 3.0),
            bone=bone_v,
            marrow=marrow,
            trabecular=trab,
        )  # ischium / spine
        if rng.random() < 0.55:  # superior pubic ramus
            f.bone_seg(
                s * (xh - 14.0),
                yh - rh - 4.0,
                s * u(8.0, 18.0),
                yh - rh - u(22, 34),
                u(6.0, 9.0),
                cortex=u(1.5, 2.5),
                bone=bone_v,
                marrow=marrow,
                trabecular=trab,
            )
    # organs: bladder (urine, sometimes layering contrast), uterus/prostate, rectum
    bw, rw = u(2.0, 4.0), u(2.5, 4.0)
    ba, bb = min(u(22.0, 40.0), a_cav - 6.0), u(14.0, 26.0)
    bx, by = u(-5.0, 5.0), y_cav - b_cav + bb + bw + u(3.0, 8.0)
    ra, rb = u(14.0, 22.0), u(10.0, 16.0)
    rx, ry = u(-6.0, 6.0), y_cav + b_cav - rb - rw - u(3.0, 8.0)
    bc, bdz = u(25.0, 45.0), u(-10.0, 10.0)
    f.ell(bx, by, ba + bw, bb + bw, u(0.0205, 0.0210), c=bc + bw, dz=bdz)
    f.ell(bx, by, ba, bb, u(0.0192, 0.0197), c=bc, dz=bdz)
    if rng.random() < 0.15:
        f.ell(bx, by + bb * 0.6, ba * 0.8, bb * 0.4, u(0.025, 0.035), c=bc, dz=bdz)
    room = (ry - rb - rw) - (by + bb + bw)  # between bladder and rectum
    pb = min(u(10.0, 16.0), room / 2 - 1.5)
    if pb > 5.0:  # uterus / prostate
        f.ell(
            u(-4, 4),
            (ry - rb - rw + by + bb + bw) / 2,
            u(14.0, 24.0),
            pb,
            u(0.0205, 0.0213),
            texture=0.02,
            field=_F_MID,
            c=u(20, 35),
            dz=u(-6, 6),
        )
    f.ell(rx, ry, ra + rw, rb + rw, u(0.0204, 0.0210))
    f.ell(rx, ry, ra, rb, u(0.0175, 0.0205), texture=u(0.1, 0.2), field=_F_FINE)  # stool
    f.ell(
        rx + u(-3, 3),
        ry - rb * u(0.3, 0.5),
        ra * u(0.4, 0.8),
        rb * u(0.3, 0.55),
        0.0,
        c=u(10, 20),
        dz=u(-3, 3),
    )  # rectal gas rises anteriorly
    for _ in range(int(rng.integers(0, 5))):
        r = u(1.5, 4.0)
        f.ell(
            rx + u(-0.6, 0.6) * ra,
            ry + u(0.0, 0.6) * rb,
            r,
            r * u(0.7, 1.2),
            0.0,
            c=r,
            dz=u(-r, r),
            section=False,
        )
    coccyx = rng.random() < 0.85
    cb = u(6.0, 9.0)
    if coccyx:
        f.bone(
            u(-3, 3),
            ry + rb + rw + u(4.0, 10.0) + cb,
            u(9.0, 14.0),
            cb,
            cortex=u(1.5, 2.5),
            bone=bone_v,
            marrow=marrow,
            trabecular=trab,
            c=u(15, 25),
            dz=u(-5, 5),
        )
    for _ in range(int(rng.integers(0, 5))):  # phleboliths
        s = 1.0 if rng.random() < 0.5 else -1.0
        r = u(1.5, 3.0)
        f.ell(
            s * u(0.5, 0.9) * a_cav,
            y_cav + u(-0.3, 0.6) * b_cav,
            r,
            r,
            u(0.045, 0.07),
            c=r,
            dz=u(-2 * r, 2 * r),
            section=False,
        )
    return w.objects


# Shepp-Logan (Shepp & Logan 1974): intensity, a, b, x0, y0 (y up), phi (degrees).
_SHEPP = (
    (2.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.98, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.02, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.02, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.01, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.01, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.01, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.01, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.01, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.01, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _shepp(rng: np.random.Generator, zc: float, half: float) -> list[Ellipsoid | Box]:
    """Perturbed, textured Shepp-Logan at the original (soft-tissue) contrasts, in 1/mm."""
    u = rng.uniform
    w = _Builder(rng, half, zc)
    unit = u(0.0188, 0.0196)  # attenuation of Shepp-Logan intensity 1.0
    f = w.frame(
        origin=(u(-0.03, 0.03) * half, u(-0.03, 0.03) * half),
        rotation=u(-0.15, 0.15),
        scale=u(0.84, 0.95) * half,
    )  # local units: the SL unit square
    skull, brain = unit * 2.0 * u(0.95, 1.05), unit * 1.02
    for i, (value, a, b, x0, y0, phi) in enumerate(_SHEPP):
        jx, jy = (0.0, 0.0) if i < 2 else tuple(u(-0.015, 0.015, size=2))
        sa, sb = (1.0, 1.0) if i < 2 else tuple(u(0.9, 1.1, size=2))
        if i == 0:
            v, tex = skull, 0.03
        elif i == 1:
            v, tex = brain, 0.012
        else:  # inner features: sign of the original, magnitude 1-4 % of brain
            mag = u(0.01, 0.04) if value > 0 else u(0.01, 0.03)
            v, tex = brain * (1.0 + math.copysign(mag, value)), 0.01
        kw: dict[str, Any] = {}
        if i >= 2:
            kw = dict(c=u(0.15, 0.4), dz=u(-0.03, 0.03))
        f.ell(
            x0 + jx,
            -y0 + jy,
            a * sa,
            b * sb,
            v,
            theta=-math.radians(phi),
            texture=tex,
            field=_F_LOW if i < 2 else _F_MID,
            **kw,
        )
    return w.objects


_BUILDERS = {"knee": _knee, "head2": _head2, "pelvis": _pelvis, "shepp": _shepp}


def _texture_waves(rng: np.random.Generator, half_mm: float, pixel_mm: float) -> list[np.ndarray]:
    """The four texture fields, wavelengths in mm (never below ~2.5 pixels)."""
    p = pixel_mm
    bands = (
        (6, 25.0, 90.0),
        (8, 6.0, 18.0),
        (16, max(2.5, 2.5 * p), max(6.0, 5.0 * p)),
        (10, max(1.6, 2.5 * p), max(3.5, 5.0 * p)),
    )
    return [plane_waves(rng, k, lo / half_mm, hi / half_mm) for k, lo, hi in bands]


def heldout_phantom(
    style: str, rng: np.random.Generator, z_center: float = 0.0, size: int = 256
) -> HeldoutPhantom:
    """Draw a random held-out phantom of ``style`` centred (along z) at ``z_center``.

    Coordinates are normalised as in `data_tools.phantoms` (1 = half the style's field of
    view); render it with ``phantom_slice(phantom, z, size)``.  ``size`` only sets the finest
    texture wavelengths (never below ~2.5 pixels).  Raises CTDatasetError for an unknown style.
    """
    if style not in _BUILDERS:
        raise CTDatasetError(f"unknown style {style!r} (choose from {', '.join(STYLES)})")
    half_mm = STYLE_FOV_MM[style] / 2.0
    objects = _BUILDERS[style](rng, z_center, half_mm)
    waves = _texture_waves(rng, half_mm, STYLE_FOV_MM[style] / size)
    return HeldoutPhantom(kind=style, objects=objects, waves=waves, ridged=(_F_TRAB,))
