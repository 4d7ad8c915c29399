"""A test-only axolotl plugin whose callback stops training with an error after the first step:
the post-train evaluation must then not run (axolotl 0.21 calls post_train_unload in a finally)."""

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback


class TrainingFailedOnPurpose(RuntimeError):
    pass


class _Fail(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        raise TrainingFailedOnPurpose("boom: this training fails on purpose after step 1")


class FailTraining(BasePlugin):
    def add_callbacks_pre_trainer(self, cfg, model):
        return [_Fail()]
