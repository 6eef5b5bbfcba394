"""The public Python API: its names and signatures (pinned), training, events, generation, errors, docs/api.md."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import lstmtui
from lstmtui.cli import main

REPO = Path(__file__).resolve().parent.parent
LINE = "the quick brown fox jumps over the lazy dog\n"
TINY = {
    "hidden": 32,
    "layers": 1,
    "seq_len": 32,
    "batch": 8,
    "lr": 0.01,
    "warmup_steps": 5,
    "dropout": 0.0,
    "seed": 1,
    "device": "cpu",
    "threads": 1,
}

# ----- the API's surface, pinned: changing it means changing these literals on purpose -----

ALL = [
    "CheckpointEvent",
    "ConfigError",
    "CorpusError",
    "EpochEvent",
    "EvalEvent",
    "Event",
    "FailedEvent",
    "FineTuneEvent",
    "FinishedEvent",
    "LstmtuiError",
    "Model",
    "PrepareEvent",
    "ProfileError",
    "ProfileSummary",
    "Run",
    "SampleEvent",
    "StateEvent",
    "StepEvent",
    "TrainResult",
    "TrainingError",
    "VocabularyError",
    "WarningEvent",
    "load",
    "profiles",
    "train",
]

HOME = "home: 'str | os.PathLike[str] | None' = None"
CORPUS = "corpus: 'str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None' = None"
SAMPLING = (
    "prime: 'str' = '', *, length: 'int | None' = None, temperature: 'float | None' = None, "
    "top_k: 'int | None' = None, top_p: 'float | None' = None, beam: 'int | None' = None, "
    "repetition_penalty: 'float | None' = None, repetition_window: 'int | None' = None, "
    "no_repeat_ngram: 'int | None' = None, stop: 'str | Sequence[str]' = (), stop_chars: 'str' = '', "
    "seed: 'int | None' = None, drop_unknown: 'bool' = False"
)
SIGNATURES = {
    "load": f"(name: 'str', *, {HOME}, which: 'str' = 'best', device: 'str' = 'cpu', threads: 'int' = 0) -> 'Model'",
    "profiles": f"({HOME}) -> 'list[ProfileSummary]'",
    "train": (
        f"({CORPUS}, profile: 'str | None' = None, *, {HOME}, "
        "on_event: 'Callable[[Event], object] | None' = None, **settings: 'Any') -> 'TrainResult'"
    ),
    "Run": f"({CORPUS}, profile: 'str | None' = None, *, {HOME}, **settings: 'Any') -> 'None'",
    "Run.start": "(self) -> 'Run'",
    "Run.events": "(self) -> 'Iterator[Event]'",
    "Run.wait": "(self) -> 'TrainResult'",
    "Run.close": "(self) -> 'None'",
    "Run.stop": "(self) -> 'None'",
    "Run.pause": "(self) -> 'None'",
    "Run.resume": "(self) -> 'None'",
    "Run.save": "(self) -> 'None'",
    "Run.sample": "(self) -> 'None'",
    "Model.generate": f"(self, {SAMPLING}) -> 'str'",
    "Model.stream": f"(self, {SAMPLING}) -> 'Iterator[str]'",
    "ProfileSummary": (
        "(name: 'str', hidden: 'int', layers: 'int', vocab_size: 'int', parameters: 'int', steps: 'int', "
        "epochs: 'int', best_val_loss: 'float | None', bits_per_char: 'float | None', finished: 'bool', "
        "corpus: 'tuple[str, ...]', updated: 'str | None', error: 'str | None' = None) -> None"
    ),
    "TrainResult": (
        "(profile: 'str', reason: 'str', steps: 'int', epochs: 'int', best_val_loss: 'float | None', "
        "bits_per_char: 'float | None', elapsed_s: 'float') -> None"
    ),
}
MEMBERS = {
    "Model": ["generate", "info", "name", "stream", "vocab"],
    "Run": ["close", "events", "pause", "profile", "resume", "sample", "save", "start", "stop", "wait"],
}
EVENT_FIELDS = {
    "Event": (),
    "StateEvent": ("state", "detail"),
    "PrepareEvent": ("stage", "done", "total"),
    "FineTuneEvent": ("profile", "step", "old_corpus", "new_corpus", "added"),
    "StepEvent": (
        "step",
        "epoch",
        "epoch_step",
        "steps_per_epoch",
        "total_steps",
        "loss",
        "lr",
        "chars_per_s",
        "elapsed_s",
        "eta_s",
        "skipped",
        "forecast",
    ),
    "EvalEvent": ("step", "epoch", "val_loss", "val_bpc", "best_val_loss", "elapsed_s", "estimate", "stderr"),
    "EpochEvent": (
        "epoch",
        "step",
        "train_loss",
        "val_loss",
        "val_bpc",
        "chars_per_s",
        "elapsed_s",
        "best_val_loss",
        "lr",
        "best_estimate",
    ),
    "SampleEvent": ("step", "epoch", "temperature", "prime", "text", "memorised"),
    "CheckpointEvent": ("step", "epoch", "reason", "profile", "path", "seconds"),
    "WarningEvent": ("step", "message"),
    "FinishedEvent": ("reason", "step", "epoch", "best_val_loss", "best_val_bpc", "elapsed_s", "message"),
    "FailedEvent": ("message", "step", "extra", "setting"),
}
ERRORS = ["ConfigError", "CorpusError", "ProfileError", "TrainingError", "VocabularyError"]


def test_all_is_pinned_and_every_name_resolves():
    import lstmtui.api

    assert lstmtui.__all__ == ALL
    assert lstmtui.api.__all__ == ALL
    for name in ALL:
        assert getattr(lstmtui, name) is getattr(lstmtui.api, name)
    assert set(ALL) <= set(dir(lstmtui))
    with pytest.raises(AttributeError):
        lstmtui.no_such_name  # noqa: B018


def test_signatures_are_pinned():
    for path, expected in SIGNATURES.items():
        obj = lstmtui
        for part in path.split("."):
            obj = getattr(obj, part)
        assert str(inspect.signature(obj)) == expected, path


def test_public_members_and_event_fields_are_pinned():
    for name, members in MEMBERS.items():
        assert [m for m in dir(getattr(lstmtui, name)) if not m.startswith("_")] == members, name
    for name, expected in EVENT_FIELDS.items():
        cls = getattr(lstmtui, name)
        assert issubclass(cls, lstmtui.Event)
        assert tuple(f.name for f in dataclasses.fields(cls)) == expected, name
    for name in ERRORS:
        assert issubclass(getattr(lstmtui, name), lstmtui.LstmtuiError), name


def test_every_public_callable_has_a_docstring():
    for name in ALL:
        obj = getattr(lstmtui, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
    for cls, members in MEMBERS.items():
        for member in members:
            assert getattr(getattr(lstmtui, cls), member).__doc__, f"{cls}.{member}"


def test_import_lstmtui_loads_no_torch():
    code = (
        "import sys, lstmtui\n"
        "assert 'torch' not in sys.modules, 'import lstmtui'\n"
        "lstmtui.LstmtuiError, lstmtui.StepEvent, lstmtui.ProfileSummary, lstmtui.profiles()\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_api_imports_no_user_interface_layer():
    pattern = re.compile(r"^\s*(import|from)\s+(textual|lstmtui\.(tui|commands|cli|bench))\b", re.MULTILINE)
    modules = sorted((REPO / "lstmtui" / "api").glob("*.py"))
    assert modules
    for path in modules:
        text = path.read_text()
        assert not pattern.search(text), path
        assert len(text.splitlines()) <= 500, path


# ----- training -----


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> SimpleNamespace:
    """A tiny profile 'fox' trained 20 steps through lstmtui.train, with every event it emitted."""
    root = tmp_path_factory.mktemp("api")
    corpus = root / "fox.txt"
    corpus.write_text(LINE * 300)
    home = root / "home"
    events: list[lstmtui.Event] = []
    with pytest.MonkeyPatch.context() as env:  # module scope: the per-test home fixture is not set up yet
        env.setenv("LSTMTUI_HOME", str(root / "unused-home"))
        env.setenv("LSTMTUI_CACHE", str(root / "cache"))
        result = lstmtui.train(
            corpus, "fox", home=home, on_event=events.append, max_steps=20, eval_every=10, sample_every=10, **TINY
        )
    return SimpleNamespace(root=root, corpus=corpus, home=home, events=events, result=result)


def test_train_returns_a_typed_result(trained):
    result = trained.result
    assert isinstance(result, lstmtui.TrainResult)
    assert (result.profile, result.reason, result.steps, result.epochs) == ("fox", "max_steps", 20, 0)
    assert result.best_val_loss is not None and 0 < result.best_val_loss < 10
    assert result.bits_per_char == pytest.approx(result.best_val_loss / 0.6931471805599453)
    assert result.elapsed_s > 0


def test_events_arrive_in_order(trained):
    events = trained.events
    assert all(isinstance(e, lstmtui.Event) for e in events)
    assert events[0] == lstmtui.StateEvent(state="preparing")
    steps = [e.step for e in events if isinstance(e, lstmtui.StepEvent)]
    assert steps == list(range(1, 21))
    first_step = next(i for i, e in enumerate(events) if isinstance(e, lstmtui.StepEvent))
    training = [i for i, e in enumerate(events) if isinstance(e, lstmtui.StateEvent) and e.state == "training"]
    assert training and training[0] < first_step
    evals = [e.step for e in events if isinstance(e, lstmtui.EvalEvent)]
    assert evals == sorted(evals) and {10, 20} <= set(evals)
    assert any(isinstance(e, lstmtui.SampleEvent) and e.step == 10 for e in events)
    finished = events[-1]
    assert isinstance(finished, lstmtui.FinishedEvent) and finished.step == 20
    assert sum(isinstance(e, lstmtui.FinishedEvent) for e in events) == 1
    assert any(isinstance(e, lstmtui.CheckpointEvent) and e.profile == "fox" for e in events)


def test_profiles_lists_typed_summaries(trained):
    (summary,) = lstmtui.profiles(home=trained.home)
    assert isinstance(summary, lstmtui.ProfileSummary)
    assert (summary.name, summary.hidden, summary.layers, summary.steps, summary.error) == ("fox", 32, 1, 20, None)
    assert summary.vocab_size == len(set(LINE))
    assert summary.best_val_loss == pytest.approx(trained.result.best_val_loss)
    assert summary.corpus == (str(trained.corpus),)
    assert summary.parameters > 0 and summary.updated


def test_an_unreadable_profile_is_listed_with_its_error(tmp_path):
    (tmp_path / "profiles" / "broken" / "v000001").mkdir(parents=True)
    (tmp_path / "profiles" / "broken" / "v000001" / "meta.json").write_text("{not json")
    (summary,) = lstmtui.profiles(home=tmp_path)
    assert summary.name == "broken" and summary.error and summary.parameters == 0
    assert lstmtui.profiles(home=tmp_path / "empty") == []


def test_leaving_a_run_early_stops_it_at_a_step_and_saves(trained):
    seen: list[lstmtui.Event] = []
    with lstmtui.Run(trained.corpus, "fox-run", home=trained.home, epochs=50, eval_every=0, **TINY) as run:
        assert run.profile == "fox-run"
        for event in run.events():
            seen.append(event)
            if isinstance(event, lstmtui.StepEvent) and event.step == 5:
                break
    result = run.wait()
    assert result.reason == "stopped" and result.steps >= 5
    rest = list(run.events())  # what came after the break, up to the final event
    steps = [e.step for e in seen + rest if isinstance(e, lstmtui.StepEvent)]
    assert steps == list(range(1, result.steps + 1))
    assert isinstance(rest[-1], lstmtui.FinishedEvent) and rest[-1].reason == "stopped"
    saved = {p.name: p for p in lstmtui.profiles(home=trained.home)}
    assert saved["fox-run"].steps == result.steps


def test_a_run_pauses_resumes_and_stops_when_left_while_paused(trained):
    states: list[str] = []
    with lstmtui.Run(trained.corpus, "fox-pause", home=trained.home, epochs=50, eval_every=0, **TINY) as run:
        for event in run.events():
            if isinstance(event, lstmtui.StateEvent):
                states.append(event.state)
                if event.state == "paused":
                    if states.count("paused") == 2:
                        break  # leave while paused: the run stops and saves
                    run.resume()
            elif isinstance(event, lstmtui.StepEvent) and event.step in (3, 6):
                run.pause()
    result = run.wait()
    assert result.reason == "stopped" and result.steps >= 6
    assert states.count("paused") == 2 and "training" in states[states.index("paused") :]


def test_a_failed_run_raises_a_training_error(tmp_path):
    with pytest.raises(lstmtui.TrainingError, match="missing.txt") as caught:
        lstmtui.train(tmp_path / "missing.txt", "nothing", home=tmp_path, **TINY)
    assert isinstance(caught.value, lstmtui.LstmtuiError)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"hiden": 32}, "hiden"),
        ({"hidden": 0}, "hidden"),
        ({"batch": "big"}, "batch"),
        ({"lowercase": "yes"}, "lowercase"),
        ({"encoding": 8}, "encoding"),
    ],
)
def test_bad_settings_raise_config_errors_before_training(tmp_path, settings, field):
    with pytest.raises(lstmtui.ConfigError) as caught:
        lstmtui.Run(tmp_path / "c.txt", "x", home=tmp_path, **settings)
    assert caught.value.field == field
    assert not (tmp_path / "profiles").exists()


def test_bad_profile_and_corpus_arguments_raise_typed_errors(tmp_path):
    with pytest.raises(lstmtui.ProfileError):
        lstmtui.Run(tmp_path / "c.txt", "bad/name", home=tmp_path)
    with pytest.raises(lstmtui.ConfigError):
        lstmtui.Run(123, "x", home=tmp_path)


# ----- generation -----


@pytest.fixture(scope="module")
def model(trained) -> lstmtui.Model:
    return lstmtui.load("fox", home=trained.home)


def test_load_gives_the_model_and_its_facts(trained, model):
    assert model.name == "fox"
    assert set(model.vocab) == set(LINE) and len(model.vocab) == len(set(LINE))
    assert model.info == lstmtui.profiles(home=trained.home)[0]
    assert lstmtui.load("fox", home=trained.home, which="latest").info.steps == 20


def test_generate_with_a_seed_is_reproducible(model):
    first = model.generate("the ", length=80, temperature=1.0, seed=7)
    assert isinstance(first, str) and len(first) == 80
    assert model.generate("the ", length=80, temperature=1.0, seed=7) == first
    assert model.generate("the ", length=80, temperature=1.0, seed=8) != first


def test_stream_yields_the_generated_text_one_character_at_a_time(model):
    settings = {"length": 120, "temperature": 0.9, "top_k": 4, "seed": 3}
    pieces = list(model.stream("the quick", **settings))
    assert all(len(piece) == 1 for piece in pieces)
    assert "".join(pieces) == model.generate("the quick", **settings)


@pytest.mark.parametrize(
    ("options", "settings"),
    [
        (["--temperature", "1", "--top-k", "5"], {"temperature": 1.0, "top_k": 5}),
        (
            ["--top-p", "0.9", "--repetition-penalty", "1.3", "--no-repeat-ngram", "4"],
            {"top_p": 0.9, "repetition_penalty": 1.3, "no_repeat_ngram": 4},
        ),
        (["--beam", "4"], {"beam": 4}),
        (
            ["--temperature", "0", "--stop", "dog", "--stop-chars", "\\n"],
            {"temperature": 0, "stop": "dog", "stop_chars": "\n"},
        ),
    ],
)
def test_generate_equals_the_cli(trained, model, capsys, options, settings):
    cli = ["generate", "--profile", "fox", "--home", str(trained.home), "--prime", "the ", "--length", "80"]
    assert main([*cli, "--seed", "7", "--json", "--no-memorisation", *options]) == 0
    record = json.loads(capsys.readouterr().out)
    assert model.generate("the ", length=80, seed=7, **settings) == record["text"]


def test_generation_options_are_checked_at_the_call(model):
    with pytest.raises(lstmtui.ConfigError) as caught:
        model.stream(top_p=2.0)  # not iterated: the error comes from the call itself
    assert caught.value.field == "top_p"
    with pytest.raises(lstmtui.ConfigError):
        model.generate(length=0)
    with pytest.raises(lstmtui.ConfigError):
        model.generate(stop=[""])


def test_unknown_prime_characters_are_refused_or_dropped(model):
    with pytest.raises(lstmtui.VocabularyError) as caught:
        model.generate("the \u00e9", length=5)
    assert caught.value.field == "drop_unknown"
    assert len(model.generate("the \u00e9", length=5, drop_unknown=True, seed=1)) == 5


def test_bad_profile_names_raise_the_typed_error(trained):
    with pytest.raises(lstmtui.ProfileError, match="no profile named no-such"):
        lstmtui.load("no-such", home=trained.home)
    with pytest.raises(lstmtui.ProfileError):
        lstmtui.load("bad/name", home=trained.home)
    with pytest.raises(lstmtui.ConfigError):
        lstmtui.load("fox", home=trained.home, which="worst")
    with pytest.raises(lstmtui.ConfigError):
        lstmtui.load("fox", home=trained.home, device="tpu")


# ----- docs/api.md -----


def test_the_documented_examples_run(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "docs" / "api.md").read_text(), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 4
    script = tmp_path / "examples.py"
    script.write_text("\n".join(blocks))
    env = {**os.environ, "LSTMTUI_HOME": str(tmp_path / "home"), "LSTMTUI_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "fox max_steps 30" in done.stdout
    assert "stopped" in done.stdout
    assert "error: no profile named no-such-profile" in done.stdout
