"""Figures: drawing only, from tables and maps the experiments computed.

Importing the package sets the book's figure style (:func:`sanitylib.figures.style.use_book_style`:
9 pt fonts and 100 dpi, so figures no wider than the page are shown at their own size).
"""

from sanitylib.figures.style import use_book_style

use_book_style()
