"""Plumbing behind ``helpers.data``: the official archives' formats and their download.

- ``readers``: safe reading of zip and tar members.
- ``download``: downloads under a temporary name, checked, then renamed.
- ``gtsrb``, ``cifar10``: each data set's archive layout, decoded to arrays.

A learner never needs to open these; ``helpers.data.load_dataset`` is the lesson.
"""
