"""Tests that drive the dashboards in a real browser (see conftest.py)."""
