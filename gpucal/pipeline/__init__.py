"""The night pipeline: configuration, header scan, planning, tasks, execution, results.

``gpucal reduce`` runs :func:`gpucal.pipeline.execute.reduce`: :mod:`.scan` reads each raw
file's header (through :mod:`.headers`, the one place values are taken from headers),
:mod:`.plan` groups frames and chooses calibrations, :mod:`.execute` runs the
:mod:`.tasks` through an executor and alone writes :mod:`.results`, the database.
"""
