"""Training: candidate models and their search, threshold choice, evaluation metrics and the
promotion gate.
"""
