"""Deployment: KServe ServingRuntime/InferenceService objects, their in-cluster apply and offline
validation.
"""
