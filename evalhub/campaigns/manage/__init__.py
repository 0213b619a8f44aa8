"""The scientists' campaign pages: create, follow, pause/resume/close, quality, gold pairs.

Server-rendered; every write goes through the service the API calls
(``campaigns.services``, ``building.gold``, ``quality.annotators``)."""
