"""tf.distribute paths, really run on this CPU: MirroredStrategy over two logical CPU devices gives
the same steps as one device (VAE, DCGAN, classifier); MultiWorkerMirroredStrategy with two worker
processes on 127.0.0.1 trains a tiny VAE through `python -m train vae` (and a tiny classifier through
`python -m train expression`) and both workers end with the same weights and logs; bad strategy input
is one line and exit status 2.

Logical CPU devices must be configured before TensorFlow starts, so the distributed runs happen in
subprocesses (one for the equivalence checks, two workers, and the CLI cases, started together)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", EMOTEKIT_QUIET="1", CUDA_VISIBLE_DEVICES="")
TIMEOUT = 600  # the machine is shared with long trainings: generous, the runs themselves are tiny

EQUIVALENCE = textwrap.dedent('''
    import json, os, sys
    os.environ["EMOTEKIT_VIRTUAL_CPUS"] = "2"
    import numpy as np
    from train.distribute import distribute_arrays, make_strategy, prepare_model, scope, tfrecord_input_fn
    two = make_strategy("mirrored")  # configures the two logical CPUs first
    import keras
    import tensorflow as tf
    from data_pipelines import ImageSet, make_dataset

    BATCH = 8

    def weights(*models):
        return [w.tolist() for m in models for w in m.get_weights()]

    def run(kind, strategy):
        keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        if kind == "classifier":
            from keras_models.expression.emonet import emonet
            x = rng.integers(0, 256, (BATCH, 24, 24, 1)).astype(np.uint8)
            y = np.arange(BATCH) % 3
            ds = distribute_arrays(strategy, lambda a, b, bs: make_dataset(a, b, bs, num_classes=3, repeat=True), x, y, BATCH)
            with scope(strategy):
                model = emonet((24, 24, 1), 3, widths=(16, 16, 16, 16), dropout=0.0)
                prepare_model(model, strategy)
                model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.CategoricalCrossentropy())
            w0 = weights(model)
            h = model.fit(ds, epochs=2, steps_per_epoch=1, verbose=0, shuffle=False).history
            return h["loss"], w0, weights(model)
        if kind == "vae":
            from keras_models.vae import build_vae
            x = rng.integers(0, 256, (BATCH, 32, 32, 3)).astype(np.uint8)
            ds = distribute_arrays(strategy, lambda a, b, bs: make_dataset(a, None, bs, repeat=True), x, None, BATCH)
            with scope(strategy):
                model = build_vae("tiny-32", seed=0)
                prepare_model(model, strategy)
                model.compile(optimizer=keras.optimizers.SGD(1e-4))
            w0 = weights(model.encoder, model.decoder)
            h = model.fit(ds, epochs=2, steps_per_epoch=1, verbose=0, shuffle=False).history
            return h["total_loss"], w0, weights(model.encoder, model.decoder)
        if kind == "dcgan":
            from keras_models.dcgan import DCGAN, get_preset
            x = rng.integers(0, 256, (BATCH, 32, 32, 3)).astype(np.uint8)
            make = lambda a, b, bs: make_dataset(a, None, bs, repeat=True, drop_remainder=True).map(lambda t: t / 127.5 - 1.0)
            ds = distribute_arrays(strategy, make, x, None, BATCH)
            with scope(strategy):
                g, d = get_preset("pytorch-tutorial").build(32, 16, 16)
                gan = DCGAN(d, g, 100, seed=0)
                prepare_model(gan, strategy)
                gan.compile(keras.optimizers.SGD(0.01), keras.optimizers.SGD(0.01), keras.losses.BinaryCrossentropy())
            w0 = weights(g, d)
            h = gan.fit(ds, epochs=2, steps_per_epoch=1, verbose=0, shuffle=False).history
            return h["d_loss"] + h["g_loss"], w0, weights(g, d)

    out = {"replicas": two.num_replicas_in_sync}
    for kind in ("classifier", "vae", "dcgan"):
        out[kind] = {}
        for n, strategy in ((1, tf.distribute.get_strategy()), (2, two)):
            losses, w0, w = run(kind, strategy)
            out[kind][n] = {"losses": [float(v) for v in losses], "initial": w0, "weights": w}

    # TFRecords: two input pipelines read disjoint shard files, in per-replica batches.
    from data_pipelines.tfrecords import write_tfrecords
    images = np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1).repeat(4, 1).repeat(4, 2)
    path = os.path.join(sys.argv[1], "records")
    write_tfrecords(ImageSet(images, np.zeros(12, np.int32), ("a",), [str(i) for i in range(12)]), path, shards=4)
    fn = tfrecord_input_fn(path, global_batch=4, shuffle=False)
    pipelines = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
        pipelines.append([[int(v) for v in x[:, 0, 0, 0]] for x, _ in fn(ctx).as_numpy_iterator()])
    out["tfrecord_pipelines"] = pipelines
    print("RESULT " + json.dumps(out))
''')


def _result(proc_out: str) -> dict:
    lines = [line for line in proc_out.splitlines() if line.startswith("RESULT ")]
    assert lines, proc_out[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("equivalence")
    script = tmp / "equivalence.py"
    script.write_text(EQUIVALENCE)
    proc = subprocess.run([sys.executable, str(script), str(tmp)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _result(proc.stdout)


# What the check must tell apart: a gradient scaled by the replica count (the bug it guards against)
# changes every update by 50 % or more. What it must tolerate: float32 sums taken in another order
# (per replica, then across replicas; and the CPU's own kernels, AVX2 or AVX-512), which BatchNorm
# over 4 examples a replica amplifies to a few percent in single elements. So each tensor's update
# (weights after two SGD steps minus before) is compared as a whole, by norm, at 10 %; the losses
# (means over the batch, no cancellation) at 1e-3.
RTOL_LOSS = 1e-3
RTOL_UPDATE = 0.1


def update_mismatch(w0, one, two) -> list[tuple[int, float]]:
    """(tensor index, |update_2 - update_1| / |update_1|) for the tensors past RTOL_UPDATE. A tensor
    that (almost) did not move is measured against float32 noise at its own scale instead."""
    bad = []
    for i, (a0, a, b) in enumerate(zip(w0, one, two)):
        a0, a, b = (np.asarray(v, np.float64) for v in (a0, a, b))
        d1, d2 = a - a0, b - a0
        floor = 1e-6 * max(np.linalg.norm(a0), 1.0)  # float32 rounding of the weights themselves
        err = np.linalg.norm(d2 - d1) / max(np.linalg.norm(d1), floor)
        if err > RTOL_UPDATE and np.linalg.norm(d2 - d1) > floor:
            bad.append((i, float(err)))
    return bad


def _assert_same_training(result):
    one, two = result["1"], result["2"]
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=RTOL_LOSS)
    assert len(one["weights"]) == len(two["weights"]) == len(one["initial"])
    for a, b in zip(one["initial"], two["initial"]):
        np.testing.assert_array_equal(a, b)  # the same seed built the same model on 1 and 2 replicas
    assert not update_mismatch(one["initial"], one["weights"], two["weights"])


def test_update_mismatch_catches_a_scaled_gradient():
    """The check itself: an update scaled by 2 (or 1/2) fails it; one off by float32 noise passes."""
    rng = np.random.default_rng(0)
    w0 = [rng.normal(size=(3, 3, 4)), rng.normal(size=8)]
    d = [rng.normal(size=w.shape) * 0.01 for w in w0]
    one = [w + u for w, u in zip(w0, d)]
    assert update_mismatch(w0, one, [w + 2 * u for w, u in zip(w0, d)])
    assert update_mismatch(w0, one, [w + 0.5 * u for w, u in zip(w0, d)])
    noisy = [w + u * (1 + 1e-3 * rng.normal(size=u.shape)) for w, u in zip(w0, d)]
    assert not update_mismatch(w0, one, noisy)


def test_mirrored_two_cpus(equivalence):
    assert equivalence["replicas"] == 2


@pytest.mark.parametrize("kind", ["classifier", "vae", "dcgan"])
def test_mirrored_matches_one_device(equivalence, kind):
    """First and second step losses and the weights after two SGD steps: the same on 2 replicas as
    on 1 (SGD makes a replica-count-scaled gradient visible, unlike Adam)."""
    _assert_same_training(equivalence[kind])


def test_tfrecords_sharded_by_file_per_pipeline(equivalence):
    first, second = equivalence["tfrecord_pipelines"]
    # 4 shards of 3 examples: pipeline 0 reads shards 0 and 2, pipeline 1 shards 1 and 3; batches of 4 // 2.
    assert all(len(b) == 2 for b in first + second)
    seen_first, seen_second = sorted(sum(first, [])), sorted(sum(second, []))
    assert not set(seen_first) & set(seen_second)
    assert set(seen_first) <= {0, 1, 2, 6, 7, 8} and set(seen_second) <= {3, 4, 5, 9, 10, 11}


# --------------------------------------------------------------------------- multi-worker


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _image_folder(path, n=16, size=32):
    from PIL import Image

    os.makedirs(path)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(path, f"{i:02d}.png"))
    return path


def _h5_weights(keras_file):
    import h5py

    with zipfile.ZipFile(keras_file) as z, z.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
        out = {}
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _cli(args, env_extra=None):
    return subprocess.Popen([sys.executable, "-m", "train", *args], cwd=ROOT, env=dict(ENV, **(env_extra or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _two_workers(args, out):
    """Runs `python -m train ARGS --strategy multiworker --out OUT` as two worker processes on
    127.0.0.1; both must succeed. Returns their (stdout, stderr) and run directories (chief, worker 1)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = [*args, "--strategy", "multiworker", "--out", out]
    procs = [_cli(args, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    results = []
    for p in procs:
        try:
            results.append(p.communicate(timeout=TIMEOUT))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, (_, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr[-3000:]
    chief = [d for d in os.listdir(out) if not d.startswith(".")]
    worker = os.listdir(os.path.join(out, ".worker-1"))
    assert len(chief) == 1 and len(worker) == 1, (chief, worker)
    assert "strategy: MultiWorkerMirroredStrategy: 2 replica(s) on 2 workers" in results[0][0]
    with open(os.path.join(out, chief[0], "options.json")) as f:
        assert json.load(f)["strategy"] == "multiworker"
    return results, os.path.join(out, chief[0]), os.path.join(out, ".worker-1", worker[0])


def _same_weights(chief_dir, worker_dir, names):
    for name in names:
        a = _h5_weights(os.path.join(chief_dir, name))
        b = _h5_weights(os.path.join(worker_dir, name))
        assert a.keys() == b.keys() and a
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _same_logs(chief_dir, worker_dir):
    """fit()'s logs are all-reduced over the workers (train.distribute.fix_multi_worker_fit): both log.csv agree."""
    logs = []
    for run_dir in (chief_dir, worker_dir):
        with open(os.path.join(run_dir, "log.csv")) as f:
            logs.append([line.strip().split(",") for line in f if line.strip()])
    assert logs[0][0] == logs[1][0] and len(logs[0]) == 2, logs
    values = [np.asarray([[float("nan") if v == "NA" else float(v) for v in row] for row in log[1:]]) for log in logs]
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5)  # NA (no validation): nan on both


def test_multiworker_vae_two_processes(tmp_path):
    data = _image_folder(str(tmp_path / "faces"))
    args = ["vae", "--data", data, "--preset", "tiny-32", "--epochs", "1", "--epoch-size", "16", "--batch-size", "8", "--no-flip"]
    _, chief, worker = _two_workers(args, str(tmp_path / "runs"))
    _same_weights(chief, worker, ("encoder.keras", "decoder.keras"))
    _same_logs(chief, worker)


def test_multiworker_expression_two_processes(tmp_path):
    """The classifier's fit() (compile metrics, validation) under two workers, the same way."""
    from PIL import Image

    data = str(tmp_path / "faces")
    rng = np.random.default_rng(2)
    for k, name in enumerate(("happy", "sad")):
        os.makedirs(os.path.join(data, name))
        for i in range(8):
            img = np.clip(60 + 100 * k + rng.normal(0, 10, (24, 24)), 0, 255).astype(np.uint8)
            Image.fromarray(img, "L").save(os.path.join(data, name, f"{i}.png"))
    args = ["expression", "--data", data, "--val", data, "--arch", "emonet-xs", "--image-size", "24", "--batch-size", "8",
            "--epochs", "1"]
    _, chief, worker = _two_workers(args, str(tmp_path / "runs"))
    _same_weights(chief, worker, ("last.keras",))
    _same_logs(chief, worker)


BEFORE_STRATEGY = textwrap.dedent('''
    import json, sys
    import tensorflow as tf
    from tensorflow.python.eager import context
    from train.__main__ import cli

    class Reached(BaseException):  # not an Exception: no command may turn it into a UserError
        pass

    started = {}

    def probe(*args, **kwargs):  # stands in for the real strategy, which would start the runtime
        started[current] = context.context()._context_handle is not None
        raise Reached

    tf.distribute.MultiWorkerMirroredStrategy = probe  # train.distribute.make_strategy looks it up at call time
    data = sys.argv[1]
    for current, args in (("vae", ["--preset", "tiny-32"]), ("dcgan", ["--preset", "pytorch-tutorial", "--image-size", "32"]),
                          ("expression", ["--arch", "emonet-s"])):
        try:
            cli.main([current, "--data", data, "--strategy", "multiworker", "--out", data + "-runs", *args], standalone_mode=False)
        except Reached:
            pass
    print("RESULT " + json.dumps(started))
''')


def test_strategy_is_created_before_tensorflow_starts(tmp_path):
    """`python -m train <model>` imports every command module and validates its options, yet the
    TensorFlow runtime must still be untouched when the strategy is made: a multi-worker strategy
    configures collective ops at runtime start-up ("Collective ops must be configured at program
    startup" otherwise). Checked for every model command, without any training."""
    script = tmp_path / "before_strategy.py"
    script.write_text(BEFORE_STRATEGY)
    data = _image_folder(str(tmp_path / "faces"), n=2)
    tf_config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    env = dict(ENV, TF_CONFIG=json.dumps(tf_config))
    proc = subprocess.run([sys.executable, str(script), data], cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = _result(proc.stdout)
    assert set(started) == {"vae", "dcgan", "expression"}, (started, proc.stderr[-2000:])
    assert not any(started.values()), f"TensorFlow already started when the strategy was made: {started}"
    assert not os.path.exists(data + "-runs")


# --------------------------------------------------------------------------- bad input


def test_bad_strategy_input_is_one_line(tmp_path):
    data = _image_folder(str(tmp_path / "faces"), n=4)
    base = ["vae", "--preset", "tiny-32", "--epochs", "1", "--out", str(tmp_path / "runs")]
    cases = {
        "tpu": (base + ["--data", data, "--strategy", "tpu"], {}, "TPU"),
        "tpu-grpc": (base + ["--data", data, "--strategy", "tpu", "--tpu", f"grpc://127.0.0.1:{_free_ports(1)[0]}"], {}, "unreachable"),
        "tf-config-json": (base + ["--data", data, "--strategy", "multiworker"], {"TF_CONFIG": "{cluster: oops"},
                           "TF_CONFIG is not valid JSON"),
        "tf-config-keys": (base + ["--data", data, "--strategy", "multiworker"], {"TF_CONFIG": '{"cluster": {"worker": ["127.0.0.1:1"]}}'},
                           "'task'"),
        "local-data": (base + ["--data", str(tmp_path / "nope")], {}, str(tmp_path / "nope")),
        "gs-data": (base + ["--data", "gs://emotekit-no-such-bucket-0/faces"], {}, "gs://emotekit-no-such-bucket-0/faces"),
    }
    procs = {k: _cli(args, env) for k, (args, env, _) in cases.items()}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
        lines = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2, (key, stderr[-2000:])
        assert len(lines) == 1 and cases[key][2] in lines[0], (key, stderr[-2000:])
        assert "Traceback" not in stderr, key
    assert not os.path.exists(tmp_path / "runs") or not os.listdir(tmp_path / "runs")


def test_tf_config_checks():
    from core.cli import UserError
    from train.distribute import parse_tf_config

    good = {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert parse_tf_config(json.dumps(good)) == good
    bad = {
        "": "needs TF_CONFIG",
        "[1, 2]": "JSON object",
        '{"task": {"type": "worker", "index": 0}}': "no 'cluster'",
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}': "out of range",
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}': "not a job",
        '{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}': "host:port",
        '{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}': "parameter servers",
    }
    for raw, msg in bad.items():
        with pytest.raises(UserError, match=msg):
            parse_tf_config(raw)


def test_batch_must_split_over_replicas():
    from core.cli import UserError
    from train.distribute import per_replica_batch

    class Two:
        num_replicas_in_sync = 2

    assert per_replica_batch(64, Two()) == 32
    with pytest.raises(UserError, match="multiple of 2"):
        per_replica_batch(63, Two())
