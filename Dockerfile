# mmsearch on a slim Python 3.11 image with CPU-only PyTorch, served by a non-root user on port 7860.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GRADIO_ANALYTICS_ENABLED=False \
    MMSEARCH_HOST=0.0.0.0 MMSEARCH_PORT=7860 MMSEARCH_DATA_DIR=/data

# CPU wheels of the same torch/torchvision versions as requirements.txt (the default wheels carry CUDA: ~5 GB more).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1

# cairo draws a catalog's SVG pictures (CairoSVG); libGL and glib are what OpenCV (RapidOCR's, for --ocr) loads;
# WordNet's nouns tell the weak-match flag which words name a kind of a catalog's things. The slim image lacks them.
# Unpinned: their versions are the base image's Debian release's, which the python:3.11-slim tag moves with.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libcairo2 libgl1 libglib2.0-0 wordnet-base \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 1000 mmsearch && mkdir -p /data && chown 1000 /data
COPY --chown=1000 . .
RUN pip install --no-deps -e .
USER 1000
VOLUME ["/data"]
EXPOSE 7860
# Ready, not just up: /readyz answers 200 once the index is loaded and the feature store reads. The first start
# builds the demo index (a few minutes on 2 cores), hence the long start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15m --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:7860/readyz', timeout=4)"]
CMD ["mmsearch", "serve"]
