"""Training: typed settings, the GAN train step, callbacks and the resumable run."""

from tomogan_tf.utils.lazy import lazy_exports

# Public name -> the module defining it, imported on first use (TensorFlow-free until then).
_EXPORTS = {
    "DataConfig": "tomogan_tf.training.config",
    "Fitted": "tomogan_tf.training.config",
    "LossConfig": "tomogan_tf.training.config",
    "ModelConfig": "tomogan_tf.training.config",
    "RunConfig": "tomogan_tf.training.config",
    "ScheduleConfig": "tomogan_tf.training.config",
    "TrainConfig": "tomogan_tf.training.config",
    "build_trainer": "tomogan_tf.training.fitting",
    "open_training_data": "tomogan_tf.training.run",
    "train": "tomogan_tf.training.run",
    "training_checkpoint": "tomogan_tf.training.fitting",
    "RunDir": "tomogan_tf.training.run_dir",
    "GANTrainer": "tomogan_tf.training.trainer",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
