"""A hostile pass over every command, kept as cheap tests: bad flags, bad files, bad run
directories. Each case ends in one line naming the problem (exit 1 or 2), no traceback, and
leaves the folder it was pointed at exactly as it was."""

import json
import os

import pytest

from pipelines import cli

CASES = [
    (["train", "--task=nope"], "Unknown task 'nope'"),
    (["train", "--cell=nope"], "--cell=nope: unknown cell"),
    (["train", "--size=huge", "--data={d}/ok.txt"], "--size=huge: expected one of"),
    (["train", "--batch_size=0"], "--batch_size=0"),
    (["train", "--seq_len=-1"], "--seq_len=-1"),
    (["train", "--epochs=0"], "--epochs=0"),
    (["train", "--learning_rate=0"], "--learning_rate=0.0"),
    (["train", "--learning_rate=nan"], "--learning_rate=nan"),
    (["train", "--learning_rate=inf"], "--learning_rate=inf"),
    (["train", "--dropout=1.5"], "--dropout=1.5"),
    (["train", "--clipnorm=-1"], "--clipnorm=-1.0"),
    (["train", "--schedule=linear"], "--schedule=linear"),
    (["train", "--optimizer=sgd"], "--optimizer=sgd"),
    (["train", "--strategy=tpu"], "--strategy=tpu"),
    (["train", "--level=byte"], "--level=byte"),
    (["train", "--data={d}/nope"], "nope: no such file"),
    (["train", "--data={d}/empty.txt"], "empty.txt: file is empty"),
    (["train", "--data={d}/binary.dat"], "binary.dat: binary file"),
    (["train", "--data={d}/latin1.txt"], "latin1.txt: not UTF-8"),
    (["train", "--data={d}/emptydir"], "emptydir: folder holds no files"),
    (["train", "--data={d}/fifo"], "fifo: not a regular file"),
    (["train", "--data={d}/hidden"], "hidden: folder holds no files"),
    (["train", "--data={d}/loop"], "loop: symbolic link loop"),
    (["train", "--preset=shakespeare_lstm"], "--preset names a trained preset"),
    (["train", "extra"], "takes flags only"),
    (["train", "--resume"], "needs --run_dir"),
    (["train", "--resume", "--run_dir={d}/nope"], "nope/config.json: no such file"),
    (["train", "--data={d}/ok.txt", "--run_dir={d}/ok.txt"], "ok.txt: not a folder"),
    (["train", "--weight_decay=2"], "--weight_decay=2.0"),
    (["train", "--adam_beta2=1"], "--adam_beta2=1.0"),
    (["train", "--warmup_steps=-1"], "--warmup_steps=-1"),
    (["train", "--patience=0"], "--patience=0"),
    (["train", "--intra_op_threads=-1"], "--intra_op_threads=-1"),
    (["train", "--units=0"], "--units=0"),
    (["train", "--layers=100"], "--layers=100"),
    (["train", "--max_tokens=1"], "--max_tokens=1"),
    (["train", "--steps=abc"], "--steps=abc"),
    (["train", "--mixed_precision=maybe"], "--mixed_precision=maybe"),
    (["train", "--task=music"], "--task=music is now two tasks"),
    (["train", "--task=chorales", "--transpositions=13"], "--transpositions=13"),
    (["train", "--task=chorales", "--steps_per_quarter=5"], "--steps_per_quarter=5"),
    (["train", "--task=translation", "--vocab_size=2"], "--vocab_size=2"),
    (["train", "--task=translation", "--max_len=1"], "--max_len=1"),
    (
        ["train", "--task=translation", "--data={d}/bad.tsv", "--run_dir={d}/r"],
        "bad.tsv: no valid source<TAB>target pair",
    ),
    (["train", "--task=speech", "--mel_bins=0"], "--mel_bins=0"),
    (["train", "--task=moving_shapes", "--size=2"], "--size=2"),
    (["train", "--task=melody", "--transpositions=-1"], "--transpositions=-1"),
    (["train", "--foo=1"], "Unknown command line flag 'foo'"),
    (
        ["train", "--data={d}/ok.txt", "--seq_len=100000", "--run_dir={d}/r"],
        "shorter than one window",
    ),
    (["train", "--cell=../../x"], "--cell=../../x"),
    (
        ["train", "--data={d}/ok.txt", "--level=word", "--seq_len=5000", "--run_dir={d}/r"],
        "1080 words",
    ),
    (["sample"], "needs --run_dir"),
    (["sample", "--run_dir={d}/nope"], "nope/config.json: no such file"),
    (["sample", "--preset=nope"], "Unknown preset 'nope'"),
    (["sample", "--run_dir={d}/r", "--preset=shakespeare_lstm"], "not both"),
    (["sample", "--run_dir={d}/nope", "--length=0"], "config.json: no such file"),
    (["sample", "--run_dir={d}/nope", "--temperature=-1"], "config.json: no such file"),
    (["sample", "--run_dir={d}/nope", "--top_p=0"], "config.json: no such file"),
    (["sample", "--run_dir={d}/nope", "--top_k=0"], "config.json: no such file"),
    (["sample", "--run_dir={d}/ok.txt"], "ok.txt/config.json: no such file"),
    (["sample", "--run_dir={d}/emptydir"], "emptydir/config.json: no such file"),
    (["sample", "--run_dir={d}/broken"], "broken/config.json: not valid JSON"),
    (["sample", "--run_dir={d}/unknowntask"], "Unknown task 'nope'"),
    (["sample", "--run_dir={d}/unknownfield"], "unknown config fields ['colour']"),
    (["sample", "--run_dir={d}/array"], "array/config.json: expected an object"),
    (["sample", "--run_dir={d}/nope", "--seed=abc"], "config.json: no such file"),
    (["sample", "--run_dir={d}/notask"], "notask/config.json: names no task"),
    (["sample", "--run_dir={d}/badcell"], "badcell/config.json: --cell=nope"),
    (["sample", "--run_dir={d}/badtype"], "badtype/config.json: batch_size='x'"),
    (["sample", "--run_dir={d}/nockpt"], "nockpt: no checkpoint"),
    (["evaluate"], "needs --run_dir"),
    (["evaluate", "--run_dir={d}/nope"], "nope/config.json: no such file"),
    (["evaluate", "--preset=nope"], "Unknown preset 'nope'"),
    (["evaluate", "--run_dir={d}/nope", "--data={d}/nope"], "nope/config.json: no such file"),
    (["evaluate", "--run_dir={d}/badcell"], "badcell/config.json: --cell=nope"),
    (["evaluate", "--run_dir={d}/badtype"], "badtype/config.json: batch_size='x'"),
    (["evaluate", "--run_dir={d}/nockpt"], "nockpt/vocab.json: missing"),
    (["evaluate", "--run_dir={d}/userlock"], "userlock/.lock: not an lstm-zoo lock file"),
    (["export"], "needs --run_dir"),
    (["export", "--run_dir={d}/nope", "--format=onnx"], "config.json: no such file"),
    (["export", "--run_dir={d}/nope", "--quantize=int4"], "config.json: no such file"),
    (["export", "--run_dir={d}/nope", "--format="], "--format is empty"),
    (["export", "--run_dir={d}/nope", "--seq_len=0"], "--seq_len=0"),
    (["export", "--run_dir={d}/nope", "--max_quality_loss=-1"], "--max_quality_loss=-1.0"),
    (["export", "--run_dir={d}/nope"], "nope/config.json: no such file"),
    (
        ["export", "--run_dir={d}/nope", "--num_threads=2"],
        "Unknown command line flag 'num_threads'",
    ),
    (["export", "--run_dir={d}/nockpt", "--out_dir={d}/out"], "nockpt/vocab.json: missing"),
    (["export", "--run_dir={d}/nockpt", "--out_dir={d}/ok.txt"], "ok.txt: not a directory"),
    (["translate"], "needs --run_dir"),
    (["translate", "--run_dir={d}/nope", "--input={d}/nope.txt"], "nope/config.json: no such file"),
    (
        ["translate", "--run_dir={d}/nope", "--input={d}/ok.txt", "--output={d}/ok.txt"],
        "is the --input file",
    ),
    (["translate", "--run_dir={d}/nope", "--batch_size=0"], "--batch_size=0"),
    (["translate", "--run_dir={d}/nope", "--beam_size=0"], "--beam_size=0"),
    (["translate", "--run_dir={d}/nope", "--length_penalty=11"], "--length_penalty=11.0"),
    (
        ["translate", "--run_dir={d}/nockpt", "--output={d}/ok.txt"],
        "a text run, not a translation run",
    ),
    (["translate", "--preset=nope"], "Unknown preset 'nope'"),
    (["study"], "needs --study_dir"),
    (["study", "--study_dir={d}/s"], "a new study needs --cells"),
    (["study", "--study_dir={d}/s", "--cells=nope,lstm", "--trials=1"], "--cell=nope"),
    (["study", "--study_dir={d}/s", "--cells=lstm", "--trials=0"], "--trials=0"),
    (["study", "--study_dir={d}/s", "--cells=lstm", "--trials=1", "--workers=0"], "--workers=0"),
    (["study", "--study_dir={d}/ok.txt", "--cells=lstm", "--trials=1"], "a file, not a folder"),
    (["study", "--study_dir={d}/brokenstudy"], "brokenstudy/study.json: not valid JSON"),
    (["study", "--study_dir={d}/typestudy"], "typestudy/study.json: cells='lstm': expected"),
    (["study", "--study_dir={d}/boundstudy"], "boundstudy/study.json: search dimension"),
    (["study", "--study_dir={d}/trialstudy"], "trialstudy/study.json: trials='3'"),
    (["study", "--study_dir={d}/s", "--cells=", "--trials=1"], "--cells is empty"),
    (["bench-tflite"], "needs --model"),
    (["bench-tflite", "--model={d}/nope.tflite"], "No .tflite file"),
    (["bench-tflite", "--model={d}/ok.txt"], "ok.txt: not a TFLite file"),
    (["bench-tflite", "--model={d}/ok.txt", "--num_threads=0"], "--num_threads=0"),
    (["bench-tflite", "--model={d}/empty.txt"], "empty.txt: not a TFLite file"),
    (["bench-tflite", "--model={d}/emptydir"], "No .tflite file"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["presets", "--x=1"], "Unknown command line flag 'x'"),
    (["list", "more"], "takes flags only"),
]


def _sandbox(folder):
    """Files and run directories that are wrong in every way the cases need."""
    folder.mkdir()

    def write(name, data):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)

    write("ok.txt", "To be or not to be that is the question.\n" * 100)
    write("empty.txt", "")
    write("binary.dat", b"\x00\x01\x02" * 100)
    write("latin1.txt", "café ".encode("latin-1") * 100)
    (folder / "emptydir").mkdir()
    os.mkfifo(folder / "fifo")
    write("hidden/.secret", "x" * 1000)
    os.symlink("loop", folder / "loop")
    write("bad.tsv", "one column only\nanother\n")
    base = {"task": "text", "cell": "lstm", "size": "tiny", "data": str(folder / "ok.txt")}
    runs = {
        "broken": '{"task": ',
        "unknowntask": {**base, "task": "nope"},
        "unknownfield": {**base, "colour": "red"},
        "array": "[1, 2]",
        "notask": {"cell": "lstm"},
        "badcell": {**base, "cell": "nope"},
        "badtype": {**base, "batch_size": "x"},
        "nockpt": base,
        "userlock": base,
    }
    for name, config in runs.items():
        write(f"{name}/config.json", config if isinstance(config, str) else json.dumps(config))
    write("userlock/.lock", "mine")
    study = {"task": "text", "cells": ["lstm"], "trials": 3}
    write("brokenstudy/study.json", "{")
    write("typestudy/study.json", json.dumps({**study, "cells": "lstm"}))
    write("trialstudy/study.json", json.dumps({**study, "trials": "3"}))
    write(
        "boundstudy/study.json",
        json.dumps(
            {**study, "space": [{"name": "learning_rate", "low": 0, "high": 0.1, "log": True}]}
        ),
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "s"
    _sandbox(folder)
    return folder


def _listing(folder):
    """Every path under `folder`, with the bytes of each file (a reader's lock comes and goes,
    so folders are compared by what they hold)."""
    return sorted(
        (
            os.path.relpath(os.path.join(p, n), folder),
            None
            if not os.path.isfile(os.path.join(p, n)) or n == "fifo"
            else open(os.path.join(p, n), "rb").read(),
        )
        for p, dirs, files in os.walk(folder)
        for n in dirs + files
    )


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_hostile_command_gets_one_line_and_changes_nothing(sandbox, capsys, args, message):
    before = _listing(sandbox)
    code = cli.run([a.replace("{d}", str(sandbox)) for a in args])
    err = capsys.readouterr().err.strip()
    assert code in (1, 2), err
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1 and message in err, err
    assert _listing(sandbox) == before
