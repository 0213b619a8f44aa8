"""The scientists' side-by-side gallery of two runs, and the page of one image.

``selectors.py`` holds the queries and their typed results, ``access.py`` who may see what,
``forms.py`` the gallery's parameters, ``views.py`` the two thin pages (mounted by ``urls.py``).
"""
