"""Training: typed settings, the GAN train step, callbacks and the resumable run."""

from tomogan_tf.training.config import (
    DataConfig,
    Fitted,
    LossConfig,
    ModelConfig,
    RunConfig,
    ScheduleConfig,
    TrainConfig,
)
from tomogan_tf.training.run import build_trainer, open_training_data, train, training_checkpoint
from tomogan_tf.training.run_dir import RunDir
from tomogan_tf.training.trainer import GANTrainer

__all__ = [
    "DataConfig",
    "Fitted",
    "GANTrainer",
    "LossConfig",
    "ModelConfig",
    "RunConfig",
    "RunDir",
    "ScheduleConfig",
    "TrainConfig",
    "build_trainer",
    "open_training_data",
    "train",
    "training_checkpoint",
]
