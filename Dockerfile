# Web image: Django + gunicorn, slim, no torch (requirements.txt only). Also runs the default-queue worker, beat and
# migrations. Build: docker build -t resnet-lti-web .

# The student's code editor (CodeMirror 6) is bundled here from frontend/'s lockfile (what `make static-build` does),
# so the web image carries no Node.js.
FROM node:20-slim AS static-build
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run --silent build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

WORKDIR /app
RUN useradd --create-home --uid 10001 --user-group app

COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY --chown=app:app . .
COPY --from=static-build --chown=app:app /build/static/js/build/ static/js/build/
# Static files are built into the image (served by WhiteNoise); the build-time secret is not used at run time.
RUN DJANGO_ENV=production DJANGO_SECRET_KEY=collectstatic-only-not-a-secret DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
 && chown -R app:app /app/staticfiles

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"]
