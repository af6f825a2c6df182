# One image for web (gunicorn), worker (rqworker) and cron (rqcron); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
# libvirt-python builds against libvirt's headers; the build tools leave after it, the
# library (libvirt0) stays.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvirt0 libvirt-dev pkg-config gcc \
 && pip install -r requirements.txt \
 && apt-get purge -y --auto-remove libvirt-dev pkg-config gcc \
 && rm -rf /var/lib/apt/lists/*

COPY . .
# Static files are part of the image (whitenoise serves them); collectstatic needs no
# database, only settings, hence the throwaway key.
RUN SECRET_KEY=collectstatic-only STATIC_ROOT=/app/staticfiles \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app hypervisor \
 && mkdir -p /app/var /metrics \
 && chown -R hypervisor /app/var /app/staticfiles /metrics

ENV STATIC_ROOT=/app/staticfiles
USER hypervisor
EXPOSE 8000
CMD ["gunicorn", "hypervisor.wsgi"]
