"""Shared helpers for the Adversarial Robustness Lab notebooks.

The files at the top of ``helpers/`` hold the lessons' ideas, in the notebooks' order:

=====================  ======================================================  ========
file                   idea                                                    notebook
=====================  ======================================================  ========
data.py                load GTSRB and CIFAR-10 as float images in [0, 1]       01
models.py              the study's CNN, its logits, its weights files          02
training.py            training with ``fit()``: pipeline, schedule, callbacks  02
attacks.py             the attack core; FGSM, PGD, PGD until fooled            03, 04
evaluation.py          accuracy and robust accuracy                            02-04
adversarial_training   adversarial training inside ``fit()``                   05
defenses.py            pre-processing defences, BPDA and EOT                   06
apgd.py                APGD-CE and APGD-DLR (targeted, as in AutoAttack)       07
square.py              the Square Attack, a gradient-free check                07
worst_case.py          the worst case per example over a chain of attacks      07
sanity_checks.py       Carlini et al.'s checks of an evaluation                07
calibration.py         calibration error, entropy, temperature scaling         08
detection.py           a confidence-threshold detector and its adaptive attack 08
=====================  ======================================================  ========

Plumbing a learner never needs to open lives in sub-packages: ``archives/`` (the official
archives' formats and their download), ``plots/`` (figures) and ``lab/`` (run profiles,
recipes of the shipped models, results files, argument checks, supported versions).

Every attack has the signature ``attack(model, images, labels, epsilon, *, settings)`` and
returns images of the caller's type; ``helpers.attacks`` documents the shared vocabulary.

Importing this package checks the installed TensorFlow and Keras releases
(``helpers.lab.versions``: an unsupported one fails here, with a message, not later inside
Keras) and has no other side effects: no seeding, no downloads, no printing. Import the
module you need, for example ``from helpers import data``.
"""

from helpers.lab.versions import check_versions

check_versions()
