"""GX's own Data Docs site for one validation run, built to a local folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stroke_mlops.data.suite_file import REPO_ROOT, load_suite

DATA_DOCS_DIR = REPO_ROOT / "gx" / "uncommitted" / "data_docs" / "local_site"


def build_data_docs(
    frame: pd.DataFrame,
    suite_path: Path | None = None,
    *,
    docs_dir: Path = DATA_DOCS_DIR,
) -> Path:
    """Build GX's own Data Docs site for one validation run; returns the site's index.html.

    Uses an ephemeral context whose only Data Docs site is a local folder (``gx/uncommitted``
    by default), so nothing else is written and the committed suite is left untouched.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    suite = load_suite(suite_path)
    docs_dir = Path(docs_dir).resolve()
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={"local_site": site},
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas("raw_patients")
        .add_dataframe_asset("patients")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    expectation_suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite["name"],
            expectations=[
                {"type": e["type"], "kwargs": e["kwargs"], "meta": e.get("meta", {})}
                for e in suite["expectations"]
            ],
        )
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="raw_patients", data=batch_definition, suite=expectation_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="raw_patients",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1).reset_index(drop=True)
    checkpoint.run(batch_parameters={"dataframe": frame})
    return docs_dir / "index.html"
