# ConvScope: the web app and REST API on port 8000.
# Build: docker build -t convscope .   Run: docker run -p 8000:8000 convscope
ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY server ./server
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONVSCOPE_WEIGHTS=/app/model_weights/mnist_cnn.npz \
    CONVSCOPE_CLASS_MEANS=/app/model_weights/mnist_class_means.npz \
    CONVSCOPE_WEB_DIR=/app/web
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY server ./server
COPY web ./web
COPY model_weights ./model_weights
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# `convscope serve` hands CONVSCOPE_* to uvicorn: header and body deadlines, keep-alive,
# the request cap, the log format (see the README's configuration table)
CMD ["convscope", "serve", "--host", "0.0.0.0", "--port", "8000"]
