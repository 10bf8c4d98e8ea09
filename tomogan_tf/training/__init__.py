"""Training: the GAN train step, run configuration, callbacks and the resumable run."""

from tomogan_tf.training.config import TrainConfig
from tomogan_tf.training.run import train
from tomogan_tf.training.trainer import GANTrainer

__all__ = ["GANTrainer", "TrainConfig", "train"]
