# A local Kubernetes cluster running the whole path: KFP standalone, KServe (Standard mode), our MinIO.
# Step by step, with what to expect at each step: docs/kind.md.
#
#   make cluster-up            kind cluster + cert-manager + KFP + KServe + manifests/overlays/$(CLUSTER)
#   make image image-load      build the project image and load it into the cluster's nodes
#   make upload-data           the raw CSV into MinIO (s3://stroke-mlops/data/...)
#   make submit                run the pipeline on the cluster and wait for it (fails naming the step)
#   make kfp-ui                open the KFP UI on http://127.0.0.1:8080
#   make predict               wait for the InferenceService, then one request to it
#   make cluster-down          delete the cluster
#   make validate-manifests    render both overlays and validate them offline (no cluster needed)
#
# CLUSTER=minikube runs the same steps on minikube. Every target is safe to re-run.
# IMAGE (mk/image.mk) is the one image name: `make image image-load cluster-app submit
# IMAGE=registry.example/stroke-mlops:dev` builds, loads, installs the ServingRuntime with and
# compiles the pipeline for that image.

CLUSTER ?= kind
CLUSTER_NAME ?= stroke-mlops
KIND_CONFIG := manifests/kind/cluster.yaml
MINIKUBE_K8S_VERSION ?= v1.34.11
MINIKUBE_CPUS ?= 4
MINIKUBE_MEMORY ?= 8g
KUBE_CONTEXT := $(if $(filter minikube,$(CLUSTER)),$(CLUSTER_NAME),kind-$(CLUSTER_NAME))
# Always name the context: these targets never act on whatever cluster happens to be current.
KUBECTL := kubectl --context $(KUBE_CONTEXT)
HELM := helm --kube-context $(KUBE_CONTEXT)
OVERLAY := manifests/overlays/$(CLUSTER)
CREDENTIALS_ENV := $(OVERLAY)/credentials.env
# This cluster's model-signing key pair (gitignored): the private key becomes a Secret for the
# pipeline's publish step, the public key a ConfigMap for the predictor and the loading steps.
SIGNING_KEYS_DIR := $(OVERLAY)/signing-keys
SIGNING_KEY := $(SIGNING_KEYS_DIR)/local-dev-signing-key.pem

KFP_VERSION ?= 2.17.0
KFP_MANIFESTS := github.com/kubeflow/pipelines/manifests/kustomize
# Matches the vendored CRDs (tools/crds/kserve) and the admission rules in tools/kserve_admission.py.
KSERVE_VERSION ?= v0.20.0
# CRDs only (ServiceMonitor, PodMonitor, PrometheusRule of manifests/monitoring); the same release's
# CRDs are vendored in tools/crds/prometheus-operator for make validate-manifests.
PROMETHEUS_OPERATOR_VERSION ?= v0.93.0
CERT_MANAGER_VERSION ?= v1.17.0

APP_NAMESPACE := stroke-mlops
DATA_URI := s3://stroke-mlops/data/healthcare-dataset-stroke-data.csv
STORE_URI := s3://stroke-mlops/models
EXPERIMENT ?= stroke-mlops
PREDICT_REQUEST ?= kserve/examples/v1-predict.json
MINIO_LOCAL_PORT ?= 19000
KFP_LOCAL_PORT ?= 8888
KFP_UI_PORT ?= 8080
PREDICTOR_LOCAL_PORT ?= 8081
SUBMIT_TIMEOUT ?= 3600
PREDICT_TIMEOUT ?= 600
SERVING_RUNTIME_YAML := manifests/base/serving-runtime.yaml

.PHONY: cluster-up cluster-create cluster-platform cluster-app image-load upload-data submit pipeline.yaml \
	kfp-ui predict cluster-down validate-manifests serving-runtime-manifest

check_cluster = case "$(CLUSTER)" in kind|minikube) ;; \
	*) echo "CLUSTER must be kind or minikube, not '$(CLUSTER)'"; exit 2;; esac
# $(call require,tool ...): stop with a pointer to the prerequisites when a tool is missing.
require = for tool in $(1); do command -v $$tool >/dev/null || \
	{ echo "$$tool is not installed: see docs/kind.md\#prerequisites"; exit 1; }; done
# $(call port_forward,namespace,resource,local port,remote port): kubectl port-forward in the
# background until the recipe's shell exits, and wait until the local port answers.
port_forward = $(KUBECTL) -n $(1) port-forward $(2) $(3):$(4) >/tmp/stroke-mlops-port-forward-$(3).log 2>&1 & \
	pf=$$!; trap 'kill $$pf 2>/dev/null' EXIT; \
	for _ in $$(seq 30); do (exec 3<>/dev/tcp/127.0.0.1/$(3)) 2>/dev/null && break; sleep 1; done; \
	(exec 3<>/dev/tcp/127.0.0.1/$(3)) 2>/dev/null || { echo "port-forward to $(2) in $(1) did not \
	come up; see /tmp/stroke-mlops-port-forward-$(3).log"; exit 1; }

cluster-up: ## create the local cluster with KFP, KServe and MinIO (CLUSTER=kind|minikube; ~10 min)
	@$(check_cluster)
	@$(call require,docker kubectl helm $(CLUSTER))
	@$(MAKE) --no-print-directory cluster-create
	@$(MAKE) --no-print-directory cluster-platform
	@$(MAKE) --no-print-directory cluster-app
	@echo "Cluster $(KUBE_CONTEXT) is ready. Next: make image image-load upload-data submit"

cluster-create:
	@if [ "$(CLUSTER)" = kind ]; then \
	  if kind get clusters 2>/dev/null | grep -qx '$(CLUSTER_NAME)'; then \
	    echo "kind cluster $(CLUSTER_NAME) already exists"; \
	  else kind create cluster --name $(CLUSTER_NAME) --config $(KIND_CONFIG); fi; \
	else \
	  if minikube status -p $(CLUSTER_NAME) >/dev/null 2>&1; then \
	    echo "minikube profile $(CLUSTER_NAME) is already running"; \
	  else minikube start -p $(CLUSTER_NAME) --kubernetes-version=$(MINIKUBE_K8S_VERSION) \
	    --cpus=$(MINIKUBE_CPUS) --memory=$(MINIKUBE_MEMORY); fi; \
	fi

cluster-platform:
	@echo "==> cert-manager $(CERT_MANAGER_VERSION) (KServe's webhook certificates)"
	$(KUBECTL) apply -f https://github.com/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
	$(KUBECTL) -n cert-manager wait --for=condition=Available deployment --all --timeout=5m
	@echo "==> Kubeflow Pipelines $(KFP_VERSION), standalone, platform-agnostic"
	$(KUBECTL) apply -k "$(KFP_MANIFESTS)/cluster-scoped-resources?ref=$(KFP_VERSION)"
	$(KUBECTL) wait --for=condition=Established crd --all --timeout=2m
	$(KUBECTL) apply -k "$(KFP_MANIFESTS)/env/platform-agnostic?ref=$(KFP_VERSION)"
	@echo "==> KServe $(KSERVE_VERSION), Standard mode (no Knative, no Istio)"
	$(HELM) upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
	  --version $(KSERVE_VERSION) --namespace kserve --create-namespace --wait
	$(HELM) upgrade --install kserve oci://ghcr.io/kserve/charts/kserve-resources \
	  --version $(KSERVE_VERSION) --namespace kserve --wait \
	  --set kserve.controller.deploymentMode=Standard \
	  --set kserve.controller.gateway.disableIngressCreation=true
	@echo "==> prometheus-operator $(PROMETHEUS_OPERATOR_VERSION) CRDs (manifests/monitoring's ServiceMonitor, PodMonitor, PrometheusRule)"
	$(KUBECTL) apply --server-side -f https://github.com/prometheus-operator/prometheus-operator/releases/download/$(PROMETHEUS_OPERATOR_VERSION)/stripped-down-crds.yaml
	@echo "==> waiting for Kubeflow Pipelines (the first start pulls its images: up to 20 min)"
	$(KUBECTL) -n kubeflow wait --for=condition=Available deployment --all --timeout=20m

# Random credentials for this cluster's MinIO, written once; the file is gitignored.
$(CREDENTIALS_ENV):
	@umask 077; { \
	  echo "# Written by 'make cluster-up' for your local $(CLUSTER) cluster. Gitignored: never commit."; \
	  echo "AWS_ACCESS_KEY_ID=stroke-$$(LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c 12)"; \
	  echo "AWS_SECRET_ACCESS_KEY=$$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)"; \
	} > $@
	@echo "wrote $@ (random MinIO credentials, gitignored)"

$(SIGNING_KEY): | $(INSTALLED)
	@$(BIN)/python -c 'import sys, pathlib; from stroke_mlops.registry.signing import generate_key_pair; \
	  generate_key_pair(pathlib.Path(sys.argv[1]), label=b"# For the local cluster only (make cluster-up). Gitignored: never commit.\n")' \
	  $(SIGNING_KEYS_DIR)
	@echo "wrote $(SIGNING_KEYS_DIR) (model-signing key pair for this cluster, gitignored)"

cluster-app: $(CREDENTIALS_ENV) $(SIGNING_KEY)
	@echo "==> stroke-mlops: MinIO, bucket, ServingRuntime ($(IMAGE)), predictor account, RBAC ($(OVERLAY))"
	scripts/render-overlay.sh $(OVERLAY) "$(IMAGE)" | $(KUBECTL) apply -f -
	$(KUBECTL) -n kubeflow create secret generic stroke-mlops-signing-key \
	  --from-file=signing-key.pem=$(SIGNING_KEY) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	for ns in $(APP_NAMESPACE) kubeflow; do $(KUBECTL) -n $$ns create configmap \
	  stroke-mlops-signing-public-key --from-file=public-key.pem=$(SIGNING_KEYS_DIR)/local-dev-signing-key.pub.pem \
	  --dry-run=client -o yaml | $(KUBECTL) apply -f - || exit 1; done
	$(KUBECTL) -n $(APP_NAMESPACE) rollout status deployment/minio --timeout=5m
	$(KUBECTL) -n $(APP_NAMESPACE) wait --for=condition=Complete job/create-bucket --timeout=5m

image-load: ## load the project image (make image) into the cluster's nodes
	@$(check_cluster)
	@test -n "$(IMAGE)" || { echo "IMAGE is not set (mk/image.mk defines it)"; exit 1; }
	@docker image inspect "$(IMAGE)" >/dev/null 2>&1 || \
	  { echo "image $(IMAGE) is not built yet: run 'make image' first"; exit 1; }
	@# Through an archive: `kind load docker-image` fails with Docker's containerd image store
	@# (kind#3795); `kind load image-archive` works with either store.
	@archive=$$(mktemp /tmp/stroke-mlops-image.XXXXXX.tar); trap 'rm -f "$$archive"' EXIT; \
	docker save --output "$$archive" "$(IMAGE)" && \
	if [ "$(CLUSTER)" = kind ]; then kind load image-archive "$$archive" --name $(CLUSTER_NAME); \
	else minikube image load "$$archive" -p $(CLUSTER_NAME); fi
	@echo "loaded $(IMAGE) into $(KUBE_CONTEXT) (pods use imagePullPolicy IfNotPresent)"

# Uploads argv[1] to the data URI; failures are one line (no traceback).
define UPLOAD_DATA_PY
import sys
from stroke_mlops.registry.uris import StorageError, describe_s3_failure, minio_client_from_env, s3_errors
try:
    client = minio_client_from_env()
    client.fput_object("stroke-mlops", "data/healthcare-dataset-stroke-data.csv", sys.argv[1],
                       content_type="text/csv")
except StorageError as e:
    sys.exit(f"upload failed: {e}")
except s3_errors() as e:
    sys.exit(f"upload failed: {describe_s3_failure(e, endpoint='MinIO (port-forward)')}")
endef
export UPLOAD_DATA_PY

upload-data: $(DATA) | $(INSTALLED) ## copy the raw CSV into the cluster's MinIO (s3://stroke-mlops/data/)
	@test -f $(CREDENTIALS_ENV) || { echo "$(CREDENTIALS_ENV) is missing: run 'make cluster-up' first"; exit 1; }
	@set -a; . "$(abspath $(CREDENTIALS_ENV))" || exit 1; set +a; \
	$(call port_forward,$(APP_NAMESPACE),svc/minio,$(MINIO_LOCAL_PORT),9000); \
	AWS_ENDPOINT_URL=http://127.0.0.1:$(MINIO_LOCAL_PORT) $(BIN)/python -c "$$UPLOAD_DATA_PY" $(DATA) \
	  && echo "uploaded $(DATA) to $(DATA_URI)"

submit: | $(INSTALLED) ## run the pipeline on the cluster and wait; fails naming the failed step
	@echo "Follow the run in the KFP UI meanwhile: make kfp-ui (another terminal), then the link below"
	@$(call port_forward,kubeflow,svc/ml-pipeline-ui,$(KFP_LOCAL_PORT),80); \
	STROKE_MLOPS_IMAGE="$(IMAGE)" $(BIN)/stroke-mlops submit --host http://127.0.0.1:$(KFP_LOCAL_PORT) \
	  --ui-url http://127.0.0.1:$(KFP_UI_PORT) \
	  --data $(DATA_URI) --store $(STORE_URI) --experiment $(EXPERIMENT) \
	  --wait --timeout $(SUBMIT_TIMEOUT)

# The compiled pipeline for the plain kfp CLI path (README "Run on kind").
pipeline.yaml: | $(INSTALLED)
	STROKE_MLOPS_IMAGE="$(IMAGE)" $(BIN)/stroke-mlops compile --output $@

kfp-ui: ## serve the KFP UI on http://127.0.0.1:8080 (Ctrl-C to stop)
	@echo "KFP UI: http://127.0.0.1:$(KFP_UI_PORT)"
	$(KUBECTL) -n kubeflow port-forward svc/ml-pipeline-ui $(KFP_UI_PORT):80

predict: ## wait for the InferenceService to exist and be Ready, then send it kserve/examples/v1-predict.json
	@test -f $(PREDICT_REQUEST) || { echo "$(PREDICT_REQUEST) not found"; exit 1; }
	@# `kubectl wait` fails at once while the object does not exist yet: wait for it first.
	@for waited in $$(seq 0 5 $(PREDICT_TIMEOUT)); do \
	  $(KUBECTL) -n $(APP_NAMESPACE) get inferenceservice/stroke >/dev/null 2>&1 && break; \
	  [ "$$waited" -ge $(PREDICT_TIMEOUT) ] && { echo "no InferenceService stroke after \
	  $(PREDICT_TIMEOUT)s: did the run deploy? (make submit says)"; exit 1; }; \
	  [ "$$waited" -eq 0 ] && echo "waiting for InferenceService stroke to be created..."; \
	  sleep 5; done
	@$(KUBECTL) -n $(APP_NAMESPACE) wait --for=condition=Ready inferenceservice/stroke \
	  --timeout=$(PREDICT_TIMEOUT)s >/dev/null || \
	  { echo "InferenceService stroke is not Ready: see docs/kind.md#troubleshooting"; exit 1; }
	@$(call port_forward,$(APP_NAMESPACE),svc/stroke-predictor,$(PREDICTOR_LOCAL_PORT),80); \
	curl --silent --show-error --fail-with-body -H 'Content-Type: application/json' \
	  --data @$(PREDICT_REQUEST) http://127.0.0.1:$(PREDICTOR_LOCAL_PORT)/v1/models/stroke:predict; echo

cluster-down: ## delete the local cluster (CLUSTER=kind|minikube) and everything in it
	@$(check_cluster)
	@if [ "$(CLUSTER)" = kind ]; then kind delete cluster --name $(CLUSTER_NAME); \
	else minikube delete -p $(CLUSTER_NAME); fi

validate-manifests: | $(INSTALLED) ## render both overlays; check schemas (vendored KServe CRDs) and KServe admission rules, offline
	$(BIN)/python -m tools.validate_k8s manifests/overlays/kind manifests/overlays/minikube

serving-runtime-manifest: | $(INSTALLED) ## regenerate manifests/base/serving-runtime.yaml from deploy.py
	$(BIN)/python -c 'from stroke_mlops.deploy.kserve_objects import render_serving_runtime_manifest as r; print(r(), end="")' \
	  > $(SERVING_RUNTIME_YAML)
	@echo "wrote $(SERVING_RUNTIME_YAML)"
