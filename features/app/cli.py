"""What the command-line tools (``recommend.py``, ``train.py``, ``serve.py``) share."""
import argparse
import difflib
import sys
from pathlib import Path


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (None, an
    empty value, a flag's False) or the option's own text says it: "(default: None)" or
    "(default: {})" beside "(default: the model's)" told the reader nothing, or contradicted it."""

    def _get_help_string(self, action):
        empty = action.default is None or action.default is False or action.default == {}
        if empty or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """The tools' argument parser: an option it does not know is answered with the nearest one
    it does (``--jsn (did you mean --json?)``), where Python 3.11's said only "unrecognized
    arguments"."""

    def error(self, message):
        if message.startswith(UNKNOWN):
            known = [option for action in self._actions for option in action.option_strings]
            message = UNKNOWN + " ".join(nearest(given, known) for given in message.removeprefix(UNKNOWN).split(" "))
        super().error(message)


#: How argparse starts its message for arguments it does not take.
UNKNOWN = "unrecognized arguments: "


def nearest(given, known):
    """``given`` (an argument), and the known option nearest it where it reads as a mistyped
    one (``--jsn``, ``--recursve=1``)."""
    name = given.split("=", 1)[0]
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.75) if name.startswith("--") else []
    return f"{given} (did you mean {near[0]}?)" if near else given


def given_path(text):
    """A path from the command line (argparse type); an empty one is refused, not read as
    the working folder: ``recommend.py "$PHOTO"`` with the variable unset analysed every
    photo there, and ``--annotate "$OUT"`` wrote into it."""
    if not text:
        raise argparse.ArgumentTypeError("empty (an unset variable?); give . for the working folder")
    return Path(text)


def precision(text):
    """A precision from the command line (argparse type, for ``recommend.py --precision`` and
    ``train.py --min-precision``): over 0 and at most 1, NaN refused."""
    value = float(text)  # argparse says "invalid precision value" for a word
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in (0, 1]")
    return value


def tell(text):
    """Print ``text`` on stderr, now.  When no one can read it (the terminal closed, its reader
    gone, a full disk), the line is lost and the run goes on, its exit code still telling: a
    failed print ended runs before their output file was finished.  Nothing is printed when
    the tool started with stderr closed (``2>&-``), where print wrote into stdout."""
    if sys.stderr is None:
        return
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass
