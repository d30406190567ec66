"""Templates shipped with the package: ``project/``, the course project's Cookiecutter template
(rendered by :func:`vitcourse.course.newproject.new_project`, ``vitcourse new-project``)."""
