"""Command line: `streamdeblur INPUT -o OUTPUT [options]` and the other commands.

The bare form is the main job: a click group whose default command is `run`. Every failure
a user can cause ends with one line on stderr and a documented exit code (0 done, 1 failed,
2 usage, 3 partial, 130 interrupted); `--debug` shows the traceback instead.

One module per command group (run, batch, live, models, train, compare), imported only when
its command runs (or shows its help): `streamdeblur --help` loads neither torch nor PyAV.
A new command is a module here and a line in COMMANDS.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any, Callable

import click
from rich.console import Console

from streamdeblur import __version__
from streamdeblur.core.allocator import tune_allocator
from streamdeblur.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, StreamdeblurError, first_line

PROG = "streamdeblur"

# command: (module, function, one-line help for `streamdeblur --help`)
COMMANDS = {
    "run": ("run", "run_command", "Deblur INPUT (a video, an image, or an image sequence) into OUTPUT."),
    "batch": ("batch", "batch_command", "Deblur every video and image under IN_DIR into OUT_DIR."),
    "live": ("live", "live_command", "Deblur a live SOURCE: a webcam, rtsp://, http(s)://, udp:// or a file."),
    "models": ("models", "models_command", "List the models: size, cost, installed weights, held-out gains."),
    "bench": ("models", "bench_command", "Time a model alone (CUDA events on GPU)."),
    "train": ("train", "train_command", "Train a model on your data (checkpoints, logs, weights)."),
    "eval": ("train", "eval_command", "PSNR, SSIM and sharpness of a model's output against ground truth."),
    "import-weights": ("models", "import_weights_command", "Convert an official checkpoint to our format."),
    "compare": ("compare", "compare_command", "Side by side: INPUT | OUTPUT (| edges), with blur scores."),
}


def apply_options(fn: Callable, options: list[Callable]) -> Callable:
    """`fn` decorated with every click option of `options`; applied last-first, because click
    lists the decorator nearest the function first, so --help shows them in list order."""
    for option in reversed(options):
        fn = option(fn)
    return fn


class Commands(click.Group):
    """The commands of COMMANDS, each imported when it is used; runs `run` when the first
    argument is not a command.

    So `streamdeblur in.mp4 -o out.mp4` is the main job and `streamdeblur models` a
    command; a file that happens to be named like a command works as `streamdeblur run NAME`.
    """

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, function, _ = COMMANDS[name]
        return getattr(importlib.import_module(f"streamdeblur.cli.{module}"), function)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS, without importing any command."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, _, summary) in sorted(COMMANDS.items())])


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """Deblur videos, images and image sequences; live streams and folders too.

    \b
      streamdeblur INPUT -o OUTPUT [options]   the main job (see `streamdeblur run --help`)
      streamdeblur batch IN_DIR -o OUT_DIR     every video and image in a folder tree
      streamdeblur live SOURCE [-o OUTPUT]     a camera or stream (see `streamdeblur live --help`)
      streamdeblur models                      available models
      streamdeblur bench --model M --size WxH  time a model
      streamdeblur train / eval                train a model, measure it
      streamdeblur import-weights SRC          official checkpoint → .safetensors
      streamdeblur compare IN OUT -o SBS.png   look at the difference
    """


def _terminate_as_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops a run the way Ctrl-C does: the output is finished, not left half-written."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    tune_allocator()
    try:
        code = cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        err.print(f"{PROG}: interrupted")
        code = EXIT_INTERRUPTED
    except click.ClickException as e:  # usage errors included (exit code 2)
        err.print(f"{PROG}: error: {e.format_message()}", markup=False)
        code = e.exit_code
    except StreamdeblurError as e:
        if debug:
            raise
        err.print(f"{PROG}: error: {e}", markup=False)
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        err.print(
            f"{PROG}: internal error: {type(e).__name__}: {first_line(e)} (rerun with --debug for details)",
            markup=False,
        )
        code = EXIT_FAILED
    sys.exit(code if isinstance(code, int) else EXIT_OK)
