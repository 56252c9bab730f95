"""The clinician's page and the operations view (``stroke-mlops app``; ``pip install
stroke-mlops[app]``): a small FastAPI app that calls the predictor over HTTP like any client."""
