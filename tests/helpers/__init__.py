"""Helper modules shared by the test folders (``from helpers.x import y``).

``tests`` is on ``sys.path`` through ``pythonpath = tests`` in setup.cfg's
pytest section, so no test needs to edit ``sys.path`` to reach them.
"""
