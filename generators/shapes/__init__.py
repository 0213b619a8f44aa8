"""Built-in offline "shapes" generator: compositional prompts rendered with PIL."""

from generators.shapes.generator import ShapesGenerator
from generators.shapes.parser import Scene, parse_prompt

__all__ = ["Scene", "ShapesGenerator", "parse_prompt"]
