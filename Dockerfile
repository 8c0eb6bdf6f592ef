# The iris classifier's image. Build it with `nox -s image` (e2e.harness.image.build_image),
# which passes BASE_IMAGE on machines that reach no registry.
#
# BASE_IMAGE: an official slim Python 3.11+ image, or a stand-in that looks like one (python on
# PATH, the venv module): see e2e/harness/toolchain.py.
ARG BASE_IMAGE=python:3.12-slim

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
# pyproject.toml's `serve` extra is the one list of the service's dependencies. Only it is
# copied before installing, so code changes leave this layer cached.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print(*p['optional-dependencies']['serve'], sep='\n')" > requirements.txt \
 && pip install -r requirements.txt

# --- train: scikit-learn on top of deps, used once to write the artifact --------------------------
FROM deps AS train
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print(*p['optional-dependencies']['train'], sep='\n')" > train-requirements.txt \
 && pip install -r train-requirements.txt
COPY service/ ./service/
# Bytecode is compiled here because the runtime filesystem is read-only; unchecked-hash keeps it
# valid whatever mtimes the copy gives the sources.
RUN python -m service.train /opt/iris/model.json \
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
COPY --from=train /opt/iris/model.json /opt/iris/model.json
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
