"""DIGITS example data plugin: gradient images classified by direction.

DIGITS loads `digits_example_gradients.data:DataIngestion` through the entry
point `image-gradients` (group `digits.plugins.data`). This module stays empty
so that importing the package never imports DIGITS.
"""
