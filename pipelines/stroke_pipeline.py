"""The stroke pipeline: a factory with explicit parameters; cluster wiring added by the runner.

    ingest → validate_data → enforce_contract → preprocess → train → evaluate → gate
        └─ if blessed: publish → infra_validate → promote → deploy

promote moves production only if it is still the champion the gate judged against.

Thresholds are pipeline parameters, so both branches of the gate are reachable from a run's
arguments. Caching is off for every step that reads something mutable: ingest (the data behind
``data_uri``), the gate (the production model now) and everything after it (the store and the
cluster); the steps in between are pure functions of their input artifacts.
``build_pipeline(cluster=ClusterConfig(...))`` attaches the Kubernetes side
(credentials Secret, signing keys, endpoint, pull policy, resources, retries);
``build_pipeline()`` leaves it out for ``kfp.local``, which ignores platform config and takes
credentials and keys from the runner's environment.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp import dsl, kubernetes

from components._image import IMAGE
from components.deploy import deploy
from components.evaluate import evaluate
from components.gate import gate
from components.infra_validate import infra_validate
from components.ingest import ingest
from components.preprocess import preprocess
from components.promote import promote
from components.publish import publish
from components.train import train
from components.validate_data import enforce_contract, validate_data
from stroke_mlops import settings
from stroke_mlops.data.dataset import SplitFractions
from stroke_mlops.deploy.kserve_objects import (
    SIGNING_PUBLIC_KEY_CONFIG_MAP,
    SIGNING_PUBLIC_KEY_DIR,
    SIGNING_PUBLIC_KEY_FILE,
)
from stroke_mlops.registry.signing import PRIVATE_KEY_ENV, PUBLIC_KEY_ENV
from stroke_mlops.training.evaluate import EvaluationConfig
from stroke_mlops.training.promotion_gate import GateThresholds

PIPELINE_NAME = "stroke-mlops"
SIGNING_KEY_DIR = "/etc/stroke-mlops/signing-key"

# Every default comes from the library's dataclasses: defined once, shared with the CLI.
_SPLIT = SplitFractions()
_EVALUATION = EvaluationConfig()
_GATE = GateThresholds()


@dataclass(frozen=True)
class ClusterConfig:
    """How the pipeline's pods reach MinIO and pull the image inside a cluster."""

    s3_secret: str = settings.S3_CREDENTIALS_SECRET  # keys AWS_ACCESS_KEY_ID, ..._SECRET_...
    s3_endpoint: str = settings.CLUSTER_S3_ENDPOINT
    s3_region: str = settings.CLUSTER_S3_REGION
    image_pull_policy: str = "IfNotPresent"  # images are loaded into kind, not pulled
    network_retries: int = 3
    # Model signing (make cluster-app creates both in kubeflow): the private key only for publish,
    # the public key for the steps that load a published model (gate, infra-validate).
    signing_key_secret: str = "stroke-mlops-signing-key"  # key signing-key.pem
    signing_public_key_config_map: str = SIGNING_PUBLIC_KEY_CONFIG_MAP  # key public-key.pem


def _with_s3(task: dsl.PipelineTask, cluster: ClusterConfig) -> None:
    kubernetes.use_secret_as_env(
        task,
        secret_name=cluster.s3_secret,
        secret_key_to_env={
            "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
        },
    )
    task.set_env_variable("AWS_ENDPOINT_URL", cluster.s3_endpoint)
    task.set_env_variable("AWS_REGION", cluster.s3_region)
    task.set_retry(num_retries=cluster.network_retries, backoff_duration="10s")


def _with_signing_key(task: dsl.PipelineTask, cluster: ClusterConfig) -> None:
    kubernetes.use_secret_as_volume(
        task, secret_name=cluster.signing_key_secret, mount_path=SIGNING_KEY_DIR
    )
    task.set_env_variable(PRIVATE_KEY_ENV, f"{SIGNING_KEY_DIR}/signing-key.pem")


def _with_public_key(task: dsl.PipelineTask, cluster: ClusterConfig) -> None:
    kubernetes.use_config_map_as_volume(
        task,
        config_map_name=cluster.signing_public_key_config_map,
        mount_path=SIGNING_PUBLIC_KEY_DIR,
    )
    task.set_env_variable(PUBLIC_KEY_ENV, f"{SIGNING_PUBLIC_KEY_DIR}/{SIGNING_PUBLIC_KEY_FILE}")


# What one step may request on a 4-CPU / 8 GiB kind node beside Kubernetes (~1 CPU), KFP 2.17
# (~1 CPU, ~3.5 GiB), KServe (0.2 CPU), MinIO and the predictor (docs/kind.md#resources).
# A step may burst up to its CPU limit when the node is idle; memory limits equal requests.
STEP_CPU_REQUEST_MAX = 1.0
STEP_MEMORY_MAX_GIB = 2.0


def _sized(task: dsl.PipelineTask, cpu: str, memory: str, cpu_limit: str | None = None) -> None:
    task.set_cpu_request(cpu).set_cpu_limit(cpu_limit or cpu).set_memory_request(memory)
    task.set_memory_limit(memory)


def configure_task(
    task: dsl.PipelineTask,
    cluster: "ClusterConfig | None",
    *,
    s3: bool = False,
    cpu: str = "500m",
    memory: str = "1Gi",
    cpu_limit: str | None = None,
) -> dsl.PipelineTask:
    """Attach the cluster wiring (pull policy, resources, S3 credentials) to one task."""
    if cluster is not None:
        kubernetes.set_image_pull_policy(task, cluster.image_pull_policy)
        _sized(task, cpu, memory, cpu_limit)
        if s3:
            _with_s3(task, cluster)
    return task


def build_pipeline(cluster: "ClusterConfig | None" = None) -> Callable[..., Any]:
    """Return the pipeline function, wired for a cluster when ``cluster`` is given."""

    def platform(
        task: dsl.PipelineTask,
        *,
        s3: bool = False,
        cpu: str = "500m",
        memory: str = "1Gi",
        cpu_limit: str | None = None,
        signing_key: bool = False,
        public_key: bool = False,
    ) -> dsl.PipelineTask:
        configure_task(task, cluster, s3=s3, cpu=cpu, memory=memory, cpu_limit=cpu_limit)
        if cluster is not None:
            if signing_key:
                _with_signing_key(task, cluster)
            if public_key:
                _with_public_key(task, cluster)
        return task

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Stroke risk: GX contract → preprocess → train (sklearn + XGBoost) → "
        "threshold-gated evaluation → publish to MinIO → promote.",
    )
    def stroke_pipeline(
        data_uri: str,
        store_uri: str,
        seed: int = _EVALUATION.seed,
        validation_fraction: float = _SPLIT.validation,
        test_fraction: float = _SPLIT.test,
        precision_floor: float = _EVALUATION.precision_floor,
        threshold_margin: float = _EVALUATION.threshold_margin,
        min_recall: float = _GATE.min_recall,
        min_precision: float = _GATE.min_precision,
        min_roc_auc: float = _GATE.min_roc_auc,
        champion_tolerance: float = _GATE.champion_tolerance,
        max_cv_recall_width: float = _GATE.max_cv_recall_width,
    ) -> None:
        raw = platform(ingest(data_uri=data_uri).set_display_name("ingest"), s3=True)
        # The bytes behind data_uri can change while the URI stays the same: always read them.
        # Downstream steps stay cacheable: KFP keys them on their input artifacts (by identity,
        # backend/src/v2/cacheutils/cache.go:186-197 at 2.17.0), which a fresh ingest replaces.
        raw.set_caching_options(False)
        contract = platform(validate_data(raw_data=raw.outputs["raw_data"]), memory="2Gi")
        contract.set_display_name("validate data (Great Expectations)")
        enforced = platform(
            enforce_contract(
                passed=contract.outputs["passed"], failures=contract.outputs["failures"]
            ),
            cpu="100m",
            memory="256Mi",
        ).set_display_name("enforce data contract")
        split = platform(
            preprocess(
                raw_data=raw.outputs["raw_data"],
                seed=seed,
                validation_fraction=validation_fraction,
                test_fraction=test_fraction,
            )
        ).after(enforced)
        trained = platform(
            train(
                train_data=split.outputs["train_data"],
                validation_data=split.outputs["validation_data"],
                seed=seed,
                precision_floor=precision_floor,
            ),
            cpu="1",  # two would not fit beside KFP and KServe on a 4-CPU node
            cpu_limit="2",
            memory="2Gi",
        )
        evaluated = platform(
            evaluate(
                model=trained.outputs["model"],
                train_data=split.outputs["train_data"],
                validation_data=split.outputs["validation_data"],
                test_data=split.outputs["test_data"],
                fingerprint=split.outputs["fingerprint"],
                precision_floor=precision_floor,
                threshold_margin=threshold_margin,
                seed=seed,
            )
        )
        decision = platform(
            gate(
                model=trained.outputs["model"],
                evaluation=evaluated.outputs["evaluation"],
                test_data=split.outputs["test_data"],
                store_uri=store_uri,
                min_recall=min_recall,
                min_precision=min_precision,
                min_roc_auc=min_roc_auc,
                champion_tolerance=champion_tolerance,
                max_cv_recall_width=max_cv_recall_width,
            ),
            s3=True,
            public_key=True,  # scores the production model
        )
        # The champion is "whatever production is now": never reuse a cached gate.
        decision.set_caching_options(False)
        with dsl.If(decision.outputs["Output"] == True, name="blessed"):  # noqa: E712
            published = platform(
                publish(
                    model=trained.outputs["model"],
                    evaluation=evaluated.outputs["evaluation"],
                    fingerprint=split.outputs["fingerprint"],
                    raw_data=raw.outputs["raw_data"],
                    train_data=split.outputs["train_data"],
                    test_data=split.outputs["test_data"],
                    gate_report=decision.outputs["report"],
                    store_uri=store_uri,
                ),
                s3=True,
                signing_key=True,
            )
            published.set_caching_options(False)
            served = platform(
                infra_validate(store_uri=store_uri, version=published.outputs["version"]),
                s3=True,
                memory="1Gi",
                public_key=True,
            ).set_display_name("infra-validate (real model server)")
            served.set_caching_options(False)
            promoted = platform(
                promote(
                    store_uri=store_uri,
                    version=published.outputs["version"],
                    gate_decision=decision.outputs["decision"],
                ),
                s3=True,
                cpu="100m",
                memory="256Mi",
            ).after(served)
            promoted.set_caching_options(False)
            deployed = platform(
                deploy(
                    model_uri=published.outputs["model_uri"],
                    version=published.outputs["version"],
                ),
                s3=True,
                cpu="100m",
                memory="512Mi",
            ).after(promoted)
            deployed.set_caching_options(False)
            if cluster is not None:
                # The ServingRuntime YAML the step emits names the image this run was compiled for.
                deployed.set_env_variable("STROKE_MLOPS_IMAGE", IMAGE)

    return stroke_pipeline


def compile_pipeline(output_path: str, cluster: ClusterConfig | None = None) -> None:
    """Write the pipeline YAML (the IR a KFP cluster runs)."""
    from kfp import compiler

    compiler.Compiler().compile(build_pipeline(cluster), package_path=output_path)
