"""The lab's plumbing: how the notebooks run, not what they teach.

- ``profile``: the run profile (``ADVLAB_PROFILE``: smoke or default) and sample sizes.
- ``recipes``: the settings of every shipped model, and load-or-train.
- ``outputs``: where results files (``results/<dataset>.json``) and figures go.
- ``records``: shipped records of the full-scale experiments, used when their settings and
  model files match the notebook's (``make reproduce`` writes them).
- ``checks``: argument checks with clear errors, used by every helper.
- ``versions``: the supported TensorFlow and Keras releases, checked on import.
- ``precision``: whether this CPU computes bfloat16 natively.
- ``weight_averaging``: an exponential moving average of the weights during training.
"""
