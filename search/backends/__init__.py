"""Retrieval backends: engines that hold passages, their vectors and their keyword statistics."""
