"""Built-in data plugins (registered under the "digits.plugins.data" entry points in pyproject.toml)."""
