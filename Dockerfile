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
# A throwaway key for this step only: without one the embedded default would write its key
# file into the image (var/secret_key), shared by everyone who runs the image.
RUN DEBUG=1 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && rm -rf var/broker var/secret_key

# Web and workers run as an unprivileged user: the code stays root's (read-only to the app),
# only the state directories are the app's. /data's ownership is copied into the `media`
# volume when compose first creates it (media, Hugging Face and torch weight caches).
RUN groupadd --system --gid 10001 evalhub \
    && useradd --system --uid 10001 --gid evalhub --create-home --home-dir /home/evalhub evalhub \
    && mkdir -p /data/media /data/hf /data/torch \
    && chown -R evalhub:evalhub /data /app/var
USER evalhub

EXPOSE 8000
# Workers and threads: WEB_CONCURRENCY and WEB_THREADS (see the config file).
CMD ["gunicorn", "-c", "evalhub/config/gunicorn.conf.py"]
