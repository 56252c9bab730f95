# The loop: monitor served requests for drift, retrain through the gated pipeline (README "The loop").
#
#   make monitor-demo   locally: serve production with request logging, replay an undrifted and then
#                       a drifted window of real rows, show the monitor's verdicts and the retraining
#   make schedule       on the cluster (after make submit): a KFP recurring run of monitor-and-retrain
#   make test-alerts    the shipped alert rules in a real Prometheus + Pushgateway + Alertmanager
#                       (Debian packages) against real predictors: each alert fires on its cause
#
# SCHEDULE_CRON has six fields, seconds first (KFP's scheduler): the default runs hourly at :00.

SCHEDULE_CRON ?= 0 0 * * * *
REQUESTS_URI ?= s3://stroke-mlops/request-logs
COOLDOWN_HOURS ?= 24
MONITOR_DEMO_DIR ?= outputs/monitor-demo

.PHONY: monitor-demo schedule test-alerts

monitor-demo: install data ## serve production with request logging, replay calm then drifted traffic, monitor, retrain
	$(BIN)/stroke-mlops monitor-demo --data $(DATA) --store $(STORE) --work-dir $(MONITOR_DEMO_DIR)

schedule: | $(INSTALLED) ## on the cluster: a recurring run of monitor-and-retrain (SCHEDULE_CRON, 6 fields)
	@$(check_cluster)
	@$(call port_forward,kubeflow,svc/ml-pipeline-ui,$(KFP_LOCAL_PORT),80); \
	$(BIN)/stroke-mlops schedule --host http://127.0.0.1:$(KFP_LOCAL_PORT) \
	  --ui-url http://127.0.0.1:$(KFP_UI_PORT) --experiment $(EXPERIMENT) \
	  --store $(STORE_URI) --requests $(REQUESTS_URI) --cron '$(SCHEDULE_CRON)' \
	  --cooldown-hours $(COOLDOWN_HOURS)

test-alerts: install data ## the alert rules live: real Prometheus, Pushgateway, Alertmanager, predictors (~1 min)
	@for tool in prometheus prometheus-pushgateway prometheus-alertmanager; do command -v $$tool >/dev/null || \
	  { echo "$$tool is not installed: apt-get install prometheus prometheus-pushgateway prometheus-alertmanager"; exit 1; }; done
	@start=$$(date +%s); $(BIN)/pytest -m alerting tests/monitoring/test_alerts_live.py; status=$$?; \
	echo "alerting tier: $$(( $$(date +%s) - start ))s"; exit $$status
