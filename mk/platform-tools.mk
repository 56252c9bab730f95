# Platform checks built from upstream Go modules (tools/platform/README.md): KServe v0.20.0's own
# defaulting and admission code as `kserve-admit`, and KServe's InferenceGraph router (cmd/router,
# unmodified) as `kserve-router`. Needs Go >= 1.25.8 and the Go module proxy; the first build
# downloads and compiles the modules, later ones reuse Go's caches.
PLATFORM_BIN := tools/platform/bin
KSERVE_ADMIT := $(PLATFORM_BIN)/kserve-admit
KSERVE_ROUTER := $(PLATFORM_BIN)/kserve-router
# The ConfigMap kserve-admit embeds must stay byte-equal to the one in the KServe module.
KSERVE_CONFIG := tools/platform/kserve/cmd/kserve-admit/inferenceservice-config.yaml

.PHONY: platform-tools platform-tools-status

platform-tools: ## build kserve-admit (KServe v0.20.0's admission code) and kserve-router into tools/platform/bin/
	@command -v go >/dev/null || { echo "go not found: install Go >= 1.25.8"; exit 1; }
	@mkdir -p $(PLATFORM_BIN)
	@echo "platform-tools: building kserve-admit from github.com/kserve/kserve v0.20.0 (first build: ~10 min)"
	@start=$$(date +%s); \
	  cd tools/platform/kserve && go mod download github.com/kserve/kserve && \
	  upstream="$$(go list -m -f '{{.Dir}}' github.com/kserve/kserve)/config/configmap/inferenceservice.yaml" && \
	  { tail -n +4 cmd/kserve-admit/inferenceservice-config.yaml | cmp -s - "$$upstream" \
	    || { echo "$(KSERVE_CONFIG) differs from $$upstream"; exit 1; }; } && \
	  go build -buildvcs=false -o ../bin/kserve-admit ./cmd/kserve-admit && \
	  go build -buildvcs=false -o ../bin/kserve-router github.com/kserve/kserve/cmd/router && \
	  echo "platform-tools: $(KSERVE_ADMIT) and $(KSERVE_ROUTER) built in $$(( $$(date +%s) - start ))s"

# `make test` names the platform checks it cannot run (the tests skip them with the same reason).
platform-tools-status:
	@test -x $(KSERVE_ADMIT) \
	  || echo "platform checks (KServe's own admission code) skipped: $(KSERVE_ADMIT) is not built; run 'make platform-tools'"
	@test -x $(KSERVE_ROUTER) \
	  || echo "traffic-split tests (KServe's router) skipped: $(KSERVE_ROUTER) is not built; run 'make platform-tools'"

test: platform-tools-status
