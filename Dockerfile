# One image for every KFP component and for the KServe predictor: stroke-mlops:<version>.
#
# Installs only from the wheelhouse (no index, no compilers), downloaded for linux/amd64 whatever
# the host (scripts/wheelhouse.sh); `make image` runs
#   docker build --platform linux/amd64 --build-arg BASE_IMAGE=python:3.11-slim ...
# Any Debian-like base with python3 3.11 + venv works; offline, CI uses its debootstrap base
# (`make image BASE_IMAGE=stroke-mlops-base:bookworm`). Classic builder and BuildKit.
ARG BASE_IMAGE=python:3.11-slim

# --- dependencies: the pinned lock into /opt/venv (a layer that changes only with the lock) -------
FROM ${BASE_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/tmp/wheelhouse/deps
# pip lives in its own venv and installs into /opt/venv via --python, so none of it reaches the
# final image (nothing installs at run time: components use install_kfp_package=False).
RUN python3 -m venv /opt/pip \
 && python3 -m venv --without-pip /opt/venv
# image.lock: the lock without kserve-storage's unused storage backends (Azure, Hugging Face, git;
# scripts/image_requirements.py). Every pin is in it, so --no-deps installs exactly those.
COPY wheelhouse/image.lock /tmp/image.lock
COPY wheelhouse/deps/ /tmp/wheelhouse/deps/
# .pyc files stay (they make the first import fast); bundled test suites go (~100 MB).
RUN /opt/pip/bin/pip --python /opt/venv/bin/python3 install --no-deps -r /tmp/image.lock \
 && find /opt/venv/lib/python3.11/site-packages -depth -type d -name tests -exec rm -rf {} + \
 && rm -rf /tmp/wheelhouse

# --- project: the stroke-mlops wheel alone, staged under /staging for a small final layer --------
FROM dependencies AS project
ENV PIP_FIND_LINKS=/tmp/wheelhouse/project
COPY wheelhouse/project/ /tmp/wheelhouse/project/
# Install (no deps: everything is pinned above), let `pip check` fail the build on any conflict
# except the backends image.lock leaves out on purpose (its first line lists them), then stage
# the same files under /staging/opt/venv/.
RUN /opt/pip/bin/pip --python /opt/venv/bin/python3 install --no-deps stroke-mlops \
 && omitted="$(sed -n '1s/^.*backends: //p' /tmp/image.lock | sed 's/, /|/g; s/[-_]/[-_]/g')" \
 && { /opt/pip/bin/pip --python /opt/venv/bin/python3 check >/tmp/pip-check.txt || true; } \
 && ! grep -v -i -E "^kserve[-_]storage [^ ]+ requires ($omitted), which is not installed\.$|^No broken requirements found" /tmp/pip-check.txt \
 && /opt/pip/bin/pip --python /opt/venv/bin/python3 install --no-deps --ignore-installed \
      --no-warn-script-location --root /staging stroke-mlops

# --- runtime -------------------------------------------------------------------------------------
# Ordered for layer reuse: the big dependency layer changes only with the lock, the project layer
# with the code, and the version / revision metadata comes last.
FROM ${BASE_IMAGE}

# A fixed non-root uid/gid, so Kubernetes runAsNonRoot can check the numeric USER below.
RUN groupadd --gid 1000 stroke \
 && useradd --uid 1000 --gid 1000 --home-dir /home/stroke --create-home --shell /usr/sbin/nologin stroke \
 && install -d -o 1000 -g 1000 -m 0755 /app

COPY --from=dependencies /opt/venv/ /opt/venv/
COPY --from=project /staging/opt/venv/ /opt/venv/

# python3 on PATH is the venv's: KFP runs `sh -c ... python3 -m kfp.dsl.executor_main ...`.
ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/stroke
USER 1000:1000
WORKDIR /app
EXPOSE 8080
# 0.0.0.0 inside the container (`stroke-mlops serve` alone binds 127.0.0.1); same as SERVE_ARGS.
CMD ["stroke-mlops", "serve", "--model-uri", "/mnt/models", "--port", "8080", "--host", "0.0.0.0"]

ARG VERSION=0.0.0
ARG STROKE_MLOPS_GIT_REVISION=unknown
# The library records STROKE_MLOPS_GIT_REVISION in model metadata.
ENV STROKE_MLOPS_VERSION="${VERSION}" \
    STROKE_MLOPS_GIT_REVISION="${STROKE_MLOPS_GIT_REVISION}"
LABEL org.opencontainers.image.title="stroke-mlops" \
      org.opencontainers.image.description="Stroke-risk model: KFP v2 components and KServe predictor" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${STROKE_MLOPS_GIT_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
