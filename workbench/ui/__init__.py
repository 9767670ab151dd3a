"""Voila dashboards for analysts and reviewers: widgets and the ``serve`` launcher."""
