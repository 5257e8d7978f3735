"""Shared helpers for the Adversarial Robustness Lab notebooks.

Each module holds one concept and is introduced by one notebook:

- ``profile``: the run profile (``ADVLAB_PROFILE``: smoke or default), notebook 01.
- ``data``: dataset loading (GTSRB, CIFAR-10), notebook 01.
- ``models``: the study's CNN, its logits and load-or-train, notebook 02.
- ``attacks``: FGSM and PGD, notebooks 03 and 04.
- ``evaluation``: accuracy and robust accuracy, notebooks 03 and 04.
- ``plots``: figures that teach nothing themselves.

Importing this package has no side effects: no seeding, no downloads, no printing.
Import the submodule you need, for example ``from helpers import data``.
"""
