"""Command-line programs of the course (``python -m vitcourse.scripts.NAME``)."""
