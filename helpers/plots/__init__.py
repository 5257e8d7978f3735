"""Figures for the notebooks; they draw what a lesson computed and teach nothing themselves.

One module per part of the course: ``images`` (notebook 01 and image grids), ``training``
(02), ``attacks`` (03, 04), ``defenses`` (06) and ``uncertainty`` (08). Every function
returns a ``matplotlib.figure.Figure``.
"""
