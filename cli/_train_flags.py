"""The one flag builder of the trainers: `transformers.HfArgumentParser` over a config dataclass
(`training/options.py`), so every field is a flag with its help text, its default and, for `Literal` fields,
its choices; plus `--config FILE.yaml`, `--debug` and `--log-level`. Precedence: dataclass defaults < YAML
< flags given on the command line (only those: the parser's defaults are SUPPRESS, shown in the help text).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
from collections.abc import Callable, Sequence

from ._contract import UsageError, add_common_flags, run_command

PAIRS_FORMAT = """\
pairs file formats (--pairs):
  VCDB JSON   {"video_pairs": [{"videos": [id_a, id_b], ...}, ...], "negs": [id, ...]}  (negs: distractors)
  JSON list   [[id_a, id_b], {"videos": [id_a, id_b]}, ...]
  CSV         a header row, then one pair per row: the first two columns are the video ids
Ids are the descriptor folder's video ids; pairs with a missing id are skipped (with a warning), and a run
left with no pair, or with fewer training pairs than one global batch, stops with the counts.
Distractors (--distractors): a JSON list of ids or one id per line; default: the VCDB `negs`, else every
descriptor-folder video that is in no pair."""

CAPTIONS_FORMAT = """\
captions file format (--captions): CSV (header row), JSON list of objects, or JSONL, one caption a row:
  video_path  the video (also `path`, `video` or `file_name`); relative paths resolve against the file's folder
  caption     the sentence (also `sentence` or `text`)
  start, end  seconds (optional; empty: the whole video)
  video_id    optional (default: the file name's stem);  split: optional (kept when it equals --split)
  e.g.  video_path,start,end,caption,split
        clips/a.mp4,0,2.5,a man opens a door,train
A run in which no video exists or none can be decoded stops with the counts (failed_rank<N>.jsonl)."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=36, width=110)


def build_train_parser(
    config_class: type, prog: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """An HfArgumentParser over `config_class` whose fields' defaults appear in the help but are not
    returned by parsing (so a YAML `--config` is only overridden by flags actually given)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        config_class, prog=prog, description=description, epilog=epilog, formatter_class=_Formatter
    )
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    for action in parser._actions:
        if action.dest not in fields:
            continue
        # shown as --dashed-names (the --underscored spellings still parse)
        action.option_strings = [s for s in action.option_strings if "_" not in s] or action.option_strings
        if "--output" in action.option_strings:
            action.option_strings = ["--output", *(s for s in action.option_strings if s != "--output")]
        if action.dest == "model_config":  # a dict field: given as JSON
            action.type, action.metavar = _json_object, "JSON"
        if isinstance(action, argparse._StoreFalseAction):
            action.help = f"turn off --{action.dest.replace('_', '-')}"
        else:
            default = action.default
            shown = "''" if default == "" else repr(default)
            action.help = f"{action.help or ''} (default: {shown})".replace("%", "%%")
            if action.dest == "resume":
                action.metavar = "latest|PATH"
            elif action.nargs == "?":
                action.metavar = "true|false"
            elif action.metavar is None:
                action.metavar = _metavar(action)
        action.default = argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of these fields (flags override it)")
    add_common_flags(parser)
    parser.set_defaults(log_level="info")
    return parser


def _metavar(action: argparse.Action) -> str | None:
    if action.choices:
        return None
    return {int: "N", float: "X"}.get(action.type, "TEXT" if action.dest != "output_dir" else "FOLDER")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def config_from_args(config_class: type, args: argparse.Namespace):
    """The config from `--config` (YAML) with the given flags on top, validated (a bad value: UsageError)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    given = {k: v for k, v in vars(args).items() if k in fields}
    try:
        if args.config:
            if not os.path.isfile(args.config):
                raise FileNotFoundError(f"--config {args.config}: no such file")
            config = config_class.from_yaml(args.config, **given)
        else:
            config = config_class(**given)
        config.validate()
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error
    return config


def is_main_process() -> bool:
    """True on the process that prints results (rank 0 of torchrun / accelerate launch, or alone)."""
    return int(os.environ.get("RANK", "0")) == 0


def _load(target: str):
    """`"module:name"` (module relative to the vidtempo package) -> the object, imported only when called."""
    module, name = target.split(":")
    package = __package__.rpartition(".")[0]
    return getattr(importlib.import_module(f"{package}.{module}"), name)


@dataclasses.dataclass(frozen=True)
class TrainerCommand:
    """One trainer console script: a config dataclass turned into flags, a training function run on the
    validated config, and a one-line summary of its metrics printed by the main process. `config` and
    `train` name `"module:attribute"` inside vidtempo, imported after parsing (so `--help` is fast)."""

    prog: str
    description: str
    epilog: str
    config: str
    train: str
    summary: Callable[[dict], str]

    def build_parser(self) -> argparse.ArgumentParser:
        return build_train_parser(_load(self.config), self.prog, self.description, self.epilog)

    def run(self, args: argparse.Namespace) -> int:
        config = config_from_args(_load(self.config), args)
        metrics = _load(self.train)(config)
        if is_main_process():
            print(self.summary(metrics))
        return 0

    def main(self, argv: Sequence[str] | None = None) -> int:
        return run_command(self.build_parser(), self.run, argv)


def trainer_command(
    prog: str, description: str, epilog: str, config: str, train: str, summary: Callable[[dict], str]
) -> tuple[Callable[[], argparse.ArgumentParser], Callable[[Sequence[str] | None], int]]:
    """`(build_parser, main)` of a trainer console script (see `TrainerCommand`)."""
    command = TrainerCommand(prog, description, epilog, config, train, summary)
    return command.build_parser, command.main


__all__ = [
    "CAPTIONS_FORMAT",
    "PAIRS_FORMAT",
    "TrainerCommand",
    "trainer_command",
    "build_train_parser",
    "config_from_args",
    "is_main_process",
]
