"""The errors a user can fix: a recipe stops on them with one line, exit status 2.

They live below every other module (the lobes check their options with
them, the recipes' start-up turns them into one line), so that raising one
imports nothing else of the package.

Example
-------
>>> issubclass(HparamsError, UserError) and issubclass(UserError, ValueError)
True

Authors
 * emoshare_sb contributors 2026
"""


class UserError(ValueError):
    """Bad input that the user can fix: the run stops with one line, exit status 2."""


class HparamsError(UserError):
    """A command-line override or option value that does not fit the YAML file."""
