#!/usr/bin/env bash
# The FER teacher on a lent accelerator machine: it has JAX (and PyTorch), no TensorFlow and no Keras.
# Prepare here with `make device-bundle` (runs/device: FER-2013's training images as an LZMA .npz,
# 43 MiB, and the Keras wheels), then run through the device tool, in one call:
#   command: bash scripts/device_teacher.sh    carry: ["runs/device"]    timeout_s: 600
# NPZ, ARCH, EPOCHS, BATCH and MINUTES override the defaults below. What comes back under $OUT/teacher:
# soft_labels.npz (for `python -m train expression --soft-labels`), teacher.json and log.csv; a
# teacher.keras over 16 MiB (vgg-fer is 40 M parameters) stays behind.
set -euo pipefail
python3 -c "import keras" 2>/dev/null || python3 -m pip install -q --no-index --no-deps runs/device/wheels/*.whl
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
python3 -m train.npz_teacher "${NPZ:-runs/device/fer48-train.npz}" --out "$OUT/teacher" --backend jax \
  --arch "${ARCH:-vgg-fer}" --epochs "${EPOCHS:-60}" --batch-size "${BATCH:-256}" --time-limit "${MINUTES:-7}"
rm -rf "$OUT/teacher/backup"  # the optimizer's state: too large to come back, and not needed here
