"""Where training ends up and how to start it: the loss landscape of a stored run
(:func:`landscape`: interpolation lines, barriers between seeds, a filter-normalised 2-D
slice with the training path) and the vectorised learning-rate finder (:func:`lr_find`).

    surface.py   lines and planes in weight space as rows, their losses in one batched forward
    of_run.py    a stored run's landscape, written into its folder (mlplab landscape)
    finder.py    fixed lrs × seeds as one cohort, and Smith's range test (mlplab lr-find)
"""

from mlplab.landscape.finder import lr_find as lr_find
from mlplab.landscape.of_run import landscape as landscape

__all__ = ["landscape", "lr_find"]
