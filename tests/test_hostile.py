"""Inputs that change or block while they are read, concurrent writers, manifests that
point outside their folder, and writers stopped by signals. The cases, and what each
must give, are listed in ``tests/data/bad/CATALOGUE.md`` ("Scenarios")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dnakmer import Genome, KmerTokenizer, OutputBusyError, tokenize_fasta, tokenize_genome
from dnakmer._io import output_lock

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and flock")
ROOT = Path(__file__).resolve().parents[1]


def fasta_text(records: int, length: int, seed: int = 0) -> bytes:
    """``records`` records of ``length`` random bases, 80 per line."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(records):
        seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, length)].tobytes()
        lines = [seq[j : j + 80] for j in range(0, length, 80)]
        out.append(b">rec%d\n" % i + b"\n".join(lines) + b"\n")
    return b"".join(out)


def _env(**extra: str) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT / "python")} | extra


def _feed(fifo: Path, data: bytes, pause_after: int | None = None,
          gate: threading.Event | None = None) -> threading.Thread:  # fmt: skip
    """Write ``data`` into ``fifo`` from a thread (optionally stopping after
    ``pause_after`` bytes until ``gate`` is set)."""

    def run() -> None:
        # The reader may be killed mid-stream: a broken pipe is then expected.
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:
            if pause_after is None:
                f.write(data)
                return
            f.write(data[:pause_after])
            f.flush()
            assert gate is not None
            gate.wait(60)
            f.write(data[pause_after:])

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_fifo_is_read_once_as_a_stream(tmp_path: Path) -> None:
    """A FIFO with several threads: read once, as a stream, with the regular file's result."""
    data = fasta_text(6, 5000)
    plain = tmp_path / "genome.fa"
    plain.write_bytes(data)
    fifo = tmp_path / "genome.fifo"
    code = (
        "import sys, json, numpy as np, dnakmer\n"
        "tok = dnakmer.KmerTokenizer(6)\n"
        "kind, path, out = sys.argv[1:]\n"
        "if kind == 'genome':\n"
        "    g = dnakmer.Genome.open(path)\n"
        "    print(json.dumps([g.names, [len(g.fetch(n)) for n in g.names]]))\n"
        "elif kind == 'memory':\n"
        "    ids = dnakmer.tokenize_fasta(path, tok)\n"
        "    print(json.dumps({k: int(v.sum()) for k, v in ids.items()}))\n"
        "else:\n"
        "    m = dnakmer.tokenize_genome(path, tok, out)\n"
        "    print(json.dumps([r['n_tokens'] for r in m['records']]))\n"
    )
    expected = {
        "genome": [[f"rec{i}" for i in range(6)], [5000] * 6],
        "memory": {f"rec{i}": int(v.sum()) for i, v in enumerate(
            tokenize_fasta(plain, KmerTokenizer(6)).values())},
        "disk": [4995] * 6,
    }  # fmt: skip
    for kind, want in expected.items():
        os.mkfifo(fifo)
        writer = _feed(fifo, data)
        out = tmp_path / f"out-{kind}"
        done = subprocess.run(
            [sys.executable, "-c", code, kind, str(fifo), str(out)],
            capture_output=True, text=True, timeout=120, env=_env(DNAKMER_NUM_THREADS="2"),
        )  # fmt: skip
        writer.join(10)
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert (got if kind != "memory" else {k: v for k, v in got.items()}) == want, kind
        fifo.unlink()
    # What tokenize_genome recorded for the FIFO: the bytes it streamed, hashed.
    manifest = json.loads((tmp_path / "out-disk" / "manifest.json").read_text())
    import hashlib

    assert manifest["input"]["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("change", ["truncate", "append", "rewrite"])
def test_a_file_that_changes_while_read_is_an_error(
    tmp_path: Path, threads: int, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small enough to split over 2 threads: the parallel reader must notice it too.
    monkeypatch.setenv("DNAKMER_SPLIT_MIN_BYTES", "4096")
    data = fasta_text(40, 3000)
    path = tmp_path / "g.fa"

    def changer(done: int, total: int) -> None:
        if changer.fired:  # type: ignore[attr-defined]
            return
        changer.fired = True  # type: ignore[attr-defined]
        if change == "truncate":
            os.truncate(path, len(data) // 2)
        elif change == "append":
            with open(path, "ab") as f:
                f.write(b">late\nACGT\n")
        else:  # same size, new content and modification time
            time.sleep(0.01)
            with open(path, "r+b") as f:
                f.write(data[::-1][: len(data)])

    for read in ("genome", "disk"):
        path.write_bytes(data)
        changer.fired = False  # type: ignore[attr-defined]
        out = tmp_path / f"out-{read}"
        with pytest.raises(OSError, match="changed while it was read"):
            if read == "genome":
                Genome.open(path, threads=threads, progress=changer)
            else:
                tokenize_genome(path, KmerTokenizer(6), out, threads=threads, progress=changer)
        if read == "disk":
            assert list(out.iterdir()) == [], "no record file and no manifest is left"


def test_two_writers_of_one_folder(tmp_path: Path) -> None:
    """The second writer is refused at once, the first one's output is whole."""
    genome = tmp_path / "g.fa"
    genome.write_bytes(fasta_text(4, 2000))
    out = tmp_path / "tokens"
    started, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def slow(done: int, total: int) -> None:
        started.set()
        release.wait(60)

    def first() -> None:
        outcome["manifest"] = tokenize_genome(genome, KmerTokenizer(6), out, progress=slow)

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(60)
    with pytest.raises(OutputBusyError, match="being written by another dnakmer process"):
        tokenize_genome(genome, KmerTokenizer(3), out, overwrite=True)
    # The command line says so in one line.
    cli = subprocess.run(
        [sys.executable, "-m", "dnakmer", "tokenize", str(genome), "--out", str(out),
         "--overwrite"], capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert cli.returncode == 1
    assert "being written by another dnakmer process" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    release.set()
    t.join(60)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == outcome["manifest"] and manifest["k"] == 6
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json"] + [r["file"] for r in manifest["records"]]
    )
    # Once the first writer is done the folder is free again.
    with output_lock(out):
        pass


@contextlib.contextmanager
def _held_by_another_writer(folder: Path):  # type: ignore[no-untyped-def]
    """The folder's lock, taken through an open file of its own as another process's
    writer would (a lock of the same thread would be shared, not refused)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)


def test_training_and_study_folders_take_one_writer(tmp_path: Path) -> None:
    """pretrain, finetune and interrogate refuse a folder another run is writing and
    leave what it holds alone; a folder they created for a run that failed is removed."""
    pytest.importorskip("torch")
    from dnakmer.data import demo_models_dir
    from dnakmer.study.budget import Budget
    from dnakmer.study.interrogate import interrogate
    from dnakmer.training.finetune import data_from_tsv, finetune
    from dnakmer.training.pretrain import ModelShape, pretrain
    from dnakmer.training.trainer import TrainOptions

    opts = TrainOptions(max_steps=1, batch_size=4, quiet=True)
    tiny = ModelShape(hidden=32, layers=1, heads=2, intermediate=64, dropout=0.0)
    phix = ROOT / "tests" / "data" / "phix174.fa"
    tsv = tmp_path / "train.tsv"
    tsv.write_text("sequence\tlabel\nACGTACGTAC\t0\nTTGACCAGTA\t1\n")
    model = demo_models_dir() / "overlapping-6mer"
    runs = {
        "pretrain": lambda out: pretrain(phix, out, k=3, max_tokens=16, shape=tiny, options=opts,
                                         n_train=8, n_eval=4),
        "finetune": lambda out: finetune(data_from_tsv(tsv, tsv, KmerTokenizer(6)), model, out,
                                         options=opts),
        "interrogate": lambda out: interrogate(phix, [model], out, ks=(1,), budget=Budget(),
                                               quiet=True),
    }  # fmt: skip
    for name, run in runs.items():
        out = tmp_path / name
        with _held_by_another_writer(out):
            (out / "theirs.txt").write_text("kept")
            with pytest.raises(OutputBusyError, match="being written by another dnakmer process"):
                run(out)
            assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"], name
    # A failed run does not leave the folder it made.
    with pytest.raises(ValueError):
        finetune(data_from_tsv(tsv, tsv, KmerTokenizer(6)), model, tmp_path / "new",
                 options=opts, init="neither")  # fmt: skip
    assert not (tmp_path / "new").exists()


def test_a_manifest_cannot_send_deletions_outside_its_folder(tmp_path: Path) -> None:
    victims = [tmp_path / "victim.npy", tmp_path / "keep" / "data.npy", tmp_path / "x.txt"]
    for v in victims:
        v.parent.mkdir(exist_ok=True)
        v.write_bytes(b"precious")
    out = tmp_path / "tokens"
    out.mkdir()
    files = [str(victims[0]), "../victim.npy", "../keep/data.npy", "sub/../../x.txt",
             "..", "", ".", "/"]  # fmt: skip
    (out / "manifest.json").write_text(
        json.dumps({"kind": "dnakmer.tokens", "records": [{"file": f} for f in files] + ["x"]})
    )
    genome = tmp_path / "g.fa"
    genome.write_bytes(fasta_text(2, 100))
    # Not this genome's tokens: refused without overwrite, and with it replaced, but only
    # plain .npy names inside the folder are removed, whatever the manifest says.
    with pytest.raises(FileExistsError, match="another genome"):
        tokenize_genome(genome, KmerTokenizer(6), out)
    tokenize_genome(genome, KmerTokenizer(6), out, overwrite=True)
    assert all(v.read_bytes() == b"precious" for v in victims)


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "tokens"
    out.mkdir()
    stale = [".dnakmer-4242-0-3.npy", ".rec0.npy.partial-4242", "..dnakmer-1-0-0.npy.partial-1",
             ".manifest.json.k2j3h4.partial"]  # fmt: skip
    kept = [".keep", ".notes.txt", "readme.partial"]
    for name in stale + kept:
        (out / name).write_bytes(b"x")
    (out / ".dir.partial").mkdir()
    genome = tmp_path / "g.fa"
    genome.write_bytes(fasta_text(2, 100))
    tokenize_genome(genome, KmerTokenizer(6), out, overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert not names & set(stale)
    assert set(kept) | {".dir.partial"} <= names


def _wait_for(cond: Any, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".")) if out.exists() else []


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGKILL"])
def test_a_stopped_tokenize_leaves_nothing_behind(tmp_path: Path, how: str) -> None:
    """Stopped while writing a record (its input, a FIFO, holds the rest back): SIGTERM
    and Ctrl-C remove everything it wrote; after kill -9 the next run removes the dead
    writer's temporaries and succeeds."""
    data = fasta_text(3, 400_000)
    fifo = tmp_path / "g.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "tokens"
    gate = threading.Event()
    writer = _feed(fifo, data, pause_after=len(data) // 2, gate=gate)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dnakmer", "tokenize", str(fifo), "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(DNAKMER_NUM_THREADS="1"),
    )  # fmt: skip
    _wait_for(lambda: any(".npy" in n for n in _hidden(out)))  # a record being written
    proc.send_signal(getattr(signal, how))
    gate.set()  # the blocked read returns, and the signal is seen at the next step
    _, err = proc.communicate(timeout=120)
    writer.join(10)
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
        assert _hidden(out), "kill -9 leaves the temporaries"
        plain = tmp_path / "g.fa"
        plain.write_bytes(data)
        manifest = tokenize_genome(plain, KmerTokenizer(6), out)
        assert _hidden(out) == []
        assert [r["bases"] for r in manifest["records"]] == [400_000] * 3
        return
    assert proc.returncode == (143 if how == "SIGTERM" else 130), err
    assert list(out.iterdir()) == [], "nothing is left: no temporaries, records or manifest"


def test_corrupt_datasets_name_the_file(tmp_path: Path) -> None:
    """Every way a saved next-k-mer dataset can be damaged gives a DatasetError naming
    the file; the command line prints it as one line."""
    import shutil

    from dnakmer import DatasetError
    from dnakmer.datasets.nextkmer import NextKmerDataset, build

    good = tmp_path / "good"
    build(ROOT / "tests/data/lambda_phage.fa.gz", 2, 30, None, n_train=200, n_val=40,
          n_test=40).save(good)  # fmt: skip
    NextKmerDataset.load(good)

    def damaged(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(good, d)
        return d

    cases: list[tuple[Path, str, str]] = []
    d = damaged("labels_out_of_range")
    labels = np.load(d / "labels.npy")
    labels[3] = 16
    np.save(d / "labels.npy", labels)
    cases.append((d, "labels.npy", r"label 16 is outside \[0, 4\^2\) for k = 2"))
    d = damaged("missing_key")
    m = json.loads((d / "manifest.json").read_text())
    del m["k"], m["genome"]["sha256"]
    (d / "manifest.json").write_text(json.dumps(m))
    cases.append((d, "manifest.json", r"missing keys \['k', 'genome.sha256'\]"))
    d = damaged("bad_json")
    (d / "manifest.json").write_text('{"kind": "dnakmer.nextkmer", ')
    cases.append((d, "manifest.json", "not valid JSON"))
    d = damaged("truncated_npy")
    raw = (d / "input_ids.npy").read_bytes()
    (d / "input_ids.npy").write_bytes(raw[: len(raw) // 2])
    cases.append((d, "input_ids.npy", "not a complete .npy file"))
    d = damaged("short_npy")
    np.save(d / "strand.npy", np.load(d / "strand.npy")[:-5])
    cases.append((d, "strand.npy", r"the manifest says int8\[280\]"))
    d = damaged("missing_npy")
    (d / "record.npy").unlink()
    cases.append((d, "record.npy", "missing"))
    d = damaged("split_counts")
    split = np.load(d / "split.npy")
    split[0] = 2 if split[0] != 2 else 0
    np.save(d / "split.npy", split)
    cases.append((d, "split.npy", "samples per split"))
    d = damaged("bases_alphabet")
    ids = np.load(d / "input_ids.npy")
    ids[1, 2] = 7
    np.save(d / "input_ids.npy", ids)
    cases.append((d, "input_ids.npy", "base codes other than 0-3"))
    for folder, file, message in cases:
        with pytest.raises(DatasetError, match=message) as err:
            NextKmerDataset.load(folder)
        assert err.value.path == str(folder / file), folder.name
    cli = subprocess.run(
        [sys.executable, "-m", "dnakmer", "nextkmer", "baselines", str(cases[0][0])],
        capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert cli.returncode == 1 and "label 16 is outside" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1


def test_corrupt_task_datasets_name_the_file(tmp_path: Path) -> None:
    """A saved annotation-task dataset with values it cannot hold gives a DatasetError
    naming the file, when loaded and when fine-tuning reads it (one line on the CLI)."""
    import shutil

    from dnakmer import DatasetError
    from dnakmer.datasets.tasks import TaskDataset, build_task

    good = tmp_path / "good"
    build_task(ROOT / "tests/data/yeast_chrI.fa.gz", ROOT / "tests/data/yeast_chrI.gff.gz",
               "promoter", tokenizer=KmerTokenizer(3), upstream=39, downstream=20,
               seed=0).save(good)  # fmt: skip
    assert len(TaskDataset.load(good)) == 202

    def damaged(name: str, field: str, change: Any) -> Path:
        d = tmp_path / name
        shutil.copytree(good, d)
        a = np.load(d / f"{field}.npy")
        change(a)
        np.save(d / f"{field}.npy", a)
        return d

    def first(value: Any) -> Any:
        return lambda a: a.__setitem__(0, value)

    cases = [
        (damaged("label", "labels", first(2)), "labels.npy", r"labels outside 0 \.\. 1"),
        (damaged("counts", "labels", lambda a: a.__setitem__(0, 1 - a[0])), "labels.npy",
         "samples per split and label"),
        (damaged("split", "split", first("xval")), "split.npy", r"split names \['xval'\]"),
        (damaged("strand", "strand", first("*")), "strand.npy", "strands other than"),
        (damaged("alphabet", "sequence", lambda a: a.__setitem__((0, 5), 9)), "sequence.npy",
         "base codes other than 0-3"),
        (damaged("start", "start", first(10**9)), "start.npy", "outside their record"),
        (damaged("vocab", "input_ids", lambda a: a.__setitem__((0, 1), 200)),
         "input_ids.npy", r"token id 200 beyond the vocabulary \(69\)"),
    ]  # fmt: skip
    d = tmp_path / "names"
    shutil.copytree(good, d)
    m = json.loads((d / "manifest.json").read_text())
    m["label_names"] = ["only"]
    (d / "manifest.json").write_text(json.dumps(m))
    cases.append((d, "manifest.json", "at least two labels"))
    for folder, file, message in cases:
        with pytest.raises(DatasetError, match=message) as err:
            TaskDataset.load(folder)
        assert err.value.path == str(folder / file), folder.name
    pytest.importorskip("torch")
    from dnakmer.training.finetune import data_from_dataset

    with pytest.raises(DatasetError, match="labels outside"):
        data_from_dataset(cases[0][0], KmerTokenizer(3))
    cli = subprocess.run(
        [sys.executable, "-m", "dnakmer", "finetune", "classify", "--model",
         str(ROOT / "python/dnakmer/data/models/overlapping-6mer"), "--data", str(cases[2][0]),
         "--out", str(tmp_path / "ft")], capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert cli.returncode == 1 and "split names ['xval']" in cli.stderr, cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ft").exists()


def test_corrupt_models_name_the_file(tmp_path: Path, tiny3_dir: Path) -> None:
    """Damaged checkpoint folders give a ModelError naming the file, before any weight is
    used; the command line prints it as one line."""
    import shutil

    pytest.importorskip("torch")
    from dnakmer import ModelError
    from dnakmer.models import DnaKmerTokenizer, load

    def damaged(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(tiny3_dir, d)
        return d

    cases: list[tuple[Path, str, str]] = []
    weights = (tiny3_dir / "model.safetensors").read_bytes()
    for name, content, message in (
        ("zeroed", bytes(len(weights)), "header of 0 bytes"),
        ("truncated", weights[: len(weights) // 2], "truncated"),
        ("empty", b"", "0 bytes"),
        ("garbage_header", (40).to_bytes(8, "little") + b"{" * 40 + weights[48:], "not JSON"),
    ):
        d = damaged(name)
        (d / "model.safetensors").write_bytes(content)
        cases.append((d, "model.safetensors", message))
    d = damaged("bad_config")
    (d / "config.json").write_text('{"model_type": "bert",')
    cases.append((d, "config.json", "not valid JSON"))
    d = damaged("bad_dnakmer_json")
    (d / "dnakmer.json").write_text("stride: 3")
    cases.append((d, "dnakmer.json", "not valid JSON"))
    d = damaged("bad_stride")
    (d / "dnakmer.json").write_text('{"stride": 0}')
    cases.append((d, "dnakmer.json", "stride must be a positive integer"))
    d = damaged("vocab_of_another_model")
    (d / "vocab.txt").unlink()
    DnaKmerTokenizer(k=4).save_pretrained(d)
    cases.append((d, "vocab.txt", "261 tokens, but the model's embedding holds 69"))
    for folder, file, message in cases:
        with pytest.raises(ModelError, match=message) as err:
            load(folder, device="cpu")
        assert err.value.path == str(folder / file), folder.name
    cli = subprocess.run(
        [sys.executable, "-m", "dnakmer", "probe", "embeddings", "--model", str(cases[1][0]),
         "--out", str(tmp_path / "emb")], capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert cli.returncode == 1
    assert "model.safetensors: not a complete safetensors file" in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "emb").exists()


@pytest.fixture
def full_disk(tmp_path: Path) -> Any:
    """A 512 KiB file system (tmpfs), for writers that run out of space."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path: Path, full_disk: Path) -> None:
    from dnakmer.datasets.nextkmer import build

    genome = tmp_path / "g.fa"
    genome.write_bytes(fasta_text(20, 50_000))
    with pytest.raises(OSError, match="No space left on device") as err:
        tokenize_genome(genome, KmerTokenizer(6), full_disk / "tokens")
    assert err.value.filename is not None and str(full_disk) in str(err.value.filename)
    assert list((full_disk / "tokens").iterdir()) == []
    ds = build(genome, 6, 515, None, n_train=2000, n_val=100, n_test=100)
    with pytest.raises(OSError, match="No space left on device") as err:
        ds.save(full_disk / "dataset")
    assert str(full_disk) in str(err.value.filename)
    assert sorted(p.name for p in full_disk.iterdir()) == ["tokens"]


@pytest.mark.parametrize("read", ["genome", "memory"])
def test_an_endless_record_under_a_memory_limit(tmp_path: Path, read: str) -> None:
    """A record that never ends, read into memory under ``ulimit -v``: MemoryError in
    one line, not an abort with a backtrace."""
    fifo = tmp_path / "endless.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def endless() -> None:
        line = b"ACGT" * 1024 + b"\n"
        block = line * 256
        with contextlib.suppress(BrokenPipeError, OSError), open(fifo, "wb") as f:
            f.write(b">endless\n")
            while not stop.is_set():
                f.write(block)

    writer = threading.Thread(target=endless, daemon=True)
    writer.start()
    call = "dnakmer.Genome.open(p, threads=1)" if read == "genome" else (
        "dnakmer.tokenize_fasta(p, dnakmer.KmerTokenizer(6), threads=1)")  # fmt: skip
    code = (
        "import resource, sys, dnakmer\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1200 << 20, 1200 << 20))\n"
        f"p = sys.argv[1]\n"
        "try:\n"
        f"    {call}\n"
        "except MemoryError as e:\n"
        "    print('MemoryError:', e)\n"
        "    sys.exit(3)\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True,
                              text=True, timeout=300, env=_env())  # fmt: skip
    finally:
        stop.set()
    assert done.returncode == 3, done.stderr[-2000:]
    assert "cannot allocate room for" in done.stdout
    assert "panicked" not in done.stderr and "backtrace" not in done.stderr.lower()


def test_record_names_longer_than_a_file_name(tmp_path: Path) -> None:
    """Record names of thousands of characters: file names are cut to fit, the
    manifest keeps each whole name, names that differ only at their end stay apart."""
    long = "contig_" + "x" * 5000
    genome = tmp_path / "g.fa"
    genome.write_bytes(f">{long}A\nACGTACGT\n>{long}B\nGGGGCCCC\n".encode())
    manifest = tokenize_genome(genome, KmerTokenizer(3), tmp_path / "out")
    records = manifest["records"]
    assert [r["name"] for r in records] == [f"{long}A", f"{long}B"]
    files = [r["file"] for r in records]
    assert len(set(files)) == 2 and all(len(f) <= 255 for f in files)
    assert all((tmp_path / "out" / f).is_file() for f in files)
