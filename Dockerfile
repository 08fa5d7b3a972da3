# medtrace: one image for every role (api, sequencer, bridge, scheduler, witness).
FROM python:3.11-slim-bookworm

# libzbar0: pyzbar reads QR and 1D codes from images.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzbar0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY trace ./trace
COPY ledger ./ledger
COPY scanners ./scanners
COPY iot ./iot
COPY web ./web
COPY protocol ./protocol
RUN pip install --no-cache-dir . && rm -rf /src

RUN useradd --system --create-home --home-dir /var/lib/medtrace medtrace \
 && mkdir -p /var/lib/medtrace/keys && chown -R medtrace /var/lib/medtrace
USER medtrace
WORKDIR /var/lib/medtrace
ENV MEDTRACE_DATA_DIR=/var/lib/medtrace

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
ENTRYPOINT ["medtrace"]
CMD ["serve", "--role", "api", "--host", "0.0.0.0", "--port", "8000"]
