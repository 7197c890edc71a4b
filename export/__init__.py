"""Export Keras models to verified `.tflite` files (`core.runtime` runs them with one interface).

    python -m export tflite SOURCE --quant {fp32,fp16,dynamic,int8} --out DIR [--data PATH] [--force] [--name NAME]
    python -m export report DIR

SOURCE is a run directory (options.json "kind": expression -> best.keras or last.keras with
labels.txt; vae -> encoder.keras and decoder.keras; dcgan -> generator.keras) or a bare `.keras`
file, whose family is read from its shapes: image -> probabilities (classifier), image ->
[z_mean, z_log_var] (VAE encoder), vector -> image (VAE decoder / emote generator).

Every file has batch 1, one signature `serving_default` with named float32 input (`image` or
`z`) and outputs (`probs`; `z_mean`, `z_log_var`; `image`), and builtin TFLite ops only (checked
in the flatbuffer after conversion). int8 is full-integer inside, float32 at the edges (a
QUANTIZE / DEQUANTIZE pair), so every quantization level takes the same inputs. int8 is
calibrated with >= 200 real examples from the model's own data (classifiers: the run's training
data; `--calib-data` overrides) or N(0, 1) latents for decoders and generators.

Before anything is written, the `.tflite` runs in `ai_edge_litert` against the Keras model
(`export.tflite.THRESHOLDS`): classifiers top-1 agreement and accuracy drop on --data (default
the run's validation data, up to --verify-size examples); images PSNR over the output range;
encoder vectors SNR. A miss exits 2 and writes nothing unless --force.

DIR receives NAME.tflite, NAME.report.json (size, ops, median latency on 1 and all threads,
verification), labels.txt and NAME.labels.txt for classifiers, and manifest.json:
{"version": 1, "models": [{name, task, path (relative), labels, input {name, shape, dtype,
preprocessing, range}, outputs [{name, shape, dtype, range}], quant, size_bytes, sha256, metrics,
command, commit}]}, one entry per file, merged by path. manifest.json is renamed into place last, so
a kill leaves the previous export or the new one (export.manifest.write_outputs).
"""
