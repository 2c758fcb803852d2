"""DIGITS data plugin: Sunnybrook left-ventricle segmentation from DICOM images.

DIGITS finds it through the entry point `image-sunnybrook` in the group
`digits.plugins.data`, which names `digits_sunnybrook.data:DataIngestion`.
This module stays light (it does not import DIGITS) so that reading the
package's version never loads the plugin.
"""
