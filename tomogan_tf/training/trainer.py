"""The GAN training step: a `keras.Model` whose `train_step` Keras compiles.

One call of `train_step` is one iteration: ``itg`` generator steps, then ``itd``
discriminator steps, each on its own fresh batch (the data pipeline hands over
``itg + itd`` batches at once). The same step trains every model family; what
differs between them is the loss weights and the schedule:

* generator loss = reconstruction terms at every output scale (MSE, L1, a-trous
  pyramid, soft histogram) + smoothness + VGG perceptual + adversarial, each
  weighted, a weight of 0 skipping its term;
* schedule = ``g_warmup`` iterations training the generator alone, then
  ``d_warmup`` iterations training the critic alone, then both, the critic every
  ``d_every`` iterations (ADL's recipe; TomoGAN and ImageDenoisingGAN use 0, 0, 1).

With ``ladv = 0`` there is no discriminator and nothing is spent on it.

The target is the clean image (``mode="supervised"``), a second independent noisy
measurement of the same scene (``"n2n"``: Noise2Noise, the expected loss differs
from the clean one by a constant; ``"n2i"``: Noise2Inverse, the same with one
sub-reconstruction predicted from the mean of the others), or the noisy input itself (``"n2s"``:
Noise2Self, where each generator step hides a set of pixels from the network with
`tomogan_tf.data.masking` and scores the prediction there only).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tomogan_tf.data.masking import apply_grid_mask, apply_mask, grid_phases
from tomogan_tf.losses import (
    as_outputs,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    masked_reconstruction_loss,
    reconstruction_loss,
    smoothness_loss,
)
from tomogan_tf.metrics import image_metrics
from tomogan_tf.models.padding import pad_to_multiple
from tomogan_tf.training.config import LossConfig, ScheduleConfig

# Reconstruction weights (constructor argument -> term of `reconstruction_loss`).
_RECONSTRUCTION_WEIGHTS = {"lmse": "mse", "ll1": "l1", "lpyr": "pyramid", "lhist": "histogram"}


class GANTrainer(keras.Model):
    """Trains a generator against the weighted losses and schedule of its family.

    Args:
        generator: maps (batch, H, W, depth) noisy stacks, or (batch, D, H, W, 1)
            volumes, to one image/volume or a list of them, finest first.
        discriminator: critic of generated vs clean images (one logit map or a
            list), or None when ``ladv == 0``.
        perceptual: callable ``(clean, denoised) -> scalar``, or None.
        losses: the loss weights, adversarial loss and Noise2Self mask
            (`LossConfig`; default: TomoGAN's for ``mode``). Reconstruction weights
            apply at every output scale; smoothness, perceptual and adversarial ones
            on the full-resolution output.
        schedule: steps per iteration, warm-ups and critic period (`ScheduleConfig`;
            see the module docstring; default: TomoGAN's).
        mode: ``"supervised"``, ``"n2n"``, ``"n2s"`` or ``"n2i"`` (see the module docstring).
        input_multiple: H and W the generator needs to divide; validation pads to it.
        seed: of the random blind-spot masks, drawn per step from ``(seed, step)``.

    Example:
    >>> losses = LossConfig.for_family("tomogan", gan_loss="wgan")
    >>> trainer = GANTrainer(generator, discriminator, losses=losses)
    >>> trainer.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    >>> trainer.fit(patches, steps_per_epoch=100, validation_data=slices)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model | None = None,
        perceptual=None,
        *,
        losses: LossConfig | None = None,
        schedule: ScheduleConfig | None = None,
        mode: str = "supervised",
        input_multiple: int = 8,
        seed: int = 0,
        **kwargs,
    ):
        losses = losses or LossConfig.for_family("tomogan", mode)
        schedule = schedule or ScheduleConfig.for_family("tomogan")
        super().__init__(**kwargs)
        self.mode, self.mask, self.mask_fill, self.seed = mode, losses.mask, losses.mask_fill, seed
        self.generator = generator
        self.discriminator = discriminator if losses.ladv > 0 else None
        self.perceptual = perceptual if losses.lperc > 0 else None
        self.gan_loss = losses.gan_loss
        self.reconstruction = {
            term: getattr(losses, weight)
            for weight, term in _RECONSTRUCTION_WEIGHTS.items()
            if getattr(losses, weight)
        }
        self.lsmooth, self.ladv, self.lperc = losses.lsmooth, losses.ladv, losses.lperc
        self.itg = schedule.itg
        self.itd = schedule.itd if self.discriminator is not None else 0
        self.d_every, self.g_warmup = schedule.d_every, schedule.g_warmup
        self.d_warmup = schedule.d_warmup
        self.gp_weight, self.wgan_clip = losses.gp_weight, losses.wgan_clip
        self.input_multiple = input_multiple
        # Completed iterations, checkpointed so a resumed run continues the count; under
        # a distribution strategy every replica adds 1 and the first one's add counts.
        self.iteration = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="iteration",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        names = ["g_loss", *self.reconstruction]
        if self.lsmooth > 0:
            names.append("smooth")
        if self.discriminator is not None:
            names += ["adv", "d_loss"] + (["gp"] if self.gan_loss == "wgan-gp" else [])
        if self.perceptual is not None:
            names.append("perc")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        # Noise2Self validates on hidden pixels against the noisy image: a PSNR only
        # (the noisy image against itself would score infinity).
        val_names = ("psnr",) if mode == "n2s" else ("psnr", "ssim", "psnr_noisy", "ssim_noisy")
        self.val_trackers = {name: keras.metrics.Mean(name=name) for name in val_names}
        self._traced_steps: dict = {}  # see `_traced_once`

    @property
    def group_size(self) -> int:
        """Batches consumed by one iteration."""
        return self.itg + self.itd

    def compile(self, g_optimizer, d_optimizer=None, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.g_optimizer.build(self.generator.trainable_variables)
        if self.discriminator is not None:
            self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return [*self.trackers.values(), *self.val_trackers.values()]

    def call(self, inputs, training=False):
        return as_outputs(self.generator(inputs, training=training))[0]

    # ------------------------------------------------------------------ losses
    def generator_losses(self, noisy, clean, adversarial=True, step=0):
        """``(total, terms)`` of the generator on one batch; differentiable.

        ``adversarial`` switches the adversarial term: a Python bool, or a boolean
        tensor (the schedule's warm-up), which weights the term by 0 instead.
        ``step`` picks the Noise2Self mask (its grid phase, or its random draw).
        """
        if self.mode == "n2s":
            # Replicas draw their own random spots; a grid phase is the same on all.
            replicas, replica = _replica()
            draw = (
                step
                if self.mask == "grid" or replicas == 1
                else tf.cast(step, tf.int64) * replicas + tf.cast(replica, tf.int64)
            )
            noisy, mask = apply_mask(noisy, self.mask, draw, self.seed, self.mask_fill)
        outputs = as_outputs(self.generator(noisy, training=True))
        denoised = outputs[0]
        if self.mode == "n2s":
            # Only the full-resolution output can be scored pixel by pixel.
            total, terms = masked_reconstruction_loss(clean, denoised, mask, self.reconstruction)
        else:
            total, terms = reconstruction_loss(clean, outputs, self.reconstruction)
        if self.lsmooth > 0:
            terms["smooth"] = smoothness_loss(denoised)
            total += self.lsmooth * terms["smooth"]
        if self.perceptual is not None:
            terms["perc"] = self.perceptual(clean, denoised)
            total += self.lperc * terms["perc"]
        if adversarial is not False and self.discriminator is not None:
            fake = self.discriminator(denoised, training=False)
            terms["adv"] = generator_loss(self.gan_loss, fake)
            weight = self.ladv if adversarial is True else tf.where(adversarial, self.ladv, 0.0)
            total += weight * terms["adv"]
        return total, terms

    def discriminator_losses(self, noisy, clean):
        """``(total, terms)`` of the critic on one batch, shown the DENOISED output."""
        denoised = as_outputs(self.generator(noisy, training=False))[0]
        clean = tf.cast(clean, denoised.dtype)
        real = self.discriminator(clean, training=True)
        fake = self.discriminator(denoised, training=True)
        total = discriminator_loss(self.gan_loss, real, fake)
        terms = {}
        if self.gan_loss == "wgan-gp":
            terms["gp"] = gradient_penalty(self.discriminator, clean, denoised)
            total += self.gp_weight * terms["gp"]
        return total, terms

    # ------------------------------------------------------------------ steps
    def _generator_step(self, noisy, clean, adversarial, step):
        with tf.GradientTape() as tape:
            loss, terms = self.generator_losses(noisy, clean, adversarial, step)
            # float16: loss scaling; replicas: their gradients are summed, and each
            # loss is a mean over its share of the batch.
            scaled = self.g_optimizer.scale_loss(loss / _replica()[0])
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(
            zip(tape.gradient(scaled, variables), variables, strict=True)
        )
        self.trackers["g_loss"].update_state(loss)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return tf.constant(True)

    def _discriminator_step(self, noisy, clean):
        with tf.GradientTape() as tape:
            loss, terms = self.discriminator_losses(noisy, clean)
            scaled = self.d_optimizer.scale_loss(loss / _replica()[0])
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(
            zip(tape.gradient(scaled, variables), variables, strict=True)
        )
        if self.gan_loss == "wgan":
            for v in variables:
                v.assign(tf.clip_by_value(v, -self.wgan_clip, self.wgan_clip))
        self.trackers["d_loss"].update_state(loss)
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return tf.constant(True)

    def phase(self, iteration):
        """``(train_generator, with_adversarial, train_discriminator)`` at ``iteration``.

        Python bools when the schedule is constant (no warm-up, critic every step),
        boolean tensors otherwise.
        """
        if self.discriminator is None:
            return True, False, False
        if self.g_warmup == 0 and self.d_warmup == 0 and self.d_every == 1:
            return True, True, True
        joint = self.g_warmup + self.d_warmup
        in_joint = iteration >= joint
        train_g = (iteration < self.g_warmup) | in_joint
        train_d = (iteration >= self.g_warmup) & (
            ~in_joint | ((iteration - joint) % self.d_every == 0)
        )
        return train_g, in_joint, train_d

    @staticmethod
    def _maybe(condition, step, *args):
        """Run ``step(*args)`` if ``condition``: a Python `if`, or a `tf.cond` for tensors."""
        if isinstance(condition, bool):
            return step(*args) if condition else None
        return tf.cond(condition, lambda: step(*args), lambda: tf.constant(False))

    def _traced_once(self, step, repeats: int):
        """``step`` as one nested `tf.function` when it runs ``repeats`` > 1 times a call.

        The loop over steps is unrolled, so inside the compiled `train_step` each
        repeat would otherwise be traced (and its gradient built) again: TomoGAN's two
        critic steps made its first iteration 8.1 s of tracing instead of 4.8 s.
        """
        if repeats < 2 or not tf.inside_function():
            return step
        traced = self._traced_steps.get(step.__name__)
        if traced is None:
            traced = self._traced_steps[step.__name__] = tf.function(step, autograph=False)
        return traced

    def train_step(self, data, phase=None):
        """One iteration. ``phase``: `phase` of this iteration as Python bools, given by
        the distributed loop (`tomogan_tf.training.distribute`), where a step that syncs
        replicas must not sit inside a `tf.cond` or a nested `tf.function`."""
        noisy, clean = data  # (itg + itd, batch, ...spatial, depth) and (..., 1)
        train_g, adversarial, train_d = self.phase(self.iteration) if phase is None else phase
        if tf.distribute.has_strategy():
            g_step, d_step = self._generator_step, self._discriminator_step
        else:
            g_step = self._traced_once(self._generator_step, self.itg)
            d_step = self._traced_once(self._discriminator_step, self.itd)
        for k in range(self.itg):
            step = self.iteration * self.itg + k
            self._maybe(train_g, g_step, noisy[k], clean[k], adversarial, step)
        for k in range(self.itg, self.itg + self.itd):
            self._maybe(train_d, d_step, noisy[k], clean[k])
        self.iteration.assign_add(1)
        return {name: t.result() for name, t in self.trackers.items()}

    # ------------------------------------------------------------------ validation
    def denoise(self, noisy):
        """Full-resolution output for images of any H, W (reflect-padded, then cropped).

        Volumes (rank 5) must already have sizes that are multiples of the input
        multiple (validation cubes are cut that way).
        """
        if len(noisy.shape) == 5:
            return self(noisy, training=False)
        padded, height, width = pad_to_multiple(noisy, self.input_multiple)
        return self(padded, training=False)[:, :height, :width, :]

    def test_step(self, data):
        for name, values in self.validation_figures(data).items():
            self.val_trackers[name].update_state(values)
        return {name: t.result() for name, t in self.val_trackers.items()}

    def validation_figures(self, data):
        """Per-image validation figures of one batch, named as `val_trackers`."""
        if self.mode == "n2s":
            return {"psnr": self._hidden_pixel_psnr(*data)}
        noisy, clean = data
        denoised = self.denoise(noisy)
        centre = noisy.shape[-1] // 2
        figures = {}
        for prefix, images in (("", denoised), ("_noisy", noisy[..., centre : centre + 1])):
            figures["psnr" + prefix], figures["ssim" + prefix] = image_metrics(clean, images)
        return figures

    def _hidden_pixel_psnr(self, noisy, target, index):
        """Noise2Self validation: PSNR of the prediction at hidden pixels vs the noisy image.

        The ``index``-th validation image hides a fixed mask: a grid phase (stepping by
        5, coprime with the phase count, so a few images cover every axis' phases) or,
        for ``mask="random"`` runs, blind spots drawn from ``(seed, -1 - index)``, apart
        from every training draw. A fixed validation set then probes the same pixels
        at every validation; the figure is the clean PSNR lowered by the noise, and
        ranks models alike.
        """
        dims = len(noisy.shape) - 2
        if self.mask == "random":
            masked, mask = apply_mask(noisy, "random", -1 - tf.cast(index[0], tf.int64), self.seed)
        else:
            masked, mask = apply_grid_mask(noisy, 5 * index[0] % grid_phases(dims), self.mask_fill)
        error = tf.square(self.denoise(masked) - tf.cast(target, tf.float32)) * mask
        axes = list(range(1, dims + 2))
        mse = tf.reduce_sum(error, axes) / tf.maximum(tf.reduce_sum(mask, axes), 1.0)
        return -10.0 * tf.math.log(mse) / tf.math.log(10.0)


def _replica():
    """``(replicas in sync, this replica's id)``: ``(1, 0)`` without a strategy."""
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: not inside a step
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group
