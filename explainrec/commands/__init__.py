"""One module per CLI subcommand, each with `add_arguments(parser)` and `run(args) -> int`.

Command modules import heavy libraries inside `run` so that `explainrec --help` stays fast.
"""
