"""The image every component runs in (resolved when the pipeline is compiled)."""

from stroke_mlops.image import project_image

IMAGE = project_image()
