# The iris classifier's image. Build it with `nox -s image`
# (python -m kubeverify.providers.kind.image), which
# passes BASE_IMAGE on machines that reach no registry.
#
# BASE_IMAGE: an official slim Python 3.11+ image, or a stand-in that looks like one (python on
# PATH, the venv module): see ci/offline_kind/base_image.py. The default is pinned by digest, so
# that every build starts from the same bytes; the tag beside it only says what they are. It is
# the multi-arch index digest (linux/amd64, arm64 and more) of python:3.12-slim, then Python
# 3.12.15 on Debian trixie, as `docker buildx imagetools inspect python:3.12-slim` printed it on
# 2026-10-09 (recorded by public repositories that pin it, some of them through Dependabot). To
# update: run that command, and put its `Digest:` here, in loadtest/Dockerfile, in
# examples/echo/Dockerfile and in e2e/route/Dockerfile (tests/test_image_inputs.py checks that
# the four agree).
ARG BASE_IMAGE=python:3.12-slim@sha256:a6e34c598f2467ed0e9a8d349809fcd8b5c603269512df273a0bb1784edc11b1

# --- deps: the running service's dependencies in /opt/venv ---------------------------------------
FROM ${BASE_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# A venv rather than the system site-packages: Debian's python refuses system-wide pip installs
# (PEP 668), and one directory is easy to copy into the runtime stage.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# requirements/serve.txt locks pyproject.toml's `serve` extra, the one list of the service's
# dependencies, with every file's hash (`nox -s lock` rewrites it). Only it is copied before
# installing, so code changes leave this layer cached. --require-hashes and --no-deps install
# exactly what it pins, and --only-binary no source build that would fetch an unlocked backend.
COPY requirements/serve.txt requirements/
RUN pip install --require-hashes --no-deps --only-binary :all: -r requirements/serve.txt

# --- train: scikit-learn on top of deps, used once to write the artifact --------------------------
FROM deps AS train
# The `train` extra, locked on top of serve.txt's pins.
COPY requirements/train.txt requirements/
RUN pip install --require-hashes --no-deps --only-binary :all: -r requirements/train.txt
COPY service/ ./service/
# Bytecode is compiled here because the runtime filesystem is read-only; unchecked-hash keeps it
# valid whatever mtimes the copy gives the sources.
# Both model versions: the tutorial's (MODEL_PATH's default) and the second one a canary serves.
RUN python -m service.train /opt/iris/model.json \
 && python -m service.train --version 2 /opt/iris/model-v2.json \
 && python -m compileall -q --invalidation-mode unchecked-hash service

# --- venv: the deps venv without pip and setuptools, which the running service never needs -------
FROM deps AS venv
RUN python -m pip uninstall -q -y setuptools pip

# --- runtime: no scikit-learn, no compilers, no pip in the venv, not root -------------------------
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_PATH=/opt/iris/model.json
COPY --from=venv /opt/venv /opt/venv
COPY --from=train /opt/iris/ /opt/iris/
COPY --from=train /build/service /app/service
WORKDIR /app
# Numeric, so that runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001
EXPOSE 5000
# The service's own server (service/server.py): uvicorn with httptools and uvloop, with limits
# on request heads and bodies, read deadlines, the pod's identity on every answer, one access-log
# line per answer, and a drain on SIGTERM that resets no request. Listens on 0.0.0.0:5000; its
# limits and deadlines come from the environment (service/settings.py).
CMD ["python", "-m", "service.server"]
