"""Knowledge distillation (Hinton et al. 2015) for the expression classifiers: a training-only
wrapper. The student stays a plain functional model; only it is saved and exported.
"""

from __future__ import annotations

import keras
from keras import ops


class Distiller(keras.Model):
    """Trains `student` on `alpha` * hard-label loss + (1 - alpha) * T^2 * KL(teacher_T || student_T).

    With `teacher` None the targets carry the teacher's probabilities (see split_targets).
    Both models output softmax probabilities; their logs serve as logits (softmax(log p / T) is the
    tempered distribution). The teacher may take another input size or channel count than the
    student (e.g. the 224x224x3 VGGFace ResNet-50 teaching a 48x48 grey net): the student's raw
    pixel batch is resized and its channels repeated or averaged for the teacher.

    `save` writes the student alone, so a best-model callback stores the model that ships.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model | None, temperature: float = 4.0, alpha: float = 0.5, **kw):
        super().__init__(**kw)
        self.student = student
        self.teacher = teacher
        self.num_classes = int(student.output_shape[-1])
        if teacher is not None:
            self.teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        # Built now, so that BackupAndRestore (which needs a built model) can restore a resumed run.
        self(ops.zeros((1,) + tuple(student.input_shape[1:])))

    def call(self, x, training=False):
        return self.student(x, training=training)

    def teacher_input(self, x):
        t_h, t_w, t_c = self.teacher.input_shape[1:4]
        s_h, s_w, s_c = x.shape[1], x.shape[2], x.shape[3]
        if (t_h, t_w) != (s_h, s_w):
            x = ops.image.resize(x, (t_h, t_w), interpolation="bilinear")
        if t_c != s_c:
            x = ops.repeat(x, t_c, axis=-1) if s_c == 1 else ops.mean(x, axis=-1, keepdims=True)
        return x

    def split_targets(self, y):
        """(hard labels, the teacher's probabilities or None). Without a teacher model, y packs both:
        [one-hot (k) | the teacher's probabilities (k)], precomputed (soft labels brought back from
        another machine), so that mixup and shuffling keep them together."""
        if self.teacher is not None or y is None:
            return y, None
        return y[:, : self.num_classes], y[:, self.num_classes:]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, self.split_targets(y)[0], y_pred, sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        y, teacher_probs = self.split_targets(y)
        hard = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, **kwargs)
        t = self.temperature
        if teacher_probs is None:
            teacher_probs = self.teacher(self.teacher_input(x), training=False)
        eps = 1e-7
        soft_t = ops.softmax(ops.log(ops.clip(teacher_probs, eps, 1.0)) / t, axis=-1)
        log_s = ops.log_softmax(ops.log(ops.clip(y_pred, eps, 1.0)) / t, axis=-1)
        kl = ops.sum(soft_t * (ops.log(ops.clip(soft_t, eps, 1.0)) - log_s), axis=-1)
        if sample_weight is not None:
            kl = kl * ops.cast(ops.reshape(sample_weight, ops.shape(kl)), kl.dtype)
        return self.alpha * hard + (1.0 - self.alpha) * (t * t) * ops.mean(kl)

    def save(self, filepath, *args, **kwargs):
        return self.student.save(filepath, *args, **kwargs)
