"""Shared test setup: single-threaded math (2-core CI thrashes otherwise), offline models, no
heap freezing per app."""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A full garbage collection per app start costs ~0.3 s in a test process holding every test's
# objects; tests/backend/test_serving_hot_path.py turns it on where it is the subject.
os.environ.setdefault("EXPLAINREC_FREEZE_HEAP", "false")
