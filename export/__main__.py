"""python -m export tflite SOURCE --quant {fp32,fp16,dynamic,int8} --out DIR | python -m export report DIR"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from core.cli import filter_native_stderr  # noqa: E402

if __name__ == "__main__":
    filter_native_stderr()  # before TensorFlow loads: its C++ start-up lines would bury one-line errors

from core.cli import run_cli  # noqa: E402
from export.cli import cli  # noqa: E402

if __name__ == "__main__":
    run_cli(cli, "python -m export")
