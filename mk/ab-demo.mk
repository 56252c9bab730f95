# Two versions side by side (README "Two versions side by side"):
#
#   make ab-demo   two predictors behind KServe's own router (make platform-tools builds it),
#                  held-out patients replayed as traffic, their outcomes recorded as feedback,
#                  the share each version answered, compare's verdict, an alert firing.
#                  Root: the router runs in its own network
#                  namespace (its port 8080 is fixed).
AB_DEMO_DIR ?= outputs/ab-demo
CHALLENGER_PERCENT ?= 30

.PHONY: ab-demo

ab-demo: install data ## two versions behind KServe's router: replayed traffic, delayed outcomes, the measured split
	@test -x tools/platform/bin/kserve-router || $(MAKE) --no-print-directory platform-tools
	$(BIN)/python -m tools.ab_demo --data $(DATA) --work-dir $(AB_DEMO_DIR) \
	  --challenger-percent $(CHALLENGER_PERCENT)
