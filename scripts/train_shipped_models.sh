#!/usr/bin/env bash
# Retrains the models that mobile_demo ships and exports them into mobile_demo/models/ (make models).
# Long on a 2-core CPU: the expression models ~7 h (a 45-epoch teacher, 150 epochs distilled from it,
# then the single-pass student), the generators 1.5-3 h each when they share the machine. Data: ../shared/data (or FER_DIR / ANIME_DIR).
# Each step is resumable: rerun the printed `--resume RUN` command if a step is interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
FER_DIR=${FER_DIR:-../shared/data/fer2013}
ANIME_DIR=${ANIME_DIR:-../shared/data/anime_faces}
OUT=${OUT:-runs}
MODELS=mobile_demo/models
last_run() { ls -d "$OUT"/*-"$1"* | sort | tail -n 1; }

# 1. Expression classifier (EmoNet-S2: EmoNet-S's stages behind a stride-2 stem, 48x48 grey) on
#    FER-2013 Training, selected on PublicTest: a 45-epoch run (~1.5 h alone on a 2-core AVX-512 CPU),
#    then the shipped one, 150 epochs with mixup distilled from it (~5 h beside other jobs; shipped at its
#    last epoch, the end of the cosine schedule: last.keras).
#    A stopped step continues with --resume RUN.
$PY -m train expression --data "$FER_DIR/train" --val "$FER_DIR/test" --arch emonet-s2 --epochs 45 --out "$OUT"
teacher=$(last_run expression-emonet-s2)
$PY -m train expression --data "$FER_DIR/train" --val "$FER_DIR/test" --arch emonet-s2 --epochs 150 --mixup 0.2 \
    --teacher "$teacher" --out "$OUT"
run=$(last_run expression-emonet-s2)
#    The shipped file averages the face and its mirror image inside the graph (--flip-average).
$PY -m export tflite "$run/last.keras" --quant int8 --out "$MODELS" --name expression_int8 \
    --data "$FER_DIR/test" --calib-data "$FER_DIR/train" --verify-size 3589 --flip-average
# The .keras the demo ships: the same flip-averaged graph around last.keras, without its optimizer state.
$PY -c "import sys, keras; from keras_models.expression.tta import flip_averaged; \
flip_averaged(keras.models.load_model(sys.argv[1], compile=False)).save(sys.argv[2])" "$run/last.keras" "$MODELS/expression.keras"
#    The shipped single-pass student: the crops the page makes of every training face (BlazeFace boxes, the
#    crop contract with roll "eyes"; ~25 min) beside FER's own, 9 epochs from the two-pass model, which is
#    also the teacher; the best epoch on PublicTest, exported in one pass (no --flip-average).
$PY -m mobile_demo.page_crops "$FER_DIR/train" --out "$OUT/page-crops/train"
$PY -m train expression --data "$OUT/page-crops/train" --data "$FER_DIR/train" --val "$FER_DIR/test" --arch emonet-s2 \
    --init "$MODELS/expression.keras" --teacher "$MODELS/expression.keras" --mixup 0.2 --lr 2e-4 --epochs 9 --out "$OUT"
run=$(last_run expression-emonet-s2)
$PY -m export tflite "$run/best.keras" --quant int8 --out "$MODELS" --name expression_int8 \
    --data "$FER_DIR/test" --calib-data "$FER_DIR/train" --verify-size 3589
$PY -c "import sys, keras; keras.models.load_model(sys.argv[1], compile=False).save(sys.argv[2])" \
    "$run/best.keras" "$MODELS/expression.keras"

# 2. Character + emoji VAE for the morph panel (the decoder + the latents of the picked faces): 8,000 anime
#    faces and the face emoji of every installed set, a tenth of each held out (heldout.json); ~1 h.
#    Weights int8, activations float (--quant dynamic): full int8 speckles the faces visibly.
$PY -m train vae --data "$ANIME_DIR" --data emoji:all --preset morph-64 --limit 8000 --val-split 0.1 --epochs 60 --out "$OUT"
run=$(last_run vae)
$PY -m train vae-latents "$run" --characters "$ANIME_DIR"
$PY -m export tflite "$run/decoder.keras" --quant dynamic --out "$MODELS" --name vae-decoder --verify-size 256

# 3. The expression emote generator on the face emoji of every installed set (64x64, DiffAugment, EMA generator,
#    which is the one exported), conditioned on the expression: each emoji labelled by its weights in the
#    keyboard's emoji map (AC-GAN); ~52 min alone on a 2-core AVX-512 CPU (the time limit; resume to go on).
#    Then the judge (trained on real emoji only, one image of every emoji held out) ranks each expression's
#    ids: the panel's New shows the best first (emote-ids.json), with the before/after grids.
$PY -m train dcgan --data emoji:all --condition mobile_demo/static/emoji_map.json --image-size 64 --batch-size 16 \
    --ema-decay 0.999 --epochs 300 --time-limit 52 --out "$OUT"
run=$(last_run dcgan)
$PY -m export tflite "$run/generator_ema.keras" --quant int8 --out "$MODELS" --name emote_generator_int8 --task emote-generator
$PY -m train emote-judge --condition mobile_demo/static/emoji_map.json --epochs 80 --out "$OUT/emote-judge"
$PY -m export emote-ids "$MODELS/emote_generator_int8.tflite" --judge "$OUT/emote-judge/judge.keras" --scan 1024 --keep 64 \
    --sheets docs/samples

# 4. StyleGAN2-style anime faces for the slider panel: 240 kimg (~3 h alone on a 2-core AVX-512 CPU), the
#    attribute directions, a slider sheet per attribute, and only the sliders whose sheet shows their
#    attribute changing (judged by eye on the 238-kimg run: hair_brightness, hair_hue_red, mouth_open;
#    look at the sheets again after retraining). Weights int8, activations float (--quant dynamic):
#    full int8 clipped the synthesis (PSNR 20.6 dB against Keras) and the slider edits leave any calibration set.
$PY -m train stylegan --data "$ANIME_DIR" --preset lite64 --epochs 240 --out "$OUT"
run=$(last_run stylegan)
$PY -m train stylegan-directions "$run"
for attr in hair_brightness hair_hue_red hair_saturation hair_length mouth_open glasses eye_size blush; do
    $PY -m train stylegan-sheet "$run" --attr "$attr" --seeds 0,1,2 --out "docs/samples/stylegan-sheet-$attr.png"
done
$PY -m export sliders "$run/directions.json" --keep "${STYLEGAN_SLIDERS:-hair_brightness,hair_hue_red,mouth_open}"
$PY -m export tflite "$run" --quant dynamic --out "$MODELS" --name stylegan

# 5. Expression directions from the expression model's tags: the VAE's expression vectors (the morph's
#    "character wearing the expression") and the StyleGAN's, with their sheets; the StyleGAN's are dropped
#    from the page again while their sheets show no visible change (judged by eye on 2026-12-07).
$PY -m export expression-directions "$MODELS" --classifier "$MODELS/expression_int8.tflite" --sheets docs/samples
$PY -m export sliders "$MODELS/stylegan-directions.json" --keep "${STYLEGAN_SLIDERS:-hair_brightness,hair_hue_red,mouth_open}"
