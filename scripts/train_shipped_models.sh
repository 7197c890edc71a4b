#!/usr/bin/env bash
# Retrains the models that mobile_demo ships and exports them into mobile_demo/models/ (make models).
# Long: the expression model took ~1 h 50 min on a 2-core CPU. Data: ../shared/data (or FER_DIR / ANIME_DIR).
# Each step is resumable: rerun the printed `--resume RUN` command if a step is interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
FER_DIR=${FER_DIR:-../shared/data/fer2013}
ANIME_DIR=${ANIME_DIR:-../shared/data/anime_faces}
OUT=${OUT:-runs}
MODELS=mobile_demo/models
last_run() { ls -d "$OUT"/*-"$1"* | sort | tail -n 1; }

# 1. Expression classifier (EmoNet-S, 48x48 grey) on FER-2013 Training, selected on PublicTest.
$PY -m train expression --data "$FER_DIR/train" --val "$FER_DIR/test" --arch emonet-s --epochs 14 --out "$OUT"
run=$(last_run expression-emonet-s)
$PY -m export tflite "$run" --quant int8 --out "$MODELS" --name expression_int8 \
    --data "$FER_DIR/test" --calib-data "$FER_DIR/train" --verify-size 3589
cp "$run/best.keras" "$MODELS/expression.keras"

# 2. Character + emoji VAE for the morph panel.
$PY -m train vae --data "$ANIME_DIR" --data emoji:twemoji --preset gdl2-64 --limit 4000 --epochs 15 --out "$OUT"
run=$(last_run vae)
$PY -m export tflite "$run" --quant fp16 --out "$MODELS" --calib-data "$ANIME_DIR"

# 3. DCGAN emote generator on the built-in emoji.
$PY -m train dcgan --image-size 32 --width 32 --d-width 32 --batch-size 32 --ema-decay 0.99 --epochs 40 --out "$OUT"
run=$(last_run dcgan)
$PY -m export tflite "$run" --quant int8 --out "$MODELS"
