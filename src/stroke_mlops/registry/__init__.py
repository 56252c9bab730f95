"""The model registry: model directory contract, input signature, the store (folder or S3/MinIO)
and URIs.
"""
