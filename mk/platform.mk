# The local control plane (issue 16): etcd, kube-apiserver, kube-controller-manager and KServe
# v0.20.0's controller manager, built from their Go modules and run as local processes on
# 127.0.0.1. What is upstream and what is ours: docs/local-control-plane.md.
#
#   make platform-bins    build the four binaries into tools/platform/bin/ (~15 min cold, cached after)
#   make platform-up      start them; kubeconfig at local_outputs/platform/kubeconfig
#   make platform-down    stop every process platform-up started
#   make test-platform    build what is missing, then run the live tests (pytest -m platform)

PLATFORM_BIN := tools/platform/bin
PLATFORM_DIR ?= local_outputs/platform
PLATFORM_TIMEOUT ?= 180
KUBE_VERSION := v1.34.4
KUBE_MODULE := tools/platform/kube
KSERVE_MANAGER_MODULE := tools/platform/kserve-manager
# Stamp the version the binaries report (kube-apiserver --version, /version).
KUBE_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34
PLATFORM_BINARIES := $(addprefix $(PLATFORM_BIN)/,etcd kube-apiserver kube-controller-manager kserve-manager)

.PHONY: platform-bins platform-up platform-down platform-status test-platform

# $(call go_build,module dir,package,output name,ldflags)
go_build = @mkdir -p $(PLATFORM_BIN); start=$$(date +%s); echo "go build $(2) -> $(PLATFORM_BIN)/$(3)"; \
	cd $(1) && go build -trimpath -ldflags "$(4)" -o $(CURDIR)/$(PLATFORM_BIN)/$(3) $(2) \
	&& echo "  built $(3) in $$(( $$(date +%s) - start ))s"

$(PLATFORM_BIN)/etcd: $(KUBE_MODULE)/go.mod $(KUBE_MODULE)/go.sum
	$(call go_build,$(KUBE_MODULE),go.etcd.io/etcd/server/v3,etcd,-s -w)
$(PLATFORM_BIN)/kube-apiserver: $(KUBE_MODULE)/go.mod $(KUBE_MODULE)/go.sum
	$(call go_build,$(KUBE_MODULE),k8s.io/kubernetes/cmd/kube-apiserver,kube-apiserver,$(KUBE_LDFLAGS))
$(PLATFORM_BIN)/kube-controller-manager: $(KUBE_MODULE)/go.mod $(KUBE_MODULE)/go.sum
	$(call go_build,$(KUBE_MODULE),k8s.io/kubernetes/cmd/kube-controller-manager,kube-controller-manager,$(KUBE_LDFLAGS))
$(PLATFORM_BIN)/kserve-manager: $(KSERVE_MANAGER_MODULE)/go.mod $(KSERVE_MANAGER_MODULE)/go.sum
	$(call go_build,$(KSERVE_MANAGER_MODULE),github.com/kserve/kserve/cmd/manager,kserve-manager,-s -w)

platform-bins: $(PLATFORM_BINARIES) ## build etcd, kube-apiserver, kube-controller-manager, KServe's manager (Go modules)

platform-up: platform-bins install ## start the local control plane (kubeconfig: local_outputs/platform/kubeconfig)
	$(BIN)/python -m tools.local_platform up --dir $(PLATFORM_DIR) --timeout $(PLATFORM_TIMEOUT)

platform-down: install ## stop every process platform-up started
	$(BIN)/python -m tools.local_platform down --dir $(PLATFORM_DIR)

platform-status: install ## which control-plane components run
	$(BIN)/python -m tools.local_platform status --dir $(PLATFORM_DIR)

test-platform: platform-bins install ## the live control-plane tests (pytest -m platform), with their time
	@start=$$(date +%s); $(BIN)/pytest -m platform tests/platform; status=$$?; \
	echo "platform tier: $$(( $$(date +%s) - start ))s"; exit $$status
