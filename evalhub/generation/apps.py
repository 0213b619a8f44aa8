from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "evalhub.generation"
    label = "generation"
    verbose_name = "Generation"
