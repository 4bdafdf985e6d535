"""What the command-line tools (``recommend.py``, ``train.py``, ``serve.py``) share."""
import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (None, an
    empty value, a flag's False) or the option's own text says it: "(default: None)" or
    "(default: {})" beside "(default: the model's)" told the reader nothing, or contradicted it."""

    def _get_help_string(self, action):
        empty = action.default is None or action.default is False or action.default == {}
        if empty or "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
