# One image for web and workers. GPU workers run it with the NVIDIA runtime (docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN apt-get update && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml requirements.lock README.md ./
COPY evalhub ./evalhub
COPY metrics ./metrics
COPY generators ./generators
COPY ratings ./ratings
RUN pip install --no-cache-dir -c requirements.lock .

COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput

EXPOSE 8000
# Workers and threads: WEB_CONCURRENCY and WEB_THREADS (see the config file).
CMD ["gunicorn", "-c", "evalhub/config/gunicorn.conf.py"]
