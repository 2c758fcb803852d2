"""Command-line tools that ship with DIGITS (``upload_s3_data``)."""
