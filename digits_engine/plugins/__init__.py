"""Plugins: data sources and visualizations, found through entry points
(`digits.plugins.data`, `digits.plugins.view`). See docs/plugins.md."""
