"""Serving: the KServe predictor, compiled scoring, request logging, infra-validation and the local
demo.
"""
