"""The GAN training step: a `keras.Model` whose `train_step` Keras compiles.

One call of `train_step` is one TomoGAN iteration: ``itg`` generator steps, then
``itd`` discriminator steps, each on its own fresh batch (the data pipeline hands
over ``itg + itd`` batches at once). With ``ladv = 0`` there is no discriminator
and nothing is spent on it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tomogan_tf.losses import (
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    mean_squared_error,
)
from tomogan_tf.metrics import image_metrics
from tomogan_tf.models.padding import pad_to_multiple


class GANTrainer(keras.Model):
    """Trains a generator with pixel MSE, an adversarial and a perceptual term.

    Args:
        generator: maps (batch, H, W, depth) noisy stacks to (batch, H, W, 1).
        discriminator: critic on (batch, P, P, 1) images, or None when ``ladv == 0``.
        perceptual: callable ``(clean, denoised) -> scalar``, or None.
        gan_loss: ``"wgan-gp"``, ``"wgan"`` or ``"bce"``.
        lmse, ladv, lperc: loss weights.
        itg, itd: generator and discriminator steps per iteration.
        gp_weight: gradient-penalty weight (``wgan-gp``).
        wgan_clip: critic weight clipping (``wgan``).
        input_multiple: H and W the generator needs to divide; validation pads to it.

    Example:
    >>> trainer = GANTrainer(generator, discriminator, gan_loss="wgan-gp")
    >>> trainer.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    >>> trainer.fit(patches, steps_per_epoch=100, validation_data=slices)  # doctest: +SKIP
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model | None = None,
        perceptual=None,
        *,
        gan_loss: str = "wgan-gp",
        lmse: float = 1.0,
        ladv: float = 6e-4,
        lperc: float = 6e-5,
        itg: int = 1,
        itd: int = 2,
        gp_weight: float = 10.0,
        wgan_clip: float = 0.01,
        input_multiple: int = 8,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator if ladv > 0 else None
        self.perceptual = perceptual if lperc > 0 else None
        self.gan_loss = gan_loss
        self.lmse, self.ladv, self.lperc = lmse, ladv, lperc
        self.itg, self.itd = itg, (itd if self.discriminator is not None else 0)
        self.gp_weight, self.wgan_clip = gp_weight, wgan_clip
        self.input_multiple = input_multiple
        # Completed iterations, checkpointed so a resumed run continues the count.
        self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
        names = ["g_loss", "mse"]
        if self.discriminator is not None:
            names += ["adv", "d_loss"] + (["gp"] if gan_loss == "wgan-gp" else [])
        if self.perceptual is not None:
            names.append("perc")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.val_trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("psnr", "ssim", "psnr_noisy", "ssim_noisy")
        }

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
        return self.generator(inputs, training=training)

    def _generator_step(self, noisy, clean):
        with tf.GradientTape() as tape:
            denoised = self.generator(noisy, training=True)
            mse = mean_squared_error(clean, denoised)
            loss = self.lmse * mse
            if self.discriminator is not None:
                adv = generator_loss(self.gan_loss, self.discriminator(denoised, training=False))
                loss += self.ladv * adv
                self.trackers["adv"].update_state(adv)
            if self.perceptual is not None:
                perc = self.perceptual(clean, denoised)
                loss += self.lperc * perc
                self.trackers["perc"].update_state(perc)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        self.trackers["g_loss"].update_state(loss)
        self.trackers["mse"].update_state(mse)

    def _discriminator_step(self, noisy, clean):
        denoised = self.generator(noisy, training=False)
        clean = tf.cast(clean, denoised.dtype)
        with tf.GradientTape() as tape:
            real = self.discriminator(clean, training=True)
            fake = self.discriminator(denoised, training=True)
            loss = discriminator_loss(self.gan_loss, real, fake)
            if self.gan_loss == "wgan-gp":
                gp = gradient_penalty(self.discriminator, clean, denoised)
                loss += self.gp_weight * gp
                self.trackers["gp"].update_state(gp)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        if self.gan_loss == "wgan":
            for v in variables:
                v.assign(tf.clip_by_value(v, -self.wgan_clip, self.wgan_clip))
        self.trackers["d_loss"].update_state(loss)

    def train_step(self, data):
        noisy, clean = data  # (itg + itd, batch, P, P, depth) and (..., 1)
        for k in range(self.itg):
            self._generator_step(noisy[k], clean[k])
        for k in range(self.itg, self.itg + self.itd):
            self._discriminator_step(noisy[k], clean[k])
        self.iteration.assign_add(1)
        return {name: t.result() for name, t in self.trackers.items()}

    def denoise(self, noisy):
        """Generator output for images of any H, W (reflect-padded, then cropped back)."""
        padded, height, width = pad_to_multiple(noisy, self.input_multiple)
        return self.generator(padded, training=False)[:, :height, :width, :]

    def test_step(self, data):
        noisy, clean = data
        denoised = self.denoise(noisy)
        centre = noisy.shape[-1] // 2
        for prefix, images in (("", denoised), ("_noisy", noisy[..., centre : centre + 1])):
            psnr, ssim = image_metrics(clean, images)
            self.val_trackers["psnr" + prefix].update_state(psnr)
            self.val_trackers["ssim" + prefix].update_state(ssim)
        return {name: t.result() for name, t in self.val_trackers.items()}
