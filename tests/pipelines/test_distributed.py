"""tf.distribute on CPU: 2 logical devices (mirrored) and 2 local workers on loopback."""

import dataclasses
import json
import os
import socket
import subprocess
import sys

import pytest

WORKER = """
import json, sys
import tensorflow as tf
config, logical_devices = json.loads(sys.argv[1]), int(sys.argv[2])
if logical_devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * logical_devices)
from pipelines import train
from pipelines.text import TextConfig
model, metrics = train.train(TextConfig(**config), verbose=0)
replicas = train.make_strategy(config["strategy"]).num_replicas_in_sync
weights = sum(float(abs(w).sum()) for w in model.get_weights())
print("RESULT", json.dumps({"replicas": replicas, "weights": weights,
                            "loss": metrics["history"][-1]["loss"]}))
"""
TIMEOUT = 240


def launch(config, logical_devices=1, tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    args = [
        sys.executable,
        "-c",
        WORKER,
        json.dumps(dataclasses.asdict(config)),
        str(logical_devices),
    ]
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def result(process):
    try:
        out, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        pytest.fail(f"worker timed out after {TIMEOUT}s:\n{out[-3000:]}")
    assert process.returncode == 0, out[-3000:]
    return json.loads(out.split("RESULT ", 1)[1])


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus(tiny, tmp_path):
    config = dataclasses.replace(tiny, strategy="mirrored", epochs=1, steps=5)
    got = result(launch(config, logical_devices=2))
    assert got["replicas"] == 2 and got["loss"] > 0
    assert (tmp_path / "run" / "best.keras").is_file()


@pytest.mark.slow
def test_multi_worker_with_two_local_workers(tiny, tmp_path):
    config = dataclasses.replace(tiny, strategy="multi_worker", epochs=1, steps=5)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [
        launch(config, tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}})
        for i in range(2)
    ]
    results = [result(w) for w in workers]
    assert [r["replicas"] for r in results] == [2, 2]
    assert results[0]["loss"] > 0
    # Each worker trains on its own shard; synchronised gradients keep the weights equal.
    assert results[0]["weights"] == pytest.approx(results[1]["weights"], rel=1e-5)
    assert (tmp_path / "run" / "best.keras").is_file()  # the chief's directory
