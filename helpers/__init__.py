"""Shared helpers for the Adversarial Robustness Lab notebooks.

Each module holds one concept and is introduced by one notebook:

- ``profile``: the run profile (``ADVLAB_PROFILE``: smoke or default), notebook 01.
- ``data``: dataset loading (GTSRB, CIFAR-10), notebook 01.
- ``archives``, ``download``, ``gtsrb``, ``cifar10``: what ``data`` is built from.
- ``models``: the study's CNN, its logits and weights files, notebook 02.
- ``training``, ``recipes``: training with ``fit()`` and load-or-train, notebook 02.
- ``attacks``: FGSM and PGD, notebooks 03 and 04.
- ``evaluation``: accuracy, robust accuracy (notebooks 02 to 04) and the worst case over
  PGD and APGD-CE (notebook 07).
- ``adversarial_training``: adversarial training inside ``fit()``, notebook 05.
- ``defenses``: pre-processing defences as layers, BPDA and EOT wrappers, notebook 06.
- ``apgd``: APGD-CE and APGD-DLR (targeted, as in AutoAttack), notebook 07.
- ``square``: the Square Attack, a gradient-free check of a gradient attack, notebook 07.
- ``weight_averaging``: an exponential moving average of the weights during training.
- ``sanity_checks``: Carlini et al.'s checks of an evaluation, notebook 07.
- ``outputs``: where results (``results/<dataset>.json``) and README figures go.
- ``calibration``, ``temperature``: calibration error, entropy, temperature scaling, notebook 08.
- ``detection``, ``confidence_attacks``: a confidence-threshold detector and the attacks
  that test it (stop at the first mistake, or push to a confident one), notebook 08.
- ``checks``: argument checks with clear errors, used everywhere.
- ``plots``, ``training_plots``, ``attack_plots``, ``defense_plots``, ``uncertainty_plots``:
  figures that teach nothing themselves.

- ``versions``: the supported TensorFlow and Keras releases, checked on import.

Importing this package checks the installed TensorFlow and Keras releases (``versions``:
an unsupported one fails here, with a message, not later inside Keras) and has no other
side effects: no seeding, no downloads, no printing. Import the submodule you need, for
example ``from helpers import data``.
"""

from helpers.lab.versions import check_versions

check_versions()
