"""KFP v2 lightweight components: thin adapters over ``stroke_mlops.steps``.

Every component runs in the one project image (``stroke_mlops.image.project_image()``) with
the library installed (``install_kfp_package=False``); its body imports the library and calls
one step function. The same compiled YAML runs on a cluster, under ``kfp.local.DockerRunner``
and under ``kfp.local.SubprocessRunner``.
"""
