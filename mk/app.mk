# The clinician's page and operations view (README "The app").
#
#   make app-demo   serve the store's production model (make demo first) and the app beside it
#                   on 127.0.0.1; prints the app's URL (Ctrl-C stops both)

APP_PORT ?= 8501

.PHONY: app-demo

app-demo: install ## serve the production model and the app on 127.0.0.1 (after make demo); prints the URL
	$(BIN)/python -m stroke_mlops.app.demo --store $(STORE) --reports $(MONITOR_DEMO_DIR) --port $(APP_PORT)
