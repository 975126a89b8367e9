"""Baseline recommenders, each a `training.evaluation.recommender.Recommender`."""
