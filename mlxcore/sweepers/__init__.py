"""Sweepers: how the points of a sweep are chosen (a grid, or a search that learns from the results).

:mod:`.base` is the interface a sweeper plugin implements, :mod:`.runner` what the core gives it to launch
trials with (in this process or through any scheduler), :mod:`.objective` how a trial's result is read from
its logged metrics, and :mod:`.grid` the builtin grid sweeper.
"""
