"""Engagement mart: extract, gate, load, build and publish."""
