"""Measuring ranking quality: answer-quote questions and BEIR-layout collections."""
