# The one project image (every KFP component and the KServe predictor), built offline from a wheelhouse.
#
#   make lock             re-resolve requirements/runtime.lock after a change to pyproject.toml
#   make lock-upgrade     same, moving every pin to the newest allowed release
#   make wheelhouse       wheelhouse/: every wheel in the lock + the project's own wheel
#   make image            stroke-mlops:<version> on $(BASE_IMAGE) (default python:3.11-slim; needs
#                         only a running Docker engine and registry access, no root)
#   make test-containers  engine + image, then pytest -m containers
#
# Offline (CI): `make image BASE_IMAGE=stroke-mlops-base:bookworm` builds the base itself with
# debootstrap from a Debian mirror (root) and starts a local engine if none answers:
#   make docker-engine    start a local Docker engine (root; installs docker.io if missing)
#   make base-image       stroke-mlops-base:bookworm from debootstrap (no registry needed)
#
# Platform: the lock is resolved for CPython 3.11 on Linux x86_64 (manylinux_2_28), so the image
# is linux/amd64, whatever the host: the wheelhouse is downloaded for that platform explicitly
# (scripts/wheelhouse.sh) and the image is built with --platform linux/amd64. Supported hosts:
# x86_64 Linux natively; arm64 hosts (Apple silicon, arm64 Linux) build and run it under
# emulation, which is slow. There is no linux/arm64 image (xgboost-cpu has no arm64 wheels).

LOCK := requirements/runtime.lock
WHEELHOUSE := wheelhouse
WHEELHOUSE_DEPS := $(WHEELHOUSE)/deps/.complete
IMAGE_LOCK := $(WHEELHOUSE)/image.lock
WHEELHOUSE_PROJECT := $(WHEELHOUSE)/project/.complete
# Build-time Python (tomllib); the venv's when present.
HOST_PYTHON := $(firstword $(wildcard $(BIN)/python) $(PYTHON))
PROJECT_VERSION := $(shell $(HOST_PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])' 2>/dev/null)
# Same tag as stroke_mlops.image.project_image() (which honours $$STROKE_MLOPS_IMAGE too).
IMAGE ?= $(or $(STROKE_MLOPS_IMAGE),stroke-mlops:$(PROJECT_VERSION))
BASE_IMAGE ?= python:3.11-slim
IMAGE_PLATFORM := linux/amd64
# Recorded in the image (label + STROKE_MLOPS_GIT_REVISION, which model metadata reads).
GIT_REVISION := $(shell if git rev-parse -q --verify HEAD >/dev/null 2>&1; then \
	git rev-parse --short=12 HEAD | tr -d '\n'; git diff --quiet HEAD -- || printf -- -dirty; \
	else echo unknown; fi)
PROJECT_SOURCES := pyproject.toml $(wildcard README.md) $(shell find src -type f \( -name '*.py' -o -name '*.json' -o -name 'py.typed' \) 2>/dev/null)
# Resolution target: Linux x86_64, CPython 3.11, manylinux_2_28 wheels (glibc of Debian bookworm: 2.36).
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--annotation-style line --custom-compile-command 'make lock'

.PHONY: lock lock-upgrade wheelhouse docker-engine docker-engine-stop base-image image test-containers

# Not through $(INSTALLED): after a change to pyproject.toml that install is what the lock must catch up with.
$(BIN)/uv:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.9'

# uv starts from the current pins (as pip-compile does); the lock is replaced only if it changed,
# so an unchanged lock does not rebuild the wheelhouse.
lock lock-upgrade: $(BIN)/uv
	@cp $(LOCK) $(LOCK).new 2>/dev/null || true
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) --quiet \
		$(if $(filter lock-upgrade,$@),--upgrade) -o $(LOCK).new || { rm -f $(LOCK).new; exit 1; }
	@if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; echo "$(LOCK) is up to date"; \
	else mv $(LOCK).new $(LOCK); echo "$(LOCK) updated: review and commit it"; fi

lock: ## re-resolve requirements/runtime.lock from pyproject.toml (keeps existing pins)
lock-upgrade: ## re-resolve requirements/runtime.lock, upgrading every pin

wheelhouse: $(WHEELHOUSE_DEPS) $(WHEELHOUSE_PROJECT) ## wheelhouse/: wheels of the lock + the project wheel

# The lock's wheels for the image's platform (linux/amd64, CPython 3.11), not the host's; a fresh
# folder each time, so no stale pins linger in the image's build context.
$(WHEELHOUSE_DEPS): $(IMAGE_LOCK) scripts/wheelhouse.sh | $(INSTALLED)
	scripts/wheelhouse.sh $(IMAGE_LOCK) $(WHEELHOUSE)/deps $(BIN)/pip
	@touch $@

# The lock without kserve-storage's unused storage backends (Azure, Hugging Face, git): the
# image reads models from S3/MinIO and folders only.
$(IMAGE_LOCK): $(LOCK) scripts/image_requirements.py
	@mkdir -p $(WHEELHOUSE)
	$(HOST_PYTHON) scripts/image_requirements.py $(LOCK) > $@.new && mv $@.new $@
	@head -2 $@

# The project wheel; build/ is removed so setuptools cannot reuse stale files from an older build.
$(WHEELHOUSE_PROJECT): $(PROJECT_SOURCES) | $(INSTALLED)
	rm -rf build $(WHEELHOUSE)/project
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir $(WHEELHOUSE)/project .
	rm -rf build
	@touch $@

docker-engine: ## start a local Docker engine (installs docker.io + debootstrap if missing; root)
	scripts/docker-engine.sh start

docker-engine-stop: ## stop the Docker engine started by `make docker-engine`
	scripts/docker-engine.sh stop

base-image: docker-engine ## build stroke-mlops-base:bookworm with debootstrap (skips if present)
	scripts/base-image.sh $(BASE_IMAGE)

# The debootstrap base (and a local engine) only when that base is in use; otherwise the user's
# own Docker engine must answer.
IMAGE_BASE_PREREQ := $(if $(filter stroke-mlops-base:%,$(BASE_IMAGE)),base-image,docker-running)

.PHONY: docker-running
docker-running:
	@docker info >/dev/null 2>&1 || { echo "no Docker engine answers: start Docker (see docs/kind.md#prerequisites)"; exit 1; }

image: $(WHEELHOUSE_DEPS) $(WHEELHOUSE_PROJECT) $(IMAGE_BASE_PREREQ) ## build the project image stroke-mlops:<version> (linux/amd64)
	IMAGE_PLATFORM=$(IMAGE_PLATFORM) scripts/build-image.sh "$(IMAGE)" "$(BASE_IMAGE)" "$(PROJECT_VERSION)" "$(GIT_REVISION)"

# STROKE_MLOPS_REQUIRE_CONTAINERS=1: a missing engine or image fails the tests instead of skipping.
test-containers: image ## start the engine, build what is missing, run pytest -m containers
	STROKE_MLOPS_IMAGE=$(IMAGE) STROKE_MLOPS_REQUIRE_CONTAINERS=1 $(BIN)/pytest -m containers tests/containers
