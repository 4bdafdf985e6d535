"""What the command-line tools (``recommend.py``, ``train.py``, ``serve.py``) share."""
import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where there is none to show (None, an
    empty value) or the option's own text says it: "(default: None)" or "(default: {})"
    beside "default: the model's" told the reader nothing, or contradicted it."""

    def _get_help_string(self, action):
        if action.default is None or action.default == {} or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
