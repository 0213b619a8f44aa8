"""The scientist's workspace: set-up pages (models, prompt sets, runs, reference sets, metric
jobs) and the live progress of generation and metric jobs. Pages only: every write goes through
the API's serializers (field rules) and the apps' services (business rules)."""
