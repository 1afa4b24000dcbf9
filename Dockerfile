# Hawker server image. Build: docker build -t hawker .
# Run:   docker run -e HAWKER_SECRET=... -e HAWKER_REDIS_URL=redis://redis:6379/0 \
#          -e HAWKER_PAYMENT_PROVIDER=mypkg.pay:make -p 8080:8080 hawker
# (`hawker serve` refuses to start without HAWKER_PAYMENT_PROVIDER; `sandbox` takes test cards only.)
# Stage 1 builds wheels (compilers only here); stage 2 is the slim runtime with a non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libffi-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY live ./live
COPY domain ./domain
COPY redislayer ./redislayer
COPY inventory ./inventory
COPY checkout ./checkout
COPY chat ./chat
COPY shop ./shop
COPY auctions ./auctions
COPY analytics ./analytics
COPY loadtest ./loadtest
RUN python -m pip install --upgrade pip wheel \
 && python -m pip wheel --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HAWKER_HOST=0.0.0.0 \
    HAWKER_PORT=8080 \
    HAWKER_DATA_DIR=/data \
    HAWKER_LOG_LEVEL=info
RUN groupadd --system hawker && useradd --system --gid hawker --home-dir /data --shell /usr/sbin/nologin hawker \
 && mkdir -p /data && chown hawker:hawker /data
COPY --from=build /wheels /wheels
RUN python -m pip install --no-index --find-links /wheels hawker && rm -rf /wheels
USER hawker
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HAWKER_PORT', '8080'), timeout=2)"]
# SIGTERM from `docker stop` is a graceful shutdown (sockets told to reconnect, exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["hawker", "serve"]
CMD []
