"""Built-in offline "shapes-video" generator: the shapes scene, moving as the prompt says."""

from generators.shapes_video.generator import ShapesVideoGenerator
from generators.shapes_video.motion import parse_motions

__all__ = ["ShapesVideoGenerator", "parse_motions"]
