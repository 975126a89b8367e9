"""explainrec: the composition root. The CLI lives here and wires the packages together.

`training`, `embeddings`, `explain` and `backend` are the libraries; this package only
parses arguments, calls them and prints results. See ARCHITECTURE.md.
"""

__version__ = "0.1.0"
