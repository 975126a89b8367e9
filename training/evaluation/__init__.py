"""Evaluation harness: one Recommender interface, full-ranking metrics, tuning on validation."""
